//! terpadu ("integrated"): unify Indonesia's social-assistance databases.
//!
//! Data flows one way, and stages talk through Parquet files in the pipeline's workspace:
//!
//! ```text
//! extracts (CSV, XLSX, JSONL, Parquet)
//!   -> ingest     typed, validated staged Parquet + quarantine + run manifest
//!   -> link       fuzzy NIK/name matching into persons (first version; families next)
//!   -> registry   (next) the unified registry with stable person ids
//!   -> report     (next) duplicates, overlaps, inclusion and exclusion errors
//! ```
//!
//! Module map:
//! - [`config`]: pipelines (`pipelines/*.toml`) and layouts (`schemas/*.toml`), checked together.
//! - [`ingest`]: readers per format, the canonical record schema, staging and quarantine.
//! - [`link`]: record linkage: comparison levels, blocking, the pairwise kernel, the
//!   Fellegi-Sunter model with EM, the first link stage and evaluation against truth.
//! - [`normalize`]: NIK and KK validation, Indonesian name normalisation, dates, region codes;
//!   also as SQL functions.
//! - [`sql`]: DataFusion sessions over a workspace.
//! - [`sample`]: the deterministic synthetic-province generator with ground truth.
//! - [`workspace`]: the directory layout stages share, and atomic file publication.
//! - [`cli`]: the `terpadu` command line.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod ingest;
pub mod link;
pub mod metrics;
pub mod normalize;
pub mod registry;
pub mod report;
pub mod sample;
pub mod sql;
pub mod workspace;
