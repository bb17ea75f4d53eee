//! Reports on the shipped sample: written in every format, masked by default, counts that
//! reconcile with the registry, person-to-family roll-up, each rule kind, and accuracy
//! against the generator's truth.

use crate::util::{Project, run, sql_json, text};

fn sql(project: &Project, query: &str) -> Vec<serde_json::Value> {
    sql_json(project, query)
}

fn one(project: &Project, query: &str) -> u64 {
    let rows = sql(project, query);
    rows[0]["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("no n in {rows:?} for {query}"))
}

/// A run of exactly 16 digits, not the decimals of a number (a NIK or KK number in full).
fn has_sixteen_digits(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit() && c != '.')
        .flat_map(|token| token.split('.').next())
        .any(|digits| digits.len() == 16)
}

fn prepare(project: &Project, extra_rules: &str) {
    if !extra_rules.is_empty() {
        let path = project.path().join("pipelines/sample.toml");
        let mut pipeline = std::fs::read_to_string(&path).expect("pipeline");
        pipeline.push_str(extra_rules);
        std::fs::write(&path, pipeline).expect("write");
    }
    for command in ["ingest", "link", "report"] {
        let out = run(&["--quiet", command, &project.pipeline("sample")]);
        assert!(out.status.success(), "{command}: {}", text(&out));
    }
}

fn reports_dir(project: &Project) -> std::path::PathBuf {
    let latest = project.history("sample").pop().expect("a version");
    let dir = latest.documents["files_dir"].as_str().expect("files dir");
    project.workspace("sample").join(dir)
}

#[test]
fn reports_are_written_masked_and_their_counts_reconcile() {
    let project = Project::with_sample();
    // A person-level rule beside the shipped family-level one.
    prepare(
        &project,
        "\n[[exclusivity]]\nname = \"pbi_alive_only\"\nunit = \"person\"\n\
         description = \"PBI premiums are not paid for the dead\"\n\
         breach = \"array_has(programs, 'PBI') AND NOT alive\"\n",
    );
    let dir = reports_dir(&project);
    for name in [
        "duplicates",
        "overlap",
        "combinations",
        "exclusivity_breaches",
        "inclusion_errors",
        "exclusion_errors",
        "coverage",
        "data_quality",
    ] {
        assert!(
            project
                .table_file("sample", &format!("reports/{name}"))
                .exists(),
            "reports/{name} published"
        );
        let csv = std::fs::read_to_string(dir.join(format!("{name}.csv"))).expect("csv");
        assert!(
            !has_sixteen_digits(&csv),
            "{name}.csv shows a NIK or KK unmasked"
        );
    }
    let workbook = std::fs::read(dir.join("terpadu-reports.xlsx")).expect("workbook");
    assert_eq!(&workbook[..2], b"PK", "an XLSX (zip) file");
    let html = std::fs::read_to_string(dir.join("terpadu-report.html")).expect("html");
    for expected in [
        "<svg",
        "Overlap between programs",
        "Exclusion errors",
        "<table id=\"t0\"",
    ] {
        assert!(html.contains(expected), "the HTML report has {expected}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the HTML report needs no network"
    );
    assert!(
        !has_sixteen_digits(&html),
        "the HTML report masks NIK and KK"
    );

    // Overlap: the diagonal is each program's families, off the diagonal families with both.
    for (a, b) in [
        ("PKH", "PKH"),
        ("BPNT", "PKH"),
        ("JAMSOSRATU", "PKH"),
        ("BPNT", "PBI"),
    ] {
        let reported = one(
            &project,
            &format!(
                "SELECT CAST(coalesce(sum(families), 0) AS BIGINT) AS n FROM report_overlap \
                 WHERE program_a = '{a}' AND program_b = '{b}'"
            ),
        );
        let counted = one(
            &project,
            &format!(
                "SELECT count(*) AS n FROM family WHERE array_has(programs, '{a}') \
                 AND array_has(programs, '{b}')"
            ),
        );
        assert_eq!(reported, counted, "{a} x {b}");
        assert!(counted > 0 || a == "JAMSOSRATU", "{a} x {b} has families");
    }
    assert_eq!(
        one(
            &project,
            "SELECT CAST(sum(families) AS BIGINT) AS n FROM report_combinations"
        ),
        one(
            &project,
            "SELECT count(*) AS n FROM family WHERE cardinality(programs) > 0"
        )
    );
    // The breach list is exactly the families holding both programs.
    assert_eq!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_exclusivity_breaches WHERE rule = 'jamsosratu_not_pkh'"
        ),
        one(
            &project,
            "SELECT count(*) AS n FROM family WHERE array_has(programs, 'JAMSOSRATU') \
             AND array_has(programs, 'PKH')"
        )
    );
    // The person-level rule finds exactly the dead PBI members the inclusion report lists.
    let dead_pbi = one(
        &project,
        "SELECT count(DISTINCT person_id) AS n FROM report_inclusion_errors \
         WHERE category = 'dead' AND program = 'PBI'",
    );
    assert!(dead_pbi > 0, "the sample has dead PBI members");
    assert_eq!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_exclusivity_breaches WHERE rule = 'pbi_alive_only'"
        ),
        dead_pbi
    );
    // Duplicates: every listing of a duplicated unit is counted once.
    assert_eq!(
        one(
            &project,
            "SELECT CAST(sum(listings) AS BIGINT) AS n FROM report_duplicates"
        ),
        one(
            &project,
            "SELECT CAST(coalesce(sum(c), 0) AS BIGINT) AS n FROM (SELECT count(*) AS c \
             FROM program_membership GROUP BY program, period, \
             CASE WHEN unit = 'person' THEN person_id ELSE coalesce(family_id, person_id) END \
             HAVING count(*) > 1)"
        )
    );
    assert!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_duplicates WHERE payee_differs"
        ) > 0,
        "a family listed twice under different payees is found"
    );
    // Coverage sums to the recipients; covered never exceeds eligible.
    assert_eq!(
        one(
            &project,
            "SELECT CAST(sum(recipients) AS BIGINT) AS n FROM report_coverage WHERE program = 'PKH'"
        ),
        one(
            &project,
            "SELECT count(*) AS n FROM family WHERE array_has(programs, 'PKH')"
        )
    );
    assert_eq!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_coverage WHERE eligible_covered > eligible"
        ),
        0
    );
    // Exclusion errors: eligible and not receiving; "receives nothing" means no program.
    assert_eq!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_exclusion_errors e JOIN family f \
             ON e.unit_id = f.family_id WHERE e.receives_nothing AND cardinality(f.programs) > 0"
        ),
        0
    );
    // Person-level memberships roll up to the family.
    assert_eq!(
        one(
            &project,
            "SELECT count(*) AS n FROM program_membership pm JOIN family f \
             ON pm.family_id = f.family_id WHERE pm.program = 'PBI' \
             AND NOT array_has(f.programs, 'PBI')"
        ),
        0
    );
    assert!(
        one(
            &project,
            "SELECT count(DISTINCT family_id) AS n FROM program_membership WHERE program = 'PBI'"
        ) > 0
    );
    // Data quality: rows read = staged + quarantined, per source.
    assert_eq!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_data_quality \
             WHERE rows_read <> rows_staged + rows_quarantined"
        ),
        0
    );
    // Dead recipients name the heirs on the family card when there are any.
    assert!(
        one(
            &project,
            "SELECT count(*) AS n FROM report_inclusion_errors \
             WHERE category = 'dead' AND cardinality(heirs) > 0"
        ) > 0
    );

    // Unmasked only when asked.
    let out = run(&[
        "--quiet",
        "report",
        &project.pipeline("sample"),
        "--unmasked",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let unmasked_dir = reports_dir(&project);
    assert_ne!(unmasked_dir, dir, "a new version with its own files");
    let csv = std::fs::read_to_string(unmasked_dir.join("inclusion_errors.csv")).expect("csv");
    assert!(has_sixteen_digits(&csv), "--unmasked writes NIKs in full");
    let masked = std::fs::read_to_string(dir.join("inclusion_errors.csv")).expect("csv");
    assert!(
        !has_sixteen_digits(&masked),
        "the earlier version's files are untouched"
    );
    let latest = project.history("sample").pop().expect("version");
    assert_eq!(latest.documents["reports"]["masked"], false);

    // With a registry published, check plans every rule's SQL and names the broken one.
    let path = project.path().join("pipelines/sample.toml");
    let pipeline = std::fs::read_to_string(&path).expect("pipeline");
    std::fs::write(
        &path,
        pipeline.replace(
            "eligibility = \"welfare_decile <= 4\"\n",
            "eligibility = \"welfare_decil <= 4\"\n",
        ),
    )
    .expect("write");
    let out = run(&["check", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("programs[1].eligibility: Schema error: No field named welfare_decil"),
        "{}",
        text(&out)
    );
}

#[test]
fn one_run_command_writes_everything_and_report_cases_match_the_generated_truth() {
    let project = Project::with_sample();
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for stage in [
        "run      ",
        " succeeded",
        "  ingest       19777 rows in      19777 rows out",
        "  link         19777 rows in      10026 rows out",
        "  report       19777 rows in",
    ] {
        assert!(stdout.contains(stage), "{stage} in:\n{stdout}");
    }
    assert!(reports_dir(&project).join("terpadu-report.html").exists());
    let truth = project.path().join("sample_data/truth.csv");
    let out = run(&[
        "evaluate",
        &project.pipeline("sample"),
        "--truth",
        &truth.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for report in [
        "breaches (families)",
        "dead recipients (rows)",
        "duplicates (row pairs)",
        "exclusion errors (families)",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(report))
            .unwrap_or_else(|| panic!("no {report} in\n{stdout}"));
        let figures: Vec<f64> = line[report.len()..]
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        assert!(figures[0] >= 0.97 && figures[1] >= 0.97, "{line}");
        assert!(figures[3] > 0.0, "truth has cases: {line}");
    }
}

#[test]
fn rules_naming_unknown_programs_are_refused_before_a_run() {
    let project = Project::with_sample();
    let path = project.path().join("pipelines/sample.toml");
    let mut pipeline = std::fs::read_to_string(&path).expect("pipeline");
    pipeline.push_str(
        "\n[[exclusivity]]\nname = \"bst\"\nunit = \"family\"\n\
         breach = \"array_has(programs, 'BST') AND array_has(programs, 'PKH')\"\n",
    );
    std::fs::write(&path, pipeline).expect("write");
    let out = run(&["check", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("exclusivity[1].breach: names program 'BST'"),
        "{}",
        text(&out)
    );
}
