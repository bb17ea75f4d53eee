//! `terpadu serve`: the real server over the sample registry, asked by real clients: psql,
//! psycopg (PostgreSQL wire) and the ADBC Flight SQL driver (Arrow Flight SQL). Logins, roles,
//! masking, region scopes, refusals, lockout, the audit log, versions published during reads,
//! and TLS.
//!
//! The Python clients come from PyPI in `.ci/run`'s venv (`TERPADU_PYTHON`); without them the
//! Python tests say they skipped. psql comes from the machine.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Project, add_person, run, sample_run, sql_json, terpadu, text};

/// Passwords of the test users (hashed into the config with the library's own argon2).
const PLANNER: (&str, &str) = ("planner", "planner-secret-1");
const LEBAK: (&str, &str) = ("bappeda_lebak", "lebak-secret-22");
const AUDITOR: (&str, &str) = ("auditor", "auditor-secret-3");
const MANAGER: (&str, &str) = ("manager", "manager-secret-4");
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// A server config with one user per role, a Lebak-scoped planner and a token user.
fn users_config(server: &str) -> String {
    let hash = |p: &str| terpadu::serve::config::hash_password(p).expect("hash");
    format!(
        r#"[server]
postgres = "127.0.0.1:0"
flight = "127.0.0.1:0"
{server}

[[users]]
name = "{}"
role = "planner"
password_hash = "{}"

[[users]]
name = "{}"
role = "planner"
scope = "3602"
password_hash = "{}"

[[users]]
name = "{}"
role = "auditor"
password_hash = "{}"

[[users]]
name = "{}"
role = "program_manager"
password_hash = "{}"

[[users]]
name = "notebook"
role = "planner"
token_sha256 = "{}"
"#,
        PLANNER.0,
        hash(PLANNER.1),
        LEBAK.0,
        hash(LEBAK.1),
        AUDITOR.0,
        hash(AUDITOR.1),
        MANAGER.0,
        hash(MANAGER.1),
        terpadu::serve::config::hash_token(TOKEN),
    )
}

/// A running `terpadu serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Option<Child>,
    postgres: SocketAddr,
    flight: SocketAddr,
}

impl Server {
    /// Writes `config` to the project and starts the server on free ports.
    fn start(project: &Project, config: &str) -> Server {
        let config = project.write("serve.toml", config);
        let mut child = terpadu()
            .args(["--quiet", "serve", &project.pipeline("sample"), "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("terpadu serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut postgres, mut flight) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while postgres.is_none() || flight.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = receiver
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the server did not say where it listens"));
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some("postgres"), Some(a)) => postgres = a.parse().ok(),
                (Some("listening"), Some("flight"), Some(a)) => flight = a.parse().ok(),
                _ => {}
            }
        }
        Server {
            child: Some(child),
            postgres: postgres.expect("postgres address"),
            flight: flight.expect("flight address"),
        }
    }

    /// Sends SIGTERM and waits; returns whether the server exited cleanly.
    fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        terminate(&mut child)
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

/// `psql` with `-At` (unaligned, tuples only) as `user`; `extra` adds connection keywords.
fn psql(server: &Server, (user, password): (&str, &str), extra: &str, sql: &str) -> Output {
    Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user={user} dbname=terpadu connect_timeout=10 {extra}",
            server.postgres.port()
        ))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .env("PGPASSWORD", password)
        .env_remove("PGSSLMODE")
        .output()
        .expect("psql runs (install postgresql-client)")
}

/// One value from psql, asserting success.
fn psql_value(server: &Server, user: (&str, &str), sql: &str) -> String {
    let out = psql(server, user, "sslmode=disable", sql);
    assert!(out.status.success(), "{sql}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The Python with psycopg and the ADBC Flight SQL driver, if there is one.
fn python() -> Option<String> {
    let python = std::env::var("TERPADU_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import psycopg, adbc_driver_flightsql.dbapi, pyarrow"])
        .output()
        .ok()?;
    if probe.status.success() {
        Some(python)
    } else {
        println!(
            "SKIPPED: psycopg and adbc-driver-flightsql are not installed for {python} (.ci/run installs them from PyPI; set TERPADU_PYTHON)"
        );
        None
    }
}

/// Runs `script` with `args`; returns its JSON lines.
fn python_json(python: &str, script: &str, args: &[String]) -> Vec<serde_json::Value> {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count(project: &Project, query: &str) -> u64 {
    sql_json(project, query)[0]["n"].as_u64().expect("a count")
}

fn audit_lines(project: &Project) -> Vec<serde_json::Value> {
    let path = project.workspace("sample").join("runs/audit.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn is_full_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn psql_lists_tables_and_planners_see_masked_ids_and_only_their_regency() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let server = Server::start(&project, &users_config(""));

    // psql's own catalog queries: \dt lists the role's tables, not the raw staged rows.
    let listing = psql_value(&server, PLANNER, "\\dt");
    for table in ["person", "family", "program_membership", "report_coverage"] {
        assert!(listing.contains(table), "{table} missing from:\n{listing}");
    }
    assert!(!listing.contains("dukcapil"), "{listing}");
    let columns = psql_value(
        &server,
        PLANNER,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'person' ORDER BY 1",
    );
    assert!(columns.lines().any(|c| c == "nik"), "{columns}");

    // NIK and KK are masked for a planner, in every row.
    let niks = psql_value(
        &server,
        PLANNER,
        "SELECT nik FROM person WHERE nik IS NOT NULL LIMIT 50",
    );
    assert_eq!(niks.lines().count(), 50, "{niks}");
    assert!(
        niks.lines().all(|n| n.contains('*') && !is_full_id(n)),
        "{niks}"
    );
    let total = psql_value(&server, PLANNER, "SELECT count(*) FROM person");
    assert_eq!(
        total.parse::<u64>().unwrap(),
        count(&project, "SELECT count(*) AS n FROM person")
    );

    // The Lebak login sees Lebak's rows only: in tables, joins and aggregates.
    let lebak_persons = count(
        &project,
        "SELECT count(*) AS n FROM person WHERE starts_with(coalesce(village_code, district_code, regency_code, province_code), '3602')",
    );
    assert!(lebak_persons > 0 && lebak_persons < total.parse().unwrap());
    let seen: u64 = psql_value(&server, LEBAK, "SELECT count(*) FROM person")
        .parse()
        .unwrap();
    assert_eq!(seen, lebak_persons);
    let regencies = psql_value(
        &server,
        LEBAK,
        "SELECT DISTINCT regency_code FROM person WHERE regency_code IS NOT NULL",
    );
    assert_eq!(regencies, "3602");
    let links: u64 = psql_value(
        &server,
        LEBAK,
        "SELECT count(*) FROM record_link r JOIN person p ON p.person_id = r.person_id",
    )
    .parse()
    .unwrap();
    let all_links: u64 = psql_value(&server, LEBAK, "SELECT count(*) FROM record_link")
        .parse()
        .unwrap();
    assert_eq!(
        links, all_links,
        "record_link holds rows of persons outside Lebak"
    );
    assert_eq!(
        all_links,
        count(
            &project,
            "SELECT count(*) AS n FROM record_link WHERE person_id IN (SELECT person_id FROM person WHERE starts_with(coalesce(village_code, district_code, regency_code, province_code), '3602'))"
        )
    );
    // match_pairs says nothing about regions: a scoped login does not see it at all.
    let refused = psql(
        &server,
        LEBAK,
        "sslmode=disable",
        "SELECT count(*) FROM match_pairs",
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(server.stop().success());
}

#[test]
fn writes_hidden_tables_and_wrong_passwords_are_refused_and_logins_lock_out() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let server = Server::start(
        &project,
        &users_config("max_login_failures = 3\nlockout_seconds = 120"),
    );
    let target = project.path().join("copied.csv");
    let writes = [
        "INSERT INTO person (person_id) VALUES ('x')".to_string(),
        "DELETE FROM person".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        format!("COPY (SELECT * FROM person) TO '{}'", target.display()),
        format!(
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}'",
            target.display()
        ),
        "DROP TABLE person".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM '/etc/passwd'".to_string(),
    ];
    for sql in &writes {
        let out = psql(&server, PLANNER, "sslmode=disable", sql);
        assert!(
            !out.status.success(),
            "{sql} was not refused:\n{}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("ERROR"),
            "{sql}: {}",
            text(&out)
        );
    }
    assert!(!target.exists(), "COPY wrote a file");
    // What JDBC drivers (DBeaver) and psycopg send on connect is accepted and changes nothing.
    assert_eq!(
        psql_value(
            &server,
            PLANNER,
            "SET extra_float_digits = 3; SET application_name = 'DBeaver'; SELECT 1"
        ),
        "SET\nSET\n1"
    );
    // Tables outside the role: staged rows and the audit log for a planner, the registry for
    // a program manager.
    for (user, sql) in [
        (PLANNER, "SELECT count(*) FROM dukcapil"),
        (PLANNER, "SELECT count(*) FROM audit_log"),
        (MANAGER, "SELECT count(*) FROM person"),
    ] {
        let out = psql(&server, user, "sslmode=disable", sql);
        assert!(!out.status.success(), "{sql} as {}: {}", user.0, text(&out));
    }
    let coverage: u64 = psql_value(&server, MANAGER, "SELECT count(*) FROM report_coverage")
        .parse()
        .unwrap();
    assert_eq!(
        coverage,
        count(&project, "SELECT count(*) AS n FROM report_coverage")
    );

    // Three wrong passwords lock the user out from this address, even with the right one.
    for _ in 0..3 {
        let out = psql(&server, (PLANNER.0, "wrong"), "sslmode=disable", "SELECT 1");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("authentication failed"),
            "{}",
            text(&out)
        );
    }
    let locked = psql(&server, PLANNER, "sslmode=disable", "SELECT 1");
    assert!(!locked.status.success());
    assert!(
        String::from_utf8_lossy(&locked.stderr).contains("too many failed logins"),
        "{}",
        text(&locked)
    );
    // Another user is not affected, and the server still answers.
    assert_eq!(psql_value(&server, AUDITOR, "SELECT 1"), "1");

    // Every refusal and failed login is in the audit log, with no password in it.
    let audit = audit_lines(&project);
    let refused = audit.iter().filter(|r| r["outcome"] == "refused").count();
    assert!(refused >= writes.len(), "{refused} refusals in {audit:?}");
    let failed = audit
        .iter()
        .filter(|r| r["outcome"] == "login_failed")
        .count();
    assert_eq!(failed, 4, "{audit:?}");
    let raw = std::fs::read_to_string(project.workspace("sample").join("runs/audit.jsonl"))
        .expect("audit log");
    assert!(
        !raw.contains(PLANNER.1) && !raw.contains("wrong\""),
        "{raw}"
    );
    assert!(server.stop().success());
}

#[test]
fn an_auditor_reads_full_ids_through_psycopg_and_every_statement_is_audited() {
    let Some(python) = python() else { return };
    let project = Project::with_sample();
    sample_run(&project, false);
    let nik = sql_json(
        &project,
        "SELECT nik FROM person WHERE nik IS NOT NULL ORDER BY person_id LIMIT 1",
    )[0]["nik"]
        .as_str()
        .expect("a nik")
        .to_string();
    assert!(is_full_id(&nik));
    let server = Server::start(&project, &users_config(""));
    // psycopg uses the extended protocol: parse, bind with a typed parameter, describe.
    let script = r#"
import json, sys, psycopg
port, user, password, nik = sys.argv[1:5]
with psycopg.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                     dbname="terpadu", sslmode="disable") as conn:
    rows = conn.execute("SELECT person_id, nik, full_name FROM person WHERE nik = %s", (nik,)).fetchall()
    print(json.dumps({"rows": [[str(v) for v in r] for r in rows]}))
    n = conn.execute("SELECT count(*) FROM person WHERE birth_date < %s", ("1990-01-01",)).fetchone()[0]
    print(json.dumps({"older": n}))
    logged = conn.execute("SELECT count(*) FROM audit_log WHERE \"user\" = %s", (user,)).fetchone()[0]
    print(json.dumps({"logged": logged}))
"#;
    let port = server.postgres.port().to_string();
    let answers = python_json(
        &python,
        script,
        &[
            port.clone(),
            AUDITOR.0.into(),
            AUDITOR.1.into(),
            nik.clone(),
        ],
    );
    let rows = answers[0]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{answers:?}");
    assert_eq!(rows[0][1], nik.as_str());
    assert_eq!(
        answers[1]["older"].as_u64().unwrap(),
        count(
            &project,
            "SELECT count(*) AS n FROM person WHERE birth_date < DATE '1990-01-01'"
        )
    );
    assert!(answers[2]["logged"].as_u64().unwrap() >= 2, "{answers:?}");

    // A planner asking the same gets the row with its NIK masked.
    let answers = python_json(
        &python,
        script.split("    logged").next().unwrap(),
        &[port, PLANNER.0.into(), PLANNER.1.into(), nik.clone()],
    );
    let rows = answers[0]["rows"].as_array().expect("rows");
    assert!(rows.is_empty(), "masked NIKs matched a full NIK: {rows:?}");

    // The audit log: who, which role, unmasked, rows, and the NIK literal masked.
    let audit = audit_lines(&project);
    let by_auditor: Vec<_> = audit
        .iter()
        .filter(|r| r["user"] == AUDITOR.0 && r["outcome"] == "ok")
        .collect();
    assert!(by_auditor.len() >= 3, "{audit:?}");
    assert!(
        by_auditor
            .iter()
            .all(|r| r["unmasked"] == true && r["role"] == "auditor")
    );
    assert!(by_auditor.iter().any(|r| r["rows"] == 1), "{by_auditor:?}");
    let raw = std::fs::read_to_string(project.workspace("sample").join("runs/audit.jsonl"))
        .expect("audit log");
    assert!(!raw.contains(&nik), "the audit log holds a full NIK");
    assert!(server.stop().success());
}

#[test]
fn flight_sql_clients_get_the_same_answers_under_the_same_rules() {
    let Some(python) = python() else { return };
    let project = Project::with_sample();
    sample_run(&project, false);
    let server = Server::start(&project, &users_config(""));
    let script = r#"
import json, sys
import adbc_driver_flightsql.dbapi as flight
import adbc_driver_manager
uri, user, password, token = sys.argv[1:5]
def connect(user, password=None, token=None):
    kwargs = {}
    if token:
        kwargs["adbc.flight.sql.authorization_header"] = "Bearer " + token
    else:
        kwargs["username"] = user
        kwargs["password"] = password
    return flight.connect(uri, db_kwargs=kwargs)
with connect(user, password) as conn:
    cur = conn.cursor()
    cur.execute("SELECT count(*) AS n FROM person")
    table = cur.fetch_arrow_table()
    print(json.dumps({"persons": table.column("n")[0].as_py(), "schema": str(table.schema)}))
    # A prepared statement with a parameter, bound through DoPut.
    cur.execute("SELECT count(*) AS n FROM person WHERE regency_code = $1", ("3602",))
    print(json.dumps({"lebak": cur.fetchone()[0]}))
    cur.execute("SELECT nik FROM person WHERE nik IS NOT NULL LIMIT 20")
    print(json.dumps({"niks": [r[0] for r in cur.fetchall()]}))
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    names = [t["table_name"] for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]]
    print(json.dumps({"tables": names}))
    print(json.dumps({"table_types": conn.adbc_get_table_types()}))
    try:
        cur.execute("DELETE FROM person")
        cur.fetchall()
        print(json.dumps({"delete": "ran"}))
    except adbc_driver_manager.Error as e:
        print(json.dumps({"delete": "refused", "message": str(e)}))
with connect("notebook", token=token) as conn:
    cur = conn.cursor()
    cur.execute("SELECT count(*) AS n FROM family")
    print(json.dumps({"families": cur.fetchone()[0]}))
try:
    with connect(user, "wrong") as conn:
        conn.cursor().execute("SELECT 1")
    print(json.dumps({"wrong": "accepted"}))
except adbc_driver_manager.Error as e:
    print(json.dumps({"wrong": "refused", "message": str(e)}))
"#;
    let uri = format!("grpc://{}", server.flight);
    let answers = python_json(
        &python,
        script,
        &[uri, PLANNER.0.into(), PLANNER.1.into(), TOKEN.into()],
    );
    let get = |key: &str| {
        answers
            .iter()
            .find_map(|a| a.get(key).cloned())
            .unwrap_or_else(|| panic!("{key} missing from {answers:?}"))
    };
    assert_eq!(
        get("persons").as_u64().unwrap(),
        count(&project, "SELECT count(*) AS n FROM person")
    );
    assert_eq!(
        get("lebak").as_u64().unwrap(),
        count(
            &project,
            "SELECT count(*) AS n FROM person WHERE regency_code = '3602'"
        )
    );
    let niks = get("niks");
    let niks = niks.as_array().unwrap();
    assert_eq!(niks.len(), 20);
    assert!(
        niks.iter().all(|n| !is_full_id(n.as_str().unwrap())),
        "{niks:?}"
    );
    let tables = get("tables");
    let tables: Vec<&str> = tables
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tables.contains(&"person") && tables.contains(&"report_overlap"),
        "{tables:?}"
    );
    assert!(!tables.contains(&"dukcapil"), "{tables:?}");
    assert_eq!(get("delete"), "refused");
    assert_eq!(
        get("families").as_u64().unwrap(),
        count(&project, "SELECT count(*) AS n FROM family")
    );
    assert_eq!(get("wrong"), "refused");
    let audit = audit_lines(&project);
    assert!(
        audit
            .iter()
            .any(|r| r["protocol"] == "flight" && r["user"] == "notebook" && r["outcome"] == "ok"),
        "{audit:?}"
    );
    assert!(server.stop().success());
}

#[test]
fn a_connection_keeps_its_version_while_runs_publish_new_ones() {
    let Some(python) = python() else { return };
    let project = Project::with_sample();
    sample_run(&project, false);
    let before = count(&project, "SELECT count(*) AS n FROM person");
    let server = Server::start(&project, &users_config(""));
    // One connection opened before the runs, and reading throughout; new connections and
    // Flight statements afterwards.
    let script = r#"
import json, sys, time, psycopg
port, user, password, flag = sys.argv[1:5]
import os
with psycopg.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                     dbname="terpadu", sslmode="disable", autocommit=True) as conn:
    seen = set()
    while not os.path.exists(flag):
        seen.add(conn.execute("SELECT count(*) FROM person").fetchone()[0])
        time.sleep(0.05)
    seen.add(conn.execute("SELECT count(*) FROM person").fetchone()[0])
print(json.dumps({"seen": sorted(seen)}))
with psycopg.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                     dbname="terpadu", sslmode="disable") as conn:
    print(json.dumps({"fresh": conn.execute("SELECT count(*) FROM person").fetchone()[0]}))
"#;
    let flag = project.path().join("runs-done");
    let reader = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args([
            server.postgres.port().to_string(),
            PLANNER.0.into(),
            PLANNER.1.into(),
        ])
        .arg(&flag)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    std::thread::sleep(Duration::from_secs(1));
    for n in 0..3 {
        add_person(&project, n);
        sample_run(&project, false);
    }
    std::fs::write(&flag, "").expect("flag");
    let out = reader.wait_with_output().expect("reader");
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let after = count(&project, "SELECT count(*) AS n FROM person");
    assert!(after > before);
    assert_eq!(lines[0]["seen"], serde_json::json!([before]), "{lines:?}");
    assert_eq!(lines[1]["fresh"].as_u64().unwrap(), after, "{lines:?}");
    // Old versions are pruned by vacuum only when no one needs them; the server keeps serving.
    let out = run(&["--quiet", "vacuum", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let persons: u64 = psql_value(&server, PLANNER, "SELECT count(*) FROM person")
        .parse()
        .unwrap();
    assert_eq!(persons, after);
    assert!(server.stop().success());
}

#[test]
fn tls_serves_both_protocols_with_a_self_signed_certificate() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let (cert, key) = self_signed(project.path());
    let server = Server::start(
        &project,
        &users_config(&format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"",
            cert.display(),
            key.display()
        )),
    );
    let out = psql(
        &server,
        PLANNER,
        "sslmode=require",
        "SELECT count(*) FROM family",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap(),
        count(&project, "SELECT count(*) AS n FROM family")
    );
    // With TLS configured, a password is never accepted over plain text.
    let plain = psql(&server, PLANNER, "sslmode=disable", "SELECT 1");
    assert!(!plain.status.success(), "{}", text(&plain));
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("TLS"),
        "{}",
        text(&plain)
    );
    if let Some(python) = python() {
        let script = r#"
import json, sys
import adbc_driver_flightsql.dbapi as flight
uri, user, password = sys.argv[1:4]
with flight.connect(uri, db_kwargs={"username": user, "password": password,
        "adbc.flight.sql.client_option.tls_skip_verify": "true"}) as conn:
    cur = conn.cursor()
    cur.execute("SELECT count(*) AS n FROM family")
    print(json.dumps({"families": cur.fetchone()[0]}))
"#;
        let answers = python_json(
            &python,
            script,
            &[
                format!("grpc+tls://{}", server.flight),
                PLANNER.0.into(),
                PLANNER.1.into(),
            ],
        );
        assert_eq!(
            answers[0]["families"].as_u64().unwrap(),
            count(&project, "SELECT count(*) AS n FROM family")
        );
    }
    assert!(server.stop().success());
}

/// A self-signed certificate for localhost, made with openssl.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", text(&out));
    (cert, key)
}

#[test]
fn serve_refuses_to_start_unsafely_and_check_reports_every_config_problem() {
    let project = Project::with_sample();
    sample_run(&project, false);
    let pipeline = project.pipeline("sample");
    // No users: refused, exit 2, saying what to do.
    let out = run(&["serve", &pipeline]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hash-password"),
        "{}",
        text(&out)
    );
    // --insecure-local on a public address: refused.
    let out = run(&[
        "serve",
        &pipeline,
        "--insecure-local",
        "--postgres",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // `terpadu check --serve-config` names every problem with the user or role.
    let bad = project.write(
        "bad.toml",
        r#"[server]
timeout_seconds = 0

[roles.dinsos]
tables = ["registry", "payroll"]

[[users]]
name = "a"
role = "nobody"

[[users]]
name = "b"
role = "planner"
scope = "9999"
password_hash = "plain-text"
token_sha256 = "abc"
"#,
    );
    let out = terpadu()
        .args(["check", &pipeline, "--serve-config"])
        .arg(&bad)
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "timeout_seconds",
        "payroll",
        "nobody",
        "argon2",
        "9999",
        "token_sha256",
    ] {
        assert!(stdout.contains(expected), "{expected} not named:\n{stdout}");
    }
    // The shipped example passes.
    let out = terpadu()
        .args(["check", &pipeline, "--no-inputs", "--serve-config"])
        .arg(crate::util::repo().join("contrib/serve.toml"))
        .output()
        .expect("check");
    assert!(out.status.success(), "{}", text(&out));
    let good = project.write("good.toml", users_config(""));
    let out = terpadu()
        .args(["check", &pipeline, "--serve-config"])
        .arg(&good)
        .output()
        .expect("check");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 users"),
        "{}",
        text(&out)
    );
}
