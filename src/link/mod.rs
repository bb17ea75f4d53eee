//! Record linkage: deciding which staged records describe the same person (or family), the
//! Fellegi-Sunter way that Splink popularised. Each pair of candidate records is compared
//! field by field; every comparison lands in one of a few discrete *levels* (exact NIK, NIK
//! with one typo, names that agree after dropping a token...); the probabilities of each level
//! among true matches (m) and among non-matches (u) turn the levels into match weights.
//!
//! The parts (the published registry, stable ids and families live in [`crate::registry`]):
//! - [`compare`]: comparison levels as pure functions, with the domain traps built in (a NIK
//!   differing only in its serial is another person; a placeholder birth date proves little).
//! - [`blocking`]: blocking rules as SQL keys, pairs counted per rule before generation and
//!   refused above a cap, candidate pairs unioned once (DataFusion).
//! - [`evaluate`]: pairwise precision, recall, F1 and cluster accuracy against the
//!   generator's truth, per source and per noise kind.
//! - [`gamma`]: the kernel that turns a batch of record pairs into level indices.
//! - [`model`]: m, u and lambda as data, match weights with explanations, u from random pairs
//!   and EM for m and lambda.
//! - [`stage`]: records -> pairs -> levels -> model (with term frequencies) -> guarded
//!   clusters, in memory, handed to the registry.

pub mod blocking;
pub mod compare;
pub mod evaluate;
pub mod gamma;
pub mod model;
pub mod stage;
