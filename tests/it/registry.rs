//! The published registry: every record accounted for, family members kept apart, stable ids
//! across runs, explanations, and publication that survives a killed run.

use std::collections::HashMap;
use std::time::Duration;

use crate::util::{Project, run, sql_json, terpadu, text};

fn sql(project: &Project, query: &str) -> Vec<serde_json::Value> {
    sql_json(project, query)
}

fn number(row: &serde_json::Value, key: &str) -> u64 {
    row[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key} in {row}"))
}

fn ingest_and_link(project: &Project) {
    for command in ["ingest", "link"] {
        let out = run(&["--quiet", command, &project.pipeline("sample")]);
        assert!(out.status.success(), "{command}: {}", text(&out));
    }
}

fn current_version(project: &Project) -> u64 {
    project
        .history("sample")
        .last()
        .expect("a published version")
        .version
}

const KK: &str = "3601011503100091";

/// A family the sample does not have: a father and son with one name, and twins, in the civil
/// registry, the welfare registry and the health-insurance list; and twin girls listed only in
/// the welfare registry (no civil-registry record to guard them), one of them twice.
fn add_hard_family(project: &Project) {
    let append = |glob: &str, lines: &str| {
        let dir = project.path().join(glob);
        let file = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"))
            .expect("a csv");
        let mut text = std::fs::read_to_string(&file).expect("read");
        text.push_str(lines);
        std::fs::write(&file, text).expect("write");
    };
    let person = |nik: &str, name: &str, dmy: &str, rel: &str| {
        format!(
            "{nik}|{KK}|{name}|PANDEGLANG|{dmy}|1|1|{rel}|ISLAM|PETANI|36|1|1|2001|KP. SUKAMAJU|001|002|HIDUP|\n"
        )
    };
    append(
        "sample_data/dukcapil",
        &[
            person("3601011203650091", "BUDI HARTONO", "12-03-1965", "1"),
            person("3601012107900091", "BUDI HARTONO", "21-07-1990", "4"),
            person("3601010405120091", "MUHAMMAD HASAN", "04-05-2012", "4"),
            person("3601010405120092", "MUHAMMAD HUSEIN", "04-05-2012", "4"),
        ]
        .concat(),
    );
    let dtks = |member: &str, name: &str, sex: &str, ymd: &str, nik: &str, kk: &str| {
        format!(
            "36099999991;{member};36;01;01;2001;{name};{sex};PANDEGLANG;{ymd};{nik};{kk};3;KP. SUKAMAJU RT 001/RW 002;1;0;0;1;0;1;1\n"
        )
    };
    let girls_kk = "3601011004140093";
    append(
        "sample_data/dtks",
        &[
            dtks(
                "3609999999101",
                "BUDI HARTONO",
                "1",
                "1965-03-12",
                "3601011203650091",
                KK,
            ),
            dtks(
                "3609999999102",
                "BUDI HARTONO",
                "1",
                "1990-07-21",
                "3601012107900091",
                KK,
            ),
            dtks(
                "3609999999103",
                "MUHAMMAD HASAN",
                "1",
                "2012-05-04",
                "3601010405120091",
                KK,
            ),
            dtks(
                "3609999999104",
                "MUHAMMAD HUSEIN",
                "1",
                "2012-05-04",
                "3601010405120092",
                KK,
            ),
            dtks(
                "3609999999201",
                "SITI RAHMAWATI",
                "2",
                "2015-08-09",
                "3601014908150093",
                girls_kk,
            ),
            dtks(
                "3609999999202",
                "SITI RAHMAWATI",
                "2",
                "2015-08-09",
                "3601014908150093",
                girls_kk,
            ),
            dtks(
                "3609999999203",
                "NUR AINI",
                "2",
                "2015-08-09",
                "3601014908150094",
                girls_kk,
            ),
        ]
        .concat(),
    );
    let pbi = |card: &str, nik: &str, name: &str, dmy: &str, sex: &str| {
        format!("{card},{nik},{name},{dmy},{sex},ANAK,36,3601,360101,3601012001,AKTIF\n")
    };
    append(
        "sample_data/pbi",
        &[
            pbi(
                "0009999999991",
                "3601011203650091",
                "BUDI HARTONO",
                "12/03/1965",
                "L",
            ),
            pbi(
                "0009999999992",
                "3601012107900091",
                "BUDI HARTONO",
                "21/07/1990",
                "L",
            ),
            pbi(
                "0009999999993",
                "3601010405120091",
                "MUHAMMAD HASAN",
                "04/05/2012",
                "L",
            ),
            pbi(
                "0009999999994",
                "3601010405120092",
                "MUHAMMAD HUSEIN",
                "04/05/2012",
                "L",
            ),
            pbi(
                "0009999999995",
                "3601014908150094",
                "NUR AINI",
                "09/08/2015",
                "P",
            ),
            pbi(
                "0009999999996",
                "3601014908150093",
                "SITI RAHMAWATI",
                "09/08/2015",
                "P",
            ),
        ]
        .concat(),
    );
}

#[test]
fn the_registry_accounts_for_every_record_and_keeps_family_members_apart() {
    let project = Project::with_sample();
    add_hard_family(&project);
    ingest_and_link(&project);

    // Nothing lost: one record_link row per staged row, each pointing at a published person.
    let staged = number(
        &sql(&project, "SELECT sum(rows_staged) AS n FROM ingest_sources")[0],
        "n",
    );
    let linked = sql(
        &project,
        "SELECT count(*) AS n, count(DISTINCT person_id) AS persons, \
           count(DISTINCT source || ':' || source_file || ':' || CAST(source_row AS VARCHAR)) AS distinct_rows \
         FROM record_link",
    );
    assert_eq!(number(&linked[0], "n"), staged);
    assert_eq!(number(&linked[0], "distinct_rows"), staged);
    let persons = sql(
        &project,
        "SELECT count(*) AS n, sum(record_count) AS records FROM person",
    );
    assert_eq!(number(&persons[0], "n"), number(&linked[0], "persons"));
    assert_eq!(number(&persons[0], "records"), staged);
    let orphans = sql(
        &project,
        "SELECT count(*) AS n FROM record_link l LEFT JOIN person p ON l.person_id = p.person_id \
         WHERE p.person_id IS NULL",
    );
    assert_eq!(number(&orphans[0], "n"), 0);
    // Every program row is a membership.
    let programs = sql(
        &project,
        "SELECT (SELECT count(*) FROM program_membership) AS memberships, \
           (SELECT sum(rows_staged) FROM ingest_sources WHERE role = 'program') AS rows",
    );
    assert_eq!(
        number(&programs[0], "memberships"),
        number(&programs[0], "rows")
    );

    // Father and son with one name, and twins, are four people; each has the same three
    // records (civil registry, welfare registry, health insurance) under one id.
    let rows = sql(
        &project,
        "SELECT nik, count(DISTINCT person_id) AS ids, count(*) AS records, \
           array_sort(array_agg(source)) AS sources \
         FROM record_link WHERE nik IN ('3601011203650091', '3601012107900091', \
           '3601010405120091', '3601010405120092') GROUP BY nik ORDER BY nik",
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in &rows {
        assert_eq!(number(row, "ids"), 1, "{row}");
        assert_eq!(
            row["sources"],
            serde_json::json!(["dtks", "dukcapil", "pbi"]),
            "{row}"
        );
    }
    let ids = sql(
        &project,
        "SELECT count(DISTINCT person_id) AS n FROM record_link WHERE nik IN \
         ('3601011203650091', '3601012107900091', '3601010405120091', '3601010405120092')",
    );
    assert_eq!(number(&ids[0], "n"), 4, "father, son and twins stay apart");
    // They share one family.
    let family = sql(
        &project,
        "SELECT count(DISTINCT family_id) AS families, max(no_kk) AS kk FROM person \
         WHERE nik IN ('3601011203650091', '3601012107900091', '3601010405120091', \
         '3601010405120092')",
    );
    assert_eq!(number(&family[0], "families"), 1);
    assert_eq!(family[0]["kk"], KK);
    let members = sql(
        &project,
        &format!(
            "SELECT f.members, f.head_person_id, p.person_id AS father FROM family f \
             JOIN person p ON p.nik = '3601011203650091' WHERE f.no_kk = '{KK}'"
        ),
    );
    assert_eq!(number(&members[0], "members"), 4, "{members:?}");
    assert_eq!(
        members[0]["head_person_id"], members[0]["father"],
        "the father heads the family, not his son of the same name"
    );

    // Twin girls known only to the welfare registry: no civil-registry guard, the model alone
    // must keep them apart, and must merge the duplicated row of one of them.
    let girls = sql(
        &project,
        "SELECT nik, count(DISTINCT person_id) AS ids, count(*) AS records FROM record_link \
         WHERE nik IN ('3601014908150093', '3601014908150094') GROUP BY nik ORDER BY nik",
    );
    assert_eq!(number(&girls[0], "ids"), 1, "{girls:?}");
    assert_eq!(number(&girls[0], "records"), 3, "{girls:?}");
    assert_eq!(number(&girls[1], "records"), 2, "{girls:?}");
    let both = sql(
        &project,
        "SELECT count(DISTINCT person_id) AS n FROM record_link \
         WHERE nik IN ('3601014908150093', '3601014908150094')",
    );
    assert_eq!(number(&both[0], "n"), 2, "the twins are two people");

    // explain says why, in words, with masked NIKs.
    let out = run(&[
        "explain",
        &project.pipeline("sample"),
        "3601014908150094",
        "--near-misses",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Person P"), "{stdout}");
    assert!(stdout.contains("NIK 3601********0094"), "{stdout}");
    assert!(!stdout.contains("3601014908150094"), "masked: {stdout}");
    assert!(
        stdout.contains("NIK differs only in the serial"),
        "the twin near miss is explained: {stdout}"
    );
    assert!(stdout.contains("below the threshold"), "{stdout}");
}

#[test]
fn ids_survive_a_resorted_and_edited_extract_and_changes_are_recorded() {
    let project = Project::with_sample();
    ingest_and_link(&project);
    let first_version = current_version(&project);
    let before: HashMap<String, String> = sql(
        &project,
        "SELECT record_key, min(person_id) AS person_id FROM record_link GROUP BY record_key",
    )
    .into_iter()
    .map(|r| {
        (
            r["record_key"].as_str().expect("key").to_string(),
            r["person_id"].as_str().expect("id").to_string(),
        )
    })
    .collect();
    let martha = sql(
        &project,
        "SELECT person_id FROM record_link WHERE source = 'dukcapil' AND nik = '3601014711760001'",
    )[0]["person_id"]
        .as_str()
        .expect("id")
        .to_string();

    // Tonight's civil-registry extract comes in the reverse order, with one name corrected.
    let dir = project.path().join("sample_data/dukcapil");
    let file = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("file");
    let text_before = std::fs::read_to_string(&file).expect("read");
    let mut lines: Vec<&str> = text_before.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    let edited: Vec<String> = lines
        .iter()
        .map(|l| {
            if l.starts_with("3601014711760001|") {
                l.replace("MARTHA WAHYUNI", "MARTA WAHYUNI")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&file, format!("{header}\n{}\n", edited.join("\n"))).expect("write");
    ingest_and_link(&project);
    assert_ne!(current_version(&project), first_version, "a new version");

    let after: Vec<serde_json::Value> =
        sql(&project, "SELECT record_key, person_id FROM record_link");
    let changes = sql(&project, "SELECT * FROM registry_changes");
    let changed_ids: std::collections::HashSet<String> = changes
        .iter()
        .flat_map(|c| [c["id"].as_str(), c["related_id"].as_str()])
        .flatten()
        .map(str::to_string)
        .collect();
    let (mut kept, mut moved) = (0usize, Vec::new());
    for row in &after {
        let key = row["record_key"].as_str().expect("key");
        let id = row["person_id"].as_str().expect("id");
        if let Some(old) = before.get(key) {
            if old == id {
                kept += 1;
            } else {
                moved.push((old.clone(), id.to_string()));
            }
        }
    }
    assert!(
        kept > 19_000,
        "records persisting keep their person: {kept}"
    );
    // A record that moved is explained by a recorded split or merge.
    for (old, new) in &moved {
        assert!(
            changed_ids.contains(old) || changed_ids.contains(new),
            "{old} -> {new} not in the changes table: {changes:?}"
        );
    }
    assert!(moved.len() * 1000 < kept, "few records move: {moved:?}");
    // The edited record is new, but its person keeps the id.
    let martha_after = sql(
        &project,
        "SELECT person_id, full_name FROM record_link WHERE source = 'dukcapil' AND nik = '3601014711760001'",
    );
    assert_eq!(martha_after[0]["person_id"], martha.as_str());
    assert_eq!(martha_after[0]["full_name"], "MARTA WAHYUNI");
    let person = sql(
        &project,
        &format!("SELECT full_name, name_variants FROM person WHERE person_id = '{martha}'"),
    );
    assert_eq!(
        person[0]["full_name"], "MARTA WAHYUNI",
        "the civil registry wins"
    );
    assert!(
        person[0]["name_variants"]
            .as_array()
            .expect("variants")
            .contains(&serde_json::json!("MARTHA WAHYUNI")),
        "{person:?}"
    );
    // Both versions are readable; the older one stays intact.
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--version",
        &first_version.to_string(),
        "--format",
        "json",
        "SELECT count(*) AS n FROM person",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_killed_link_leaves_the_previous_registry_current_and_the_next_run_succeeds() {
    let project = Project::with_sample();
    ingest_and_link(&project);
    let mut version = current_version(&project);
    let persons = number(&sql(&project, "SELECT count(*) AS n FROM person")[0], "n");
    // Kill points spread over the run: opening, blocking, scoring, building tables, writing.
    for millis in [50u64, 400, 900, 1500, 2200] {
        let mut child = terpadu()
            .args(["--quiet", "link", &project.pipeline("sample")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(millis));
        let finished = child.try_wait().expect("wait").is_some();
        let _ = child.kill();
        let status = child.wait().expect("wait");
        // Nothing of a killed run is visible; a run that finished first published a version.
        if finished && status.success() {
            version += 1;
        }
        assert_eq!(
            current_version(&project),
            version,
            "after a kill at {millis} ms"
        );
        // Whatever version is current reads back fully.
        let n = number(&sql(&project, "SELECT count(*) AS n FROM person")[0], "n");
        assert_eq!(n, persons, "after a kill at {millis} ms");
    }
    // The lock the killed runs left behind is taken over, and the next run publishes.
    let out = run(&["--quiet", "link", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        current_version(&project),
        version + 1,
        "the next run publishes"
    );
}

#[test]
fn the_pipeline_declares_linkage_and_a_saved_model_can_be_reused() {
    let project = Project::with_sample();
    let pipeline = project.path().join("pipelines/sample.toml");
    let shipped = std::fs::read_to_string(&pipeline).expect("pipeline");
    // The shipped pipeline's own [linkage] section is replaced by the test's.
    let mut toml = shipped
        .split("\n[linkage]")
        .next()
        .expect("sources")
        .to_string();
    toml.push_str(
        "\n[linkage]\nthreshold = 0.99\n\n[[linkage.blocking]]\nname = \"same_nik\"\nkeys = [\"nik\"]\n\n\
         [linkage.comparisons.sex]\nenabled = false\n\n[linkage.comparisons.nik]\nm = { exact = 0.97 }\n",
    );
    std::fs::write(&pipeline, toml).expect("write");
    let out = run(&["--quiet", "ingest", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["link", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rule same_nik"), "{stdout}");
    assert!(
        !stdout.contains("rule village_name"),
        "only the declared rule: {stdout}"
    );
    assert!(stdout.contains("(threshold 0.99)"), "{stdout}");
    let version = project
        .workspace("sample")
        .join(format!("files/v{}", current_version(&project)));
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("model.json")).expect("model"))
            .expect("json");
    let comparison = |name: &str| {
        model["comparisons"]
            .as_array()
            .expect("comparisons")
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .expect("comparison")
    };
    assert_eq!(comparison("nik")["m"][0], 0.97, "fixed m kept");
    let sex = comparison("sex");
    assert_eq!(sex["m"], sex["u"], "a disabled comparison weighs nothing");

    // The saved model scores the next run as is.
    let saved = project.path().join("model.json");
    std::fs::copy(version.join("model.json"), &saved).expect("copy");
    let out = run(&[
        "link",
        &project.pipeline("sample"),
        "--model",
        &saved.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("model              {}", saved.display())),
        "{}",
        text(&out)
    );
    // A file that is not a model is refused with a hint.
    let out = run(&[
        "link",
        &project.pipeline("sample"),
        "--model",
        &pipeline.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not a terpadu model"),
        "{}",
        text(&out)
    );

    // check names a mistake in the section.
    let mut broken = std::fs::read_to_string(&pipeline).expect("pipeline");
    broken.push_str("\n[linkage.comparisons.nama]\nenabled = false\n");
    std::fs::write(&pipeline, broken).expect("write");
    let out = run(&["check", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("linkage.comparisons.nama: no comparison 'nama'"),
        "{}",
        text(&out)
    );
}
