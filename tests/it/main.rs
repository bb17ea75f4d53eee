//! terpadu's integration tests: one binary (linking DataFusion once), one module per area.
//! Every test runs the real `terpadu` binary or library on real files in a fresh directory.

mod cli;
mod formats;
mod hostile;
mod ingest;
mod link;
mod ops;
mod registry;
mod report;
mod sample;
mod serve;
mod sql;
mod store;
mod util;
