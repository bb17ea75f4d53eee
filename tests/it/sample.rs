//! The generator through the CLI: deterministic output and complete ground truth.

use crate::util::{run, text, walk};

#[test]
fn same_seed_gives_identical_files_and_truth_covers_every_record() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    for dir in [&a, &b] {
        let out = run(&[
            "sample",
            "--persons",
            "400",
            "--seed",
            "9",
            "--out",
            &dir.path().display().to_string(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let mut compared = 0;
    for entry in walk(a.path()) {
        let relative = entry.strip_prefix(a.path()).expect("prefix");
        if relative.extension().is_some_and(|e| e == "xlsx") {
            continue; // zip timestamps aside, XLSX content is checked by ingest tests
        }
        let left = std::fs::read(&entry).expect("read a");
        let right = std::fs::read(b.path().join(relative)).expect("read b");
        assert!(left == right, "{} differs between runs", relative.display());
        compared += 1;
    }
    assert!(compared >= 7, "compared {compared} files");

    let truth = crate::util::truth(a.path());
    let generator: serde_json::Value = serde_json::from_slice(
        &std::fs::read(a.path().join("generator.json")).expect("generator.json"),
    )
    .expect("json");
    let rows: u64 = generator["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["rows"].as_u64().expect("rows"))
        .sum();
    assert_eq!(
        truth.len() as u64,
        rows,
        "one truth line per generated record"
    );
}
