//! SQL over the workspace: staged tables, quarantine, manifest, terpadu's functions.

use crate::util::{Project, run, text};

#[test]
fn sql_answers_queries_over_staged_sources() {
    let project = Project::with_sample();
    let out = run(&["ingest", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest = project.manifest("sample");
    let staged_pkh = manifest["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == "pkh")
        .expect("pkh")["rows_staged"]
        .as_u64()
        .expect("count");

    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--format",
        "csv",
        "SELECT count(*) AS n FROM pkh",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("n\n{staged_pkh}")
    );

    // The manifest is a table, and agrees with the staged tables.
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--format",
        "csv",
        "SELECT s.rows_staged = (SELECT count(*) FROM dtks) AS agrees FROM ingest_sources s WHERE s.source = 'dtks'",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "agrees\ntrue");

    // terpadu's functions work on staged columns: masking never shows the middle digits.
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--format",
        "json",
        "SELECT mask_id(nik) AS masked, nik FROM dukcapil WHERE nik IS NOT NULL LIMIT 5",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("json row");
        let nik = row["nik"].as_str().expect("nik");
        let masked = row["masked"].as_str().expect("masked");
        assert_eq!(masked, format!("{}********{}", &nik[..4], &nik[12..]));
    }

    // A query error is reported with exit code 1 and DataFusion's message.
    let out = run(&["sql", &project.pipeline("sample"), "SELECT nope FROM pkh"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nope"),
        "{}",
        text(&out)
    );
}

#[test]
fn sql_before_ingest_says_what_to_do() {
    let project = Project::with_sample();
    let out = run(&["sql", &project.pipeline("sample"), "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run `terpadu ingest PIPELINE` first"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_prompt_reads_statements_from_standard_input() {
    use std::io::Write;
    let project = Project::with_sample();
    let out = run(&[
        "ingest",
        &project.pipeline("sample"),
        "--source",
        "pengaduan",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut child = crate::util::terpadu()
        .args(["sql", &project.pipeline("sample"), "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"SELECT count(*) AS n\nFROM pengaduan;\n\\q\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("n\n"), "{stdout}");
}
