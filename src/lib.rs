//! terpadu ("integrated"): unify Indonesia's social-assistance databases.
//!
//! Data flows one way, and stages talk through Delta tables in the pipeline's workspace, one
//! consistent set per workspace version ([`store`]):
//!
//! ```text
//! extracts (CSV, XLSX, JSONL, Parquet)
//!   -> ingest     typed, validated staged Parquet + quarantine + run manifest
//!   -> link       fuzzy NIK/name matching into persons and families
//!   -> registry   the unified registry: person, family, record_link, program_membership,
//!                 stable ids, published as atomic versions
//!   -> report     duplicates, overlaps, exclusivity breaches, inclusion and exclusion errors
//! ```
//!
//! Module map:
//! - [`config`]: pipelines (`pipelines/*.toml`) and layouts (`schemas/*.toml`), checked together.
//! - [`ingest`]: readers per format, the canonical record schema, staging and quarantine.
//! - [`normalize`]: NIK and KK validation, Indonesian name normalisation, dates, region codes;
//!   also as SQL functions.
//! - [`link`]: record linkage: comparison levels, blocking, the pairwise kernel, the
//!   Fellegi-Sunter model with EM, clustering and evaluation against truth.
//! - [`registry`]: the published registry tables, stable ids, versions.
//! - [`report`]: the program catalogue's rules and the reports (Parquet, CSV, XLSX, HTML).
//! - [`ops`]: a whole run (`terpadu run`): arrival checks, change detection, the run ledger.
//! - [`schedule`]: the `terpadu schedule` daemon (cron times, retries, clean shutdown).
//! - [`sql`]: DataFusion sessions over one pinned workspace version.
//! - [`catalog`]: the read-only query surface for people's SQL (refusals, memory and time
//!   limits).
//! - [`serve`]: `terpadu serve`, the registry over the PostgreSQL wire protocol and Arrow
//!   Flight SQL, with logins, roles, masking, region scopes and an audit log.
//! - [`sample`]: the deterministic synthetic-province generator with ground truth.
//! - [`store`]: Delta Lake tables, workspace versions, pinning, rollback, vacuum, the lock.
//! - [`redact`]: masking of identifiers in logs and messages.
//! - [`workspace`]: the workspace root and small-file helpers.
//! - [`metrics`]: process memory figures.
//! - [`cli`]: the `terpadu` command line.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod ingest;
pub mod link;
pub mod metrics;
pub mod normalize;
pub mod ops;
pub mod redact;
pub mod registry;
pub mod report;
pub mod sample;
pub mod schedule;
pub mod serve;
pub mod sql;
pub mod store;
pub mod workspace;
