//! Nightly operations: `terpadu run` with change detection, arrival rules, sanity thresholds,
//! the run ledger, rollback, the run lock, and a kill harness.

use std::time::Duration;

use crate::util::{Project, run, sql_json, terpadu, text};

fn pipeline_path(project: &Project) -> std::path::PathBuf {
    project.path().join("pipelines/sample.toml")
}

/// Adds TOML lines inside the `[[sources]]` entry named `source`.
fn set_source_option(project: &Project, source: &str, lines: &str) {
    let path = pipeline_path(project);
    let text = std::fs::read_to_string(&path).expect("pipeline");
    let anchor = format!("name = \"{source}\"\n");
    assert!(text.contains(&anchor), "no source {source}");
    std::fs::write(
        &path,
        text.replacen(&anchor, &format!("{anchor}{lines}\n"), 1),
    )
    .expect("write");
}

fn runs(project: &Project) -> Vec<serde_json::Value> {
    sql_json(
        project,
        "SELECT run_id, status, registry_version, error, exit_code, notes FROM runs ORDER BY started_at",
    )
}

fn current_version(project: &Project) -> Option<String> {
    project
        .history("sample")
        .last()
        .map(|v| v.version.to_string())
}

fn data_file(project: &Project, dir: &str) -> std::path::PathBuf {
    std::fs::read_dir(project.path().join("sample_data").join(dir))
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("a file")
}

#[test]
fn unchanged_inputs_skip_the_run_and_a_changed_source_alone_is_restaged() {
    let project = Project::with_sample();
    let first = run(&["run", &project.pipeline("sample")]);
    assert!(first.status.success(), "{}", text(&first));
    let version = current_version(&project).expect("published");
    let second = run(&["run", &project.pipeline("sample")]);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("skipped_unchanged"),
        "{}",
        text(&second)
    );
    assert_eq!(current_version(&project).as_deref(), Some(version.as_str()));

    // Tonight's PBI list lost its last row.
    let pbi = data_file(&project, "pbi");
    let content = std::fs::read_to_string(&pbi).expect("read");
    let shorter: Vec<&str> = content.lines().collect();
    std::fs::write(&pbi, shorter[..shorter.len() - 1].join("\n") + "\n").expect("write");
    let third = run(&["run", &project.pipeline("sample")]);
    assert!(third.status.success(), "{}", text(&third));
    let stdout = String::from_utf8_lossy(&third.stdout);
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stdout.contains("not re-staged: dukcapil, dtks, pkh, bpnt, jamsosratu, pengaduan"),
        "{stdout}"
    );
    assert_ne!(current_version(&project).as_deref(), Some(version.as_str()));

    // --force reruns all.
    let forced = run(&["run", &project.pipeline("sample"), "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(!String::from_utf8_lossy(&forced.stdout).contains("not re-staged"));

    let ledger = runs(&project);
    let statuses: Vec<&str> = ledger
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        vec!["succeeded", "skipped_unchanged", "succeeded", "succeeded"]
    );
    let out = run(&["runs", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("succeeded")
            .count(),
        3
    );
    let out = run(&["status", &project.pipeline("sample")]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains(&format!(
            "current version   {}",
            current_version(&project).expect("v")
        )),
        "{status}"
    );
    assert!(status.contains("input             pbi"), "{status}");
    assert!(status.contains("last run"), "{status}");
}

#[test]
fn sources_that_have_not_arrived_fail_the_run_before_any_work() {
    let project = Project::with_sample();
    // Missing: a required source with no file.
    std::fs::remove_file(data_file(&project, "pengaduan")).expect("remove");
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("source 'pengaduan': no file matches"),
        "{}",
        text(&out)
    );
    assert!(current_version(&project).is_none(), "nothing published");
    assert!(
        !project.workspace("sample").join("store/staged").exists(),
        "nothing staged"
    );
    // Optional: the run goes on without it, and says so.
    set_source_option(&project, "pengaduan", "arrival = { required = false }");
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("optional, so its previous staged version is kept"),
        "{}",
        text(&out)
    );

    // Half-written: the PBI extract needs its _SUCCESS marker.
    set_source_option(&project, "pbi", "arrival = { marker = \"_SUCCESS\" }");
    let out = run(&["run", &project.pipeline("sample"), "--force"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("marker"), "{}", text(&out));
    std::fs::write(project.path().join("sample_data/pbi/_SUCCESS"), "").expect("marker");
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));

    // Stale: an extract older than allowed.
    set_source_option(&project, "bpnt", "arrival = { max_age_hours = 0.0001 }");
    std::thread::sleep(Duration::from_millis(500));
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("older than max_age_hours"),
        "{}",
        text(&out)
    );
    // The ledger records the failure with its exit code.
    let ledger = runs(&project);
    let last = ledger.last().expect("runs");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["exit_code"], 3);
}

#[test]
fn a_file_still_being_written_is_not_read() {
    let project = Project::with_sample();
    set_source_option(&project, "pkh", "arrival = { stable_seconds = 1 }");
    let pkh = data_file(&project, "pkh");
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = writing.clone();
    // Keeps the file changing until the run has answered.
    let writer = std::thread::spawn(move || {
        while still.load(std::sync::atomic::Ordering::SeqCst) {
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(&pkh)
                .expect("open");
            file.set_modified(std::time::SystemTime::now())
                .expect("touch");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let out = run(&["run", &project.pipeline("sample")]);
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    writer.join().expect("writer");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("still being written"), "{}", text(&out));
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(
        out.status.success(),
        "once quiet, it is read: {}",
        text(&out)
    );
}

#[test]
fn a_truncated_extract_is_rejected_and_the_previous_version_stays_current() {
    let project = Project::with_sample();
    set_source_option(
        &project,
        "dukcapil",
        "checks = { max_row_drop = 0.2, max_quarantined_share = 0.05 }",
    );
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let version = current_version(&project).expect("published");
    // The civil-registry extract arrives cut in half.
    let dukcapil = data_file(&project, "dukcapil");
    let content = std::fs::read_to_string(&dukcapil).expect("read");
    let half: Vec<&str> = content.lines().take(content.lines().count() / 2).collect();
    std::fs::write(&dukcapil, half.join("\n") + "\n").expect("write");
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("fewer than the 10000 of the current version"),
        "{}",
        text(&out)
    );
    assert_eq!(current_version(&project).as_deref(), Some(version.as_str()));
    let manifest = project.manifest("sample");
    let dukcapil_rows = manifest["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == "dukcapil")
        .map(|s| s["rows_read"].as_u64().expect("rows"));
    assert_eq!(
        dukcapil_rows,
        Some(10_000),
        "the staged data stays the previous version"
    );
    // Garbage: one row in eight has lost a separator, too many to quarantine quietly.
    let damaged: Vec<String> = content
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i > 0 && i % 8 == 0 {
                l.replacen('|', "", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&dukcapil, damaged.join("\n") + "\n").expect("write");
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("above max_quarantined_share 5.0%"),
        "{}",
        text(&out)
    );
    assert_eq!(current_version(&project).as_deref(), Some(version.as_str()));
}

#[test]
fn a_header_only_or_halved_extract_stops_publication_by_default() {
    let project = Project::with_sample();
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let version = current_version(&project).expect("published");
    // The PKH list arrives with its header only: no checks are configured.
    let pkh = data_file(&project, "pkh");
    let content = std::fs::read_to_string(&pkh).expect("read");
    let header = content.lines().next().expect("header");
    std::fs::write(&pkh, format!("{header}\n")).expect("write");
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("source 'pkh': 0 rows staged (0 read, 0 quarantined)"),
        "{}",
        text(&out)
    );
    assert_eq!(current_version(&project).as_deref(), Some(version.as_str()));
    let last = runs(&project).last().cloned().expect("runs");
    assert_eq!(last["exit_code"], 4, "{last}");
    assert!(
        last["error"].as_str().is_some_and(|e| e.contains("pkh")),
        "{last}"
    );
    let status = run(&["status", &project.pipeline("sample")]);
    assert!(
        text(&status).contains("0 rows staged"),
        "status names it: {}",
        text(&status)
    );

    // A third of the rows: below the default half.
    let lines: Vec<&str> = content.lines().collect();
    let third = lines[..1 + (lines.len() - 1) / 3].join("\n") + "\n";
    std::fs::write(&pkh, &third).expect("write");
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("(max_row_drop 50.0%, the default)"),
        "{}",
        text(&out)
    );
    assert_eq!(current_version(&project).as_deref(), Some(version.as_str()));

    // Declared: the office really did shrink the list.
    set_source_option(&project, "pkh", "checks = { max_row_drop = 1.0 }");
    let out = run(&["run", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(current_version(&project).as_deref(), Some(version.as_str()));
}

#[test]
fn check_refuses_thresholds_a_night_cannot_hold() {
    let project = Project::with_sample();
    set_source_option(
        &project,
        "pkh",
        "arrival = { stable_seconds = 100000 }\nchecks = { max_row_drop = -0.5 }",
    );
    let out = run(&["check", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("arrival.stable_seconds") && all.contains("27.8 hours per source"),
        "{all}"
    );
    assert!(
        all.contains("checks.max_row_drop") && all.contains("-0.5 is not a share"),
        "{all}"
    );
}

fn count(project: &Project, version: Option<&str>, query: &str) -> u64 {
    let mut args = vec![
        "sql",
        project.pipeline("sample").leak() as &str,
        "--format",
        "csv",
    ];
    if let Some(version) = version {
        args.extend(["--version", version]);
    }
    args.push(query);
    let out = run(&args);
    assert!(out.status.success(), "{query}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("a count: {}", text(&out)))
}

/// The highest person number ever issued: P000000123 -> 123.
const MAX_PERSON: &str = "SELECT max(CAST(substr(person_id, 2) AS BIGINT)) AS n FROM person";

#[test]
fn rollback_publishes_an_earlier_version_again_and_ids_keep_growing() {
    let project = Project::with_sample();
    assert!(
        run(&["--quiet", "run", &project.pipeline("sample")])
            .status
            .success()
    );
    let first = current_version(&project).expect("first");
    // A second run with one more person, so that its ids go beyond the first's.
    append_person(&project);
    assert!(
        run(&["--quiet", "run", &project.pipeline("sample"), "--force"])
            .status
            .success()
    );
    let second = current_version(&project).expect("second");
    assert_ne!(first, second);
    let max_second = count(&project, None, MAX_PERSON);
    let out = run(&["rollback", &project.pipeline("sample"), &first]);
    assert!(out.status.success(), "{}", text(&out));
    let third = current_version(&project).expect("third");
    assert_eq!(third, "3", "a rollback publishes a new version");
    let history = project.history("sample");
    assert_eq!(history[2].restored_from, Some(1));
    assert_eq!(
        history[2].tables, history[0].tables,
        "the first version's tables"
    );
    assert_eq!(
        count(&project, None, "SELECT count(*) FROM person"),
        count(&project, Some(&first), "SELECT count(*) FROM person")
    );
    let ledger = runs(&project);
    let last = ledger.last().expect("runs");
    assert_eq!(last["registry_version"], "3");
    assert!(
        last["notes"].as_str().unwrap_or("").contains(
            "version 3 publishes the contents of version 1 again (the current one was 2)"
        ),
        "{last}"
    );
    // The next forced run deletes nothing: every earlier version still reads back, and
    // person numbering goes on above everything issued before the rollback.
    let out = run(&["--quiet", "run", &project.pipeline("sample"), "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    for version in ["1", "2", "3", "4"] {
        assert!(count(&project, Some(version), "SELECT count(*) FROM person") > 10_000);
    }
    assert_eq!(
        count(&project, Some("2"), MAX_PERSON),
        max_second,
        "version 2 unchanged"
    );
    let max_fourth = count(&project, None, MAX_PERSON);
    assert!(max_fourth >= max_second, "{max_fourth} < {max_second}");
    let fresh = count(
        &project,
        None,
        "SELECT count(*) FROM registry_changes WHERE change = 'created'",
    );
    if fresh > 0 {
        assert!(
            max_fourth > max_second,
            "new people get numbers never issued before: {max_fourth} vs {max_second}"
        );
    }

    // Only this workspace's version numbers are accepted.
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--version",
        "nope",
        "SELECT 1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("'nope' is not a version number"),
        "{}",
        text(&out)
    );
    for bad in ["99", "/tmp", "../../etc"] {
        let out = run(&["rollback", &project.pipeline("sample"), bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {}", text(&out));
        assert!(text(&out).contains("has no version"), "{}", text(&out));
    }
    assert_eq!(current_version(&project).as_deref(), Some("4"));
}

/// Adds one civil-registry person the sample does not have.
fn append_person(project: &Project) {
    let file = data_file(project, "dukcapil");
    let mut text = std::fs::read_to_string(&file).expect("read");
    text.push_str(
        "3601015507998001|3601011503108001|SITI ROLLBACK|PANDEGLANG|15-07-1999|2|1|4|ISLAM|PETANI|36|1|1|2001|KP. SUKAMAJU|001|002|HIDUP|\n",
    );
    std::fs::write(&file, text).expect("write");
}

#[test]
fn a_second_run_of_the_same_pipeline_is_refused_while_one_holds_the_lock() {
    let project = Project::with_sample();
    let workspace = project.workspace("sample");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    // This test process holds the workspace lock (a kernel lock, as a running terpadu would).
    let mut lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(workspace.join(".lock"))
        .expect("lock file");
    std::io::Write::write_all(
        &mut lock,
        format!(
            "{{\"pid\":{},\"host\":\"{host}\",\"since\":\"2026-11-23T02:00:00Z\",\"command\":\"run\"}}",
            std::process::id()
        )
        .as_bytes(),
    )
    .expect("write");
    lock.lock().expect("lock");
    let out = run(&["run", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("pid {}", std::process::id())),
        "{}",
        text(&out)
    );
    drop(lock);
    let out = run(&["--quiet", "run", &project.pipeline("sample")]);
    assert!(out.status.success(), "released: {}", text(&out));
}

#[test]
fn killed_runs_never_leave_a_half_published_registry() {
    let project = Project::with_sample();
    assert!(
        run(&["--quiet", "run", &project.pipeline("sample")])
            .status
            .success()
    );
    let persons = |project: &Project| -> u64 {
        let out = run(&[
            "sql",
            &project.pipeline("sample"),
            "--format",
            "csv",
            "SELECT count(*) AS n FROM person",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("a count")
    };
    let expected = persons(&project);
    // 20 kill points spread over a forced run (ingest, link, report, publication), timed on
    // this machine.
    let clock = std::time::Instant::now();
    assert!(
        run(&["--quiet", "run", &project.pipeline("sample"), "--force"])
            .status
            .success()
    );
    let run_ms = clock.elapsed().as_millis() as u64;
    let mut killed = 0;
    for point in 0..20u64 {
        let mut child = terpadu()
            .args(["--quiet", "run", &project.pipeline("sample"), "--force"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(20 + point * run_ms / 21));
        if child.try_wait().expect("wait").is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        // Whatever is current reads back whole.
        assert_eq!(persons(&project), expected, "after a kill at point {point}");
    }
    assert!(killed >= 15, "most kill points land inside a run: {killed}");
    // The next run succeeds and the killed ones are recorded as interrupted.
    let out = run(&["run", &project.pipeline("sample"), "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let ledger = runs(&project);
    let interrupted = ledger
        .iter()
        .filter(|r| r["status"] == "interrupted")
        .count();
    assert!(
        interrupted >= 10,
        "killed runs marked interrupted: {interrupted} of {killed}"
    );
    assert!(!ledger.iter().any(|r| r["status"] == "running"));
    println!("kill harness: {killed} of 20 kill points interrupted a run; all recovered");
}

#[test]
fn vacuum_keeps_what_retention_names_and_refuses_the_rest_clearly() {
    let project = Project::with_sample();
    let path = pipeline_path(&project);
    let before = std::fs::read_to_string(&path).expect("pipeline");
    assert!(
        before.contains("keep_versions = 5"),
        "the sample declares [store]"
    );
    std::fs::write(
        &path,
        before
            .replace("keep_versions = 5", "keep_versions = 2")
            .replace("retain_hours = 168", "retain_hours = 0"),
    )
    .expect("write");
    for _ in 0..3 {
        let out = run(&["--quiet", "run", &project.pipeline("sample"), "--force"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Each run vacuumed after it published: versions 2 and 3 read back whole.
    let persons = count(&project, Some("3"), "SELECT count(*) FROM person");
    assert_eq!(
        count(&project, Some("2"), "SELECT count(*) FROM person"),
        persons
    );
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--version",
        "1",
        "SELECT count(*) FROM person",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("may have been vacuumed"),
        "{}",
        text(&out)
    );
    // A vacuum with the same policy has nothing left to delete.
    let out = run(&["vacuum", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deleted 0 table files"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_scheduler_runs_on_time_and_stops_cleanly_on_sigterm() {
    let project = Project::with_sample();
    let path = pipeline_path(&project);
    let pipeline = std::fs::read_to_string(&path).expect("pipeline");
    // Every three seconds (six fields: seconds first), in the default time zone.
    std::fs::write(
        &path,
        pipeline.replacen(
            "province = \"36\"",
            "schedule = \"*/3 * * * * *\"\nprovince = \"36\"",
            1,
        ),
    )
    .expect("write");
    let out = run(&["schedule", &project.pipeline("sample"), "--next", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+07:00"),
        "Asia/Jakarta by default: {}",
        text(&out)
    );
    let log_path = project.path().join("daemon.log");
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let mut daemon = terpadu()
        .args([
            "--log-format",
            "json",
            "schedule",
            &project.pipeline("sample"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("spawn");
    let ledger = project.workspace("sample").join("runs/ledger.jsonl");
    let finished = |ledger: &std::path::Path| -> usize {
        std::fs::read_to_string(ledger)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("\"trigger\":\"schedule\"") && !l.contains("\"status\":\"running\"")
            })
            .count()
    };
    let started = std::time::Instant::now();
    while finished(&ledger) < 2 && started.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(finished(&ledger) >= 2, "two scheduled runs within 40 s");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let stopped = std::time::Instant::now();
    let code = loop {
        if let Some(code) = daemon.try_wait().expect("wait") {
            break code;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "the daemon stops after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(code.success(), "clean exit: {code:?}");
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(logs.contains("\"signal\":\"SIGTERM\""), "{logs}");
    assert!(logs.contains("Scheduler stopped."), "{logs}");
    let ledger = runs(&project);
    assert!(ledger.len() >= 2, "{ledger:?}");
    assert!(
        !ledger.iter().any(|r| r["status"] == "running"),
        "{ledger:?}"
    );
}

/// A full disk mid-run: a clear error naming the file, the previous version current, and the
/// next run succeeds once there is room. Needs a small tmpfs (root in a container or VM);
/// without mount rights the same property is checked with a workspace path that cannot be
/// written (a file where a directory should be).
#[test]
fn a_full_disk_fails_cleanly_and_leaves_the_previous_version_current() {
    let project = Project::with_sample();
    let mount = project.path().join("small-disk");
    std::fs::create_dir_all(&mount).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(&mount)
        .status()
        .is_ok_and(|s| s.success());
    let workspace = mount.join("ws");
    let args = |force: bool| {
        let mut args = vec![
            "run".to_string(),
            project.pipeline("sample"),
            "--workspace".to_string(),
            workspace.display().to_string(),
        ];
        if force {
            args.push("--force".into());
        }
        args
    };
    let go = |force: bool| {
        let a = args(force);
        run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = go(false);
    assert!(out.status.success(), "{}", text(&out));
    let latest = |workspace: &std::path::Path| {
        crate::util::block_on(terpadu::store::Store::new(workspace).history())
            .expect("history")
            .last()
            .map(|v| v.version)
    };
    let version = latest(&workspace);
    let blocker = if mounted {
        // Leave about half a megabyte free.
        let free = {
            let out = std::process::Command::new("df")
                .args(["--output=avail", "-B1"])
                .arg(&mount)
                .output()
                .expect("df");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u64>().ok())
                .expect("free bytes")
        };
        let filler = mount.join("filler");
        std::fs::write(
            &filler,
            vec![0u8; (free.saturating_sub(512 * 1024)) as usize],
        )
        .expect("fill");
        filler
    } else {
        // No mount rights: the staged tables cannot be written.
        let staged = workspace.join("store/staged");
        std::fs::remove_dir_all(&staged).expect("remove staged");
        std::fs::write(&staged, b"not a directory").expect("block");
        staged
    };
    let out = go(true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(
        message.contains("cannot write")
            && (message.contains("No space left")
                || message.contains("Not a directory")
                || message.contains("File exists")),
        "{message}"
    );
    assert_eq!(
        latest(&workspace),
        version,
        "the previous version stays current"
    );
    // Room again: the next run succeeds.
    if mounted {
        std::fs::remove_file(&blocker).expect("free space");
        let out = go(true);
        assert!(out.status.success(), "{}", text(&out));
        let _ = std::process::Command::new("umount").arg(&mount).status();
    }
}
