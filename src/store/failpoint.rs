//! Failpoints for crash-safety tests: `TERPADU_FAILPOINT=<name>` aborts the process (as a
//! power cut or `kill -9` would) when it reaches the named step, and
//! `TERPADU_FAILPOINT_LOG=<file>` appends the name of every step reached, so a harness can
//! first list the steps of a clean run and then abort at each one.
//!
//! Step names: `write:<table>` (data files written, table not committed), `commit:<table>`
//! (table committed, workspace version not), `version:commit` (just before the version
//! commit), `version:committed` (just after), `vacuum:<table>` (one table vacuumed).

use std::io::Write;

/// Reached step `name`: log it and abort here if asked to.
pub fn hit(name: &str) {
    if let Some(log) = std::env::var_os("TERPADU_FAILPOINT_LOG")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(file, "{name}");
    }
    if std::env::var("TERPADU_FAILPOINT").is_ok_and(|wanted| wanted == name) {
        eprintln!("failpoint {name}: aborting as asked (TERPADU_FAILPOINT)");
        std::process::abort();
    }
}
