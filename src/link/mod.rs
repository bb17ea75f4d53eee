//! Record linkage: deciding which staged records describe the same person (or family), the
//! Fellegi-Sunter way that Splink popularised. Each pair of candidate records is compared
//! field by field; every comparison lands in one of a few discrete *levels* (exact NIK, NIK
//! with one typo, names that agree after dropping a token...); the probabilities of each level
//! among true matches (m) and among non-matches (u) turn the levels into match weights.
//!
//! This session ships the comparison levels ([`compare`]): pure functions from two values to a
//! level, with the domain traps (a NIK differing only in its serial is another person, a
//! placeholder birth date proves little) built in. Blocking, EM estimation of m and u,
//! scoring and clustering come next.

pub mod blocking;
pub mod compare;
