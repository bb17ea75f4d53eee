//! The command line: help that teaches, `check` before anything runs, exit codes.

use crate::util::{Project, run, text};

#[test]
fn help_lists_commands_and_exit_codes() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "check",
        "ingest",
        "sql",
        "sample",
        "bench",
        "Exit codes",
        "--log-format",
    ] {
        assert!(help.contains(word), "help lacks {word}:\n{help}");
    }
    let out = run(&["ingest", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("quarantine") && help.contains("Examples:"),
        "{help}"
    );
}

#[test]
fn check_passes_on_the_shipped_sample() {
    let project = Project::with_sample();
    let out = run(&["check", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for source in [
        "dukcapil",
        "dtks",
        "pkh",
        "bpnt",
        "pbi",
        "jamsosratu",
        "pengaduan",
    ] {
        assert!(stdout.contains(source), "{stdout}");
    }
    assert!(stdout.contains("All checks passed."), "{stdout}");
    // check touches no data: no workspace appears.
    assert!(!project.workspace("sample").exists());
}

#[test]
fn check_reports_every_layout_problem_with_file_and_key() {
    let project = Project::with_sample();
    let layout = project.path().join("schemas/kpm_beneficiary.toml");
    let original = std::fs::read_to_string(&layout).expect("layout");
    let broken = original
        .replace(
            "nik = { column = \"NIK KTP\"",
            "nik = { column = \"NIK_PENERIMA\"",
        )
        .replace(
            "period = { column = \"TAHAP\" }",
            "period = { column = \"TAHAP\", formats = [\"%d-%m\"] }",
        )
        .replace("[fields]", "[fields]\nbirthday = { column = \"TGL\" }");
    project.write("schemas/kpm_beneficiary.toml", broken);
    let out = run(&["check", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kpm_beneficiary.toml: fields.birthday: unknown field 'birthday'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fields.period.formats: formats only apply to date fields"),
        "{stdout}"
    );
    assert!(
        stdout.contains("problem(s) found; nothing was run."),
        "{stdout}"
    );

    // With the layout valid again but a column the files lack, check names the column.
    project.write(
        "schemas/kpm_beneficiary.toml",
        original.replace(
            "nik = { column = \"NIK KTP\", aliases = [\"NIK\"] }",
            "nik = { column = \"NIK_PENERIMA\" }",
        ),
    );
    let out = run(&["check", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("lacks column(s) NIK_PENERIMA (for fields.nik)"),
        "{stdout}"
    );
}

#[test]
fn a_missing_pipeline_file_is_a_usage_error() {
    let out = run(&["ingest", "pipelines/nope.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no pipeline file at 'pipelines/nope.toml'")
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let project = Project::with_sample();
    let out = run(&[
        "--log-format",
        "json",
        "ingest",
        &project.pipeline("sample"),
        "--source",
        "pengaduan",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
}
