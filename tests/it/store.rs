//! The store: versions that cannot be lost, pinned readers, a read-only SQL surface, crash
//! safety at every commit step, an independent Delta reader, and no personal data in logs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{
    Project, add_person, column_text, read_parquet, run, sample_run, terpadu, text, walk,
};

fn csv_count(project: &Project, version: Option<u64>, query: &str) -> Result<u64, String> {
    let pipeline = project.pipeline("sample");
    let version = version.map(|v| v.to_string());
    let mut args = vec!["sql", pipeline.as_str(), "--format", "csv"];
    if let Some(v) = &version {
        args.extend(["--version", v.as_str()]);
    }
    args.push(query);
    let out = run(&args);
    if !out.status.success() {
        return Err(text(&out));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| text(&out))
}

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    walk(dir).into_iter().collect()
}

/// Adds civil-registry person number `n` (not in the sample), so runs differ in size.
#[test]
fn a_damaged_or_missing_log_or_table_is_an_error_naming_the_file_and_nothing_is_lost() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let workspace = project.workspace("sample");
    let persons = csv_count(&project, None, "SELECT count(*) FROM person").expect("count");
    let before = files_under(&workspace.join("store"));

    // A damaged log entry.
    let log = workspace.join("store/_versions/_delta_log/00000000000000000000.json");
    let original = std::fs::read(&log).expect("log");
    std::fs::write(&log, b"{ this is not json").expect("damage");
    for args in [
        vec!["run", "--force"],
        vec!["link"],
        vec!["sql"],
        vec!["status"],
    ] {
        let pipeline = project.pipeline("sample");
        let mut full = vec![args[0], pipeline.as_str()];
        full.extend(&args[1..]);
        if args[0] == "sql" {
            full.push("SELECT count(*) FROM person");
        }
        let out = run(&full);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("_versions/_delta_log"),
            "{args:?} names the log: {}",
            text(&out)
        );
    }
    assert_eq!(
        files_under(&workspace.join("store")),
        before,
        "nothing deleted or added"
    );
    std::fs::write(&log, original).expect("repair");
    assert_eq!(
        csv_count(&project, None, "SELECT count(*) FROM person").expect("count"),
        persons
    );

    // A missing log: never read as "no registry".
    let versions = workspace.join("store/_versions");
    let aside = workspace.join("versions-aside");
    std::fs::rename(&versions, &aside).expect("move");
    let out = run(&["link", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the version log is missing although tables exist"),
        "{}",
        text(&out)
    );
    std::fs::rename(&aside, &versions).expect("restore");

    // A missing data file of a published table.
    let person = project.table_file("sample", "registry/person");
    let moved = workspace.join("person-aside.parquet");
    std::fs::rename(&person, &moved).expect("move");
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "SELECT count(*) FROM person",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&person.display().to_string()) && text(&out).contains("missing"),
        "{}",
        text(&out)
    );
    let out = run(&["run", &project.pipeline("sample"), "--force"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a run does not renumber: {}",
        text(&out)
    );
    std::fs::rename(&moved, &person).expect("restore");
    assert_eq!(
        project.history("sample").len(),
        1,
        "nothing published meanwhile"
    );
    // A workspace in the old layout is refused with what to do.
    let old = project.path().join("workspace/old");
    std::fs::create_dir_all(old.join("registry")).expect("mkdir");
    std::fs::write(old.join("registry/_current.json"), b"{}").expect("pointer");
    let out = run(&[
        "link",
        &project.pipeline("sample"),
        "--workspace",
        &old.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("old file-and-pointer layout") && text(&out).contains("mv "),
        "{}",
        text(&out)
    );
}

#[test]
fn a_session_open_across_two_runs_and_a_vacuum_keeps_its_answers() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let workspace = terpadu::workspace::Workspace::new(&project.workspace("sample"));
    let queries = [
        "SELECT count(*) AS n FROM person",
        "SELECT count(*) AS n FROM dukcapil",
        "SELECT count(*) AS n FROM report_data_quality",
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let session = runtime
        .block_on(terpadu::catalog::ReadOnlySession::open(
            &workspace,
            None,
            terpadu::catalog::QueryLimits::default(),
        ))
        .expect("session");
    let answers = |session: &terpadu::catalog::ReadOnlySession| -> Vec<String> {
        queries
            .iter()
            .map(|q| {
                let batches = runtime.block_on(session.query(q)).expect("query");
                column_text(&batches, "n")[0].clone().expect("a count")
            })
            .collect()
    };
    let first = answers(&session);
    for n in 0..2 {
        add_person(&project, n);
        sample_run(&project, false);
    }
    let out = run(&["vacuum", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        answers(&session),
        first,
        "the pinned session answers as before"
    );
    let fresh = runtime
        .block_on(terpadu::catalog::ReadOnlySession::open(
            &workspace,
            None,
            terpadu::catalog::QueryLimits::default(),
        ))
        .expect("session");
    assert_ne!(answers(&fresh), first, "a new session sees the newer data");
}

#[test]
fn readers_during_ten_runs_never_see_a_mixed_version() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let root = project.workspace("sample");
    // One answer: counts from the staged, registry and report tables and the ledger of one
    // session. A mix of two versions gives a combination that no version has.
    let query = "SELECT (SELECT count(*) FROM dukcapil) AS staged, \
                 (SELECT count(*) FROM person) AS persons, \
                 (SELECT count(*) FROM record_link) AS records, \
                 (SELECT sum(rows_staged) FROM report_data_quality) AS reported";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let workspace = terpadu::workspace::Workspace::new(&root);
            let mut answers = Vec::new();
            let mut failures = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let answer = runtime.block_on(async {
                    let session = terpadu::catalog::ReadOnlySession::open(
                        &workspace,
                        None,
                        terpadu::catalog::QueryLimits::default(),
                    )
                    .await?;
                    let batches = session.query(query).await?;
                    Ok::<_, terpadu::sql::SqlError>((session.version(), batches))
                });
                match answer {
                    Ok((version, batches)) => {
                        let row: Vec<String> = ["staged", "persons", "records", "reported"]
                            .iter()
                            .map(|c| column_text(&batches, c)[0].clone().unwrap_or_default())
                            .collect();
                        answers.push((version, row));
                    }
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (answers, failures)
        })
    };
    for n in 0..10 {
        add_person(&project, n);
        sample_run(&project, false);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (answers, failures) = reader.join().expect("reader");
    assert!(failures.is_empty(), "readers failed: {failures:?}");
    assert!(answers.len() >= 10, "{} answers", answers.len());
    // What each version holds, asked afterwards one version at a time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let workspace = terpadu::workspace::Workspace::new(&root);
    let mut truth = std::collections::BTreeMap::new();
    for version in project.history("sample").iter().map(|v| v.version) {
        let batches = runtime
            .block_on(async {
                terpadu::catalog::ReadOnlySession::open(
                    &workspace,
                    Some(&version.to_string()),
                    terpadu::catalog::QueryLimits::default(),
                )
                .await?
                .query(query)
                .await
            })
            .expect("a version reads back");
        let row: Vec<String> = ["staged", "persons", "records", "reported"]
            .iter()
            .map(|c| column_text(&batches, c)[0].clone().unwrap_or_default())
            .collect();
        truth.insert(version, row);
    }
    let distinct: BTreeSet<&Vec<String>> = truth.values().collect();
    assert_eq!(
        distinct.len(),
        truth.len(),
        "every version differs: {truth:?}"
    );
    let mixed = answers
        .iter()
        .filter(|(version, row)| truth.get(version) != Some(row))
        .count();
    let seen: BTreeSet<u64> = answers.iter().map(|(v, _)| *v).collect();
    println!(
        "readers: {} answers over {} versions, {mixed} mixed",
        answers.len(),
        seen.len()
    );
    assert_eq!(mixed, 0, "answers that belong to no single version");
    assert!(seen.len() >= 3, "readers saw several versions: {seen:?}");
}

#[test]
fn the_sql_prompt_refuses_every_kind_of_write_and_stops_runaway_queries() {
    let project = Project::with_sample();
    let out = run(&["--quiet", "ingest", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let target = project.path().join("copied.parquet");
    let staged = project.staged("sample", "pkh");
    let staged_bytes = std::fs::read(&staged).expect("staged file");
    let statements = [
        (format!("COPY (SELECT 1) TO '{}'", target.display()), "COPY"),
        (
            format!(
                "COPY (SELECT * FROM pkh) TO '{}' STORED AS PARQUET",
                staged.display()
            ),
            "COPY",
        ),
        ("CREATE TABLE t AS SELECT 1".to_string(), "CREATE"),
        (
            format!(
                "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
                staged.display()
            ),
            "CREATE EXTERNAL TABLE",
        ),
        ("CREATE VIEW v AS SELECT 1".to_string(), "CREATE VIEW"),
        ("INSERT INTO pkh SELECT * FROM pkh".to_string(), "INSERT"),
        ("DELETE FROM pkh".to_string(), "DELETE"),
        ("DROP TABLE pkh".to_string(), "DROP"),
        ("SET datafusion.execution.batch_size = 1".to_string(), "SET"),
        (
            "EXPLAIN ANALYZE INSERT INTO pkh SELECT * FROM pkh".to_string(),
            "INSERT",
        ),
    ];
    for (statement, kind) in &statements {
        let out = run(&["sql", &project.pipeline("sample"), statement]);
        assert_eq!(out.status.code(), Some(1), "{statement}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is not allowed: the registry is read-only")
                && stderr.to_uppercase().contains(kind),
            "{statement}: {stderr}"
        );
    }
    // A file path in FROM is not a table.
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        &format!("SELECT count(*) FROM '{}'", staged.display()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!target.exists(), "COPY wrote nothing");
    assert_eq!(std::fs::read(&staged).expect("staged"), staged_bytes);
    // The same statement kinds through the interactive prompt.
    let mut child = terpadu()
        .args(["sql", &project.pipeline("sample")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "DROP TABLE pkh;").expect("write");
        writeln!(stdin, "SELECT count(*) AS n FROM pkh;").expect("write");
    }
    let out = child.wait_with_output().expect("prompt");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("DROP"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('n'),
        "{}",
        text(&out)
    );

    // Runaway statements stop at their limits.
    let clock = Instant::now();
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--timeout-seconds",
        "2",
        "SELECT count(*) FROM generate_series(1, 20000000000)",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("stopped after 2 s"), "{}", text(&out));
    assert!(
        clock.elapsed() < Duration::from_secs(60),
        "{:?}",
        clock.elapsed()
    );
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--memory-limit-mb",
        "16",
        "SELECT count(DISTINCT v) FROM (SELECT value * 7 AS v FROM generate_series(1, 30000000))",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Resources exhausted"),
        "the memory limit stops it: {}",
        text(&out)
    );
}

/// Every failpoint of a forced run is a place where the process may die: the harness aborts
/// there and checks that the previous version reads back whole and the next run succeeds.
#[test]
fn aborting_at_every_commit_step_leaves_a_readable_store_and_the_next_run_succeeds() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let persons = csv_count(&project, None, "SELECT count(*) FROM person").expect("count");
    let log = project.path().join("failpoints.log");
    let out = terpadu()
        .args(["--quiet", "run", &project.pipeline("sample"), "--force"])
        .env("TERPADU_FAILPOINT_LOG", &log)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let steps: Vec<String> = std::fs::read_to_string(&log)
        .expect("failpoint log")
        .lines()
        .map(String::from)
        .collect();
    // One step of each kind and table family, plus every version and vacuum step: the whole
    // list is ~90 steps, and each abort costs a run.
    let mut chosen: Vec<String> = Vec::new();
    for step in &steps {
        let (kind, table) = step.split_once(':').unwrap_or((step, ""));
        let family = table.split('/').next().unwrap_or("");
        let key = format!("{kind}:{family}");
        if kind == "version"
            || !chosen
                .iter()
                .any(|c| c.starts_with(&key) && c.split_once(':').map(|x| x.0) == Some(kind))
        {
            chosen.push(step.clone());
        }
    }
    assert!(chosen.iter().any(|s| s == "version:commit"), "{steps:?}");
    assert!(chosen.iter().any(|s| s.starts_with("vacuum:")), "{steps:?}");
    assert!(chosen.len() >= 10, "{chosen:?}");
    for step in &chosen {
        let before = project.history("sample").len();
        let out = terpadu()
            .args(["--quiet", "run", &project.pipeline("sample"), "--force"])
            .env("TERPADU_FAILPOINT", step)
            .output()
            .expect("run");
        assert!(
            !out.status.success(),
            "{step}: the process aborted: {}",
            text(&out)
        );
        let after = project.history("sample").len();
        let committed = step == "version:committed" || step.starts_with("vacuum:");
        assert_eq!(
            after,
            before + usize::from(committed),
            "{step}: only a committed version is visible"
        );
        for version in project
            .history("sample")
            .iter()
            .map(|v| v.version)
            .rev()
            .take(2)
        {
            assert_eq!(
                csv_count(&project, Some(version), "SELECT count(*) FROM person"),
                Ok(persons),
                "{step}: version {version} reads back whole"
            );
        }
    }
    let out = run(&["run", &project.pipeline("sample"), "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    println!(
        "failpoints: aborted at {} of {} steps",
        chosen.len(),
        steps.len()
    );
}

#[test]
fn an_independent_delta_reader_gets_the_same_row_counts() {
    let python = std::env::var("TERPADU_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import deltalake; print(deltalake.__version__)"])
        .output();
    let Some(probe) = probe.ok().filter(|o| o.status.success()) else {
        println!(
            "SKIPPED: the Python deltalake package is not installed for {python} (.ci/run installs it from PyPI; set TERPADU_PYTHON)"
        );
        return;
    };
    println!(
        "python deltalake {}",
        String::from_utf8_lossy(&probe.stdout).trim()
    );
    let project = Project::with_sample();
    sample_run(&project, false);
    let latest = project.history("sample").pop().expect("a version");
    let store = project.workspace("sample").join("store");
    // The reader opens each table at the Delta version the workspace version names, as any
    // tool that reads `_versions` would.
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
store = sys.argv[1]
versions = DeltaTable(store + "/_versions").to_pyarrow_table().to_pylist()
latest = max(versions, key=lambda r: r["version"])
for name, version in sorted(json.loads(latest["tables"]).items()):
    table = DeltaTable(store + "/" + name, version=version)
    print(name, table.to_pyarrow_table().num_rows)
# deltalake's runtime threads can abort the interpreter at shutdown ("terminate called
# without an active exception"); the answer is complete here, so leave without teardown.
sys.stdout.flush()
os._exit(0)
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&store)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", text(&out));
    let counts: std::collections::BTreeMap<String, u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, n) = l.split_once(' ')?;
            Some((name.to_string(), n.parse().ok()?))
        })
        .collect();
    assert_eq!(counts.len(), latest.tables.len(), "{counts:?}");
    for (table, sql_name) in [
        ("registry/person", "person"),
        ("registry/family", "family"),
        ("registry/record_link", "record_link"),
        ("registry/program_membership", "program_membership"),
        ("staged/dukcapil", "dukcapil"),
        ("reports/duplicates", "report_duplicates"),
    ] {
        let ours =
            csv_count(&project, None, &format!("SELECT count(*) FROM {sql_name}")).expect("count");
        assert_eq!(counts.get(table), Some(&ours), "{table}");
    }
}

/// Every NIK, KK and full name of the staged sample.
fn personal_values(project: &Project) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for source in ["dukcapil", "dtks", "pkh"] {
        let batches = read_parquet(&project.staged("sample", source));
        for column in ["nik", "no_kk"] {
            ids.extend(
                column_text(&batches, column)
                    .into_iter()
                    .flatten()
                    .filter(|v| v.len() >= 15),
            );
        }
        names.extend(
            column_text(&batches, "full_name")
                .into_iter()
                .flatten()
                .filter(|n| n.contains(' ') && n.len() >= 8),
        );
    }
    (ids, names)
}

#[test]
fn logs_and_the_ledger_hold_no_nik_kk_or_name() {
    let project = Project::with_sample();
    let mut logs = String::new();
    for format in ["human", "json"] {
        let out = run(&[
            "--log-format",
            format,
            "run",
            &project.pipeline("sample"),
            "--force",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        logs.contains("Blocking rule."),
        "INFO lines were logged: {logs}"
    );
    // A failed run: an exploding blocking rule, whose error names its largest block.
    let path = project.path().join("pipelines/sample.toml");
    let pipeline = std::fs::read_to_string(&path).expect("pipeline");
    std::fs::write(
        &path,
        pipeline.replace("[linkage]\n", "[linkage]\nmax_pairs_per_rule = 10\n"),
    )
    .expect("write");
    let out = run(&["run", &project.pipeline("sample"), "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    logs.push_str(&String::from_utf8_lossy(&out.stderr));
    assert!(logs.contains("largest block is"), "{logs}");
    let ledger = std::fs::read_to_string(project.workspace("sample").join("runs/ledger.jsonl"))
        .expect("ledger");
    assert!(
        ledger.contains("largest block is"),
        "the failure is in the ledger"
    );
    let (ids, names) = personal_values(&project);
    assert!(
        ids.len() > 1000 && names.len() > 1000,
        "{} {}",
        ids.len(),
        names.len()
    );
    for (what, text) in [("logs", &logs), ("ledger", &ledger)] {
        let leaked_ids: Vec<&String> = ids.iter().filter(|v| text.contains(v.as_str())).collect();
        let leaked_names: Vec<&String> =
            names.iter().filter(|v| text.contains(v.as_str())).collect();
        assert!(
            leaked_ids.is_empty(),
            "{what} show ids: {:?}",
            &leaked_ids[..leaked_ids.len().min(5)]
        );
        assert!(
            leaked_names.is_empty(),
            "{what} show names: {:?}",
            &leaked_names[..leaked_names.len().min(5)]
        );
    }
    // --unmasked is recorded: who, when, what, where.
    std::fs::write(&path, pipeline).expect("restore");
    let out = run(&[
        "--quiet",
        "report",
        &project.pipeline("sample"),
        "--unmasked",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let access = std::fs::read_to_string(project.workspace("sample").join("runs/access.jsonl"))
        .expect("access log");
    let entry: serde_json::Value =
        serde_json::from_str(access.lines().last().expect("a line")).expect("json");
    assert_eq!(entry["command"], "report --unmasked");
    assert!(entry["os_user"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(
        entry["output"]
            .as_str()
            .is_some_and(|o| o.contains("files/v")),
        "{entry}"
    );
}

#[test]
fn terminal_escapes_from_an_input_header_are_escaped_in_messages() {
    let project = Project::with_sample();
    let file = crate::util::first_input(&project, "pkh");
    let content = std::fs::read_to_string(&file).expect("read");
    let (header, rest) = content.split_once('\n').expect("a header");
    // A header whose first column carries a terminal escape: the layout's column is missing.
    let mut columns: Vec<String> = header.split(',').map(String::from).collect();
    columns[1] = format!("\u{1b}[2J\u{1b}[31m{}", columns[1]);
    std::fs::write(&file, format!("{}\n{rest}", columns.join(","))).expect("write");
    for command in ["check", "ingest"] {
        let out = run(&[command, &project.pipeline("sample")]);
        assert_ne!(out.status.code(), Some(0), "{command}: {}", text(&out));
        let all = text(&out);
        assert!(
            !all.contains('\u{1b}'),
            "{command} printed a raw escape: {all:?}"
        );
        assert!(
            all.contains("\\u{1b}[2J"),
            "{command} shows it escaped: {all}"
        );
    }
}
