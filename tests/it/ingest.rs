//! Ingestion on real files: every shipped layout, quarantine accounting, bad inputs.

use std::collections::HashMap;

use crate::util::{
    Project, column_lists, column_text, quarantine_reasons, read_parquet, run, text, truth, walk,
};

/// Ingests the shipped sample and returns the project.
fn ingested_sample() -> Project {
    let project = Project::with_sample();
    let out = run(&["ingest", &project.pipeline("sample")]);
    assert!(out.status.success(), "{}", text(&out));
    project
}

#[test]
fn sample_pipeline_stages_every_source_and_accounts_for_every_row() {
    let project = ingested_sample();
    let manifest = project.manifest("sample");
    let truth = truth(&project.path().join("sample_data"));
    let mut generated: HashMap<String, u64> = HashMap::new();
    for (source, _) in truth.keys() {
        *generated.entry(source.clone()).or_default() += 1;
    }
    let sources = manifest["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 7, "every sample source staged");
    for source in sources {
        let name = source["name"].as_str().expect("name");
        let read = source["rows_read"].as_u64().expect("read");
        let staged = source["rows_staged"].as_u64().expect("staged");
        let quarantined = source["rows_quarantined"].as_u64().expect("quarantined");
        assert_eq!(
            read,
            staged + quarantined,
            "{name}: read = staged + quarantined"
        );
        assert_eq!(
            read, generated[name],
            "{name}: every generated record was read"
        );
        let staged_file = project.staged("sample", name);
        let rows: usize = read_parquet(&staged_file)
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(
            rows as u64, staged,
            "{name}: staged file holds the staged rows"
        );
        let input = &source["inputs"][0];
        assert_eq!(input["sha256"].as_str().expect("sha").len(), 64);
        assert!(input["bytes"].as_u64().expect("bytes") > 0);
    }
    // Every data file in the staged tables is one the version reads.
    let written: Vec<_> = walk(&project.workspace("sample").join("store/staged"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(written.len(), generated.len(), "{written:?}");
}

/// For each staged row with a truth entry: the person's true NIK from the civil registry.
fn true_niks(project: &Project) -> HashMap<String, String> {
    let staged = read_parquet(&project.staged("sample", "dukcapil"));
    let rows = column_text(&staged, "source_row");
    let niks = column_text(&staged, "nik");
    let truth = truth(&project.path().join("sample_data"));
    let mut out = HashMap::new();
    for (row, nik) in rows.iter().zip(niks) {
        let row: u64 = row.as_deref().expect("row").parse().expect("number");
        if let (Some((person, _)), Some(nik)) = (truth.get(&("dukcapil".to_string(), row)), nik) {
            out.insert(person.clone(), nik);
        }
    }
    out
}

#[test]
fn niks_are_recovered_or_flagged_as_the_noise_demands() {
    let project = ingested_sample();
    let truth = truth(&project.path().join("sample_data"));
    let person_nik = true_niks(&project);
    let mut checked: HashMap<&str, usize> = HashMap::new();
    for source in ["pkh", "bpnt", "pbi", "jamsosratu", "dtks"] {
        let batches = read_parquet(&project.staged("sample", source));
        let rows = column_text(&batches, "source_row");
        let niks = column_text(&batches, "nik");
        let status = column_text(&batches, "nik_status");
        let flags = column_lists(&batches, "quality_flags");
        for i in 0..rows.len() {
            let row: u64 = rows[i].as_deref().expect("row").parse().expect("number");
            let (person, noise) = &truth[&(source.to_string(), row)];
            let tags: Vec<&str> = noise.split(';').filter(|t| !t.is_empty()).collect();
            let nik_noise = tags
                .iter()
                .any(|t| t.starts_with("nik") || t.starts_with("kk_as"));
            let status = status[i].as_deref().expect("status");
            let context = format!(
                "{source} row {row}: noise {noise:?}, status {status}, flags {:?}",
                flags[i]
            );
            if tags.contains(&"nik_scientific") {
                assert_eq!(status, "damaged", "{context}");
                assert!(
                    flags[i].contains(&"nik_scientific".to_string()),
                    "{context}"
                );
                *checked.entry("nik_scientific").or_default() += 1;
            } else if tags.contains(&"nik_15") {
                assert_eq!(status, "damaged", "{context}");
                assert!(
                    flags[i].contains(&"nik_last_digit_lost".to_string()),
                    "{context}"
                );
                *checked.entry("nik_15").or_default() += 1;
            } else if tags.contains(&"nik_numeric_cell") {
                assert_eq!(status, "damaged", "{context}");
                *checked.entry("nik_numeric_cell").or_default() += 1;
            } else if tags.contains(&"nik_missing") {
                assert_eq!(status, "missing", "{context}");
                *checked.entry("nik_missing").or_default() += 1;
            } else if tags.contains(&"nik_formatted") && tags.len() == 1 {
                // Apostrophes, spaces and dots are removed and the true NIK recovered.
                assert_eq!(niks[i].as_ref(), person_nik.get(person), "{context}");
                assert!(flags[i].contains(&"nik_cleaned".to_string()), "{context}");
                *checked.entry("nik_formatted").or_default() += 1;
            } else if !nik_noise && tags.is_empty() {
                // A clean row carries its person's NIK unchanged.
                if let Some(true_nik) = person_nik.get(person) {
                    assert_eq!(niks[i].as_ref(), Some(true_nik), "{context}");
                    *checked.entry("clean").or_default() += 1;
                }
            }
        }
    }
    for kind in [
        "nik_scientific",
        "nik_15",
        "nik_numeric_cell",
        "nik_missing",
        "nik_formatted",
        "clean",
    ] {
        assert!(
            checked.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} rows were checked: {checked:?}"
        );
    }
}

#[test]
fn every_shipped_layout_fills_the_canonical_record() {
    let project = ingested_sample();
    let staged = |source: &str| read_parquet(&project.staged("sample", source));
    let filled = |batches: &[arrow::array::RecordBatch], column: &str| {
        let values = column_text(batches, column);
        values.iter().filter(|v| v.is_some()).count() as f64 / values.len().max(1) as f64
    };
    // (source, columns that must be filled for nearly every row)
    let expectations: &[(&str, &[&str])] = &[
        (
            "dukcapil",
            &[
                "nik",
                "no_kk",
                "name",
                "birth_date",
                "sex",
                "relationship",
                "village_code",
                "life_status",
                "extra_agama",
            ],
        ),
        (
            "dtks",
            &[
                "name",
                "birth_date",
                "sex",
                "relationship",
                "welfare_decile",
                "household_id",
                "village_code",
            ],
        ),
        (
            "pkh",
            &[
                "name",
                "period",
                "program",
                "program_unit",
                "village_code",
                "district_name",
            ],
        ),
        ("bpnt", &["name", "period", "program", "village_code"]),
        (
            "pbi",
            &[
                "name",
                "birth_date",
                "sex",
                "relationship",
                "village_code",
                "extra_no_kartu",
            ],
        ),
        (
            "jamsosratu",
            &["name", "birth_date", "sex", "village_code", "regency_code"],
        ),
        (
            "pengaduan",
            &["name", "sex", "village_code", "remark", "extra_id_laporan"],
        ),
    ];
    for (source, columns) in expectations {
        let batches = staged(source);
        for column in *columns {
            let share = filled(&batches, column);
            assert!(
                share > 0.9,
                "{source}.{column} filled for only {:.1}% of rows",
                share * 100.0
            );
        }
    }
    // Region codes are Kemendagri codes of Banten at the right length.
    for source in ["dukcapil", "pkh", "jamsosratu", "pengaduan"] {
        for code in column_text(&staged(source), "village_code")
            .into_iter()
            .flatten()
        {
            assert!(
                code.len() == 10 && code.starts_with("36"),
                "{source}: {code}"
            );
        }
    }
    // Program components are split into a list.
    let components = column_lists(&staged("pkh"), "components");
    assert!(
        components.iter().any(|c| c.len() >= 2),
        "some PKH family has several components"
    );
}

#[test]
fn unreadable_rows_are_quarantined_with_file_row_and_reason() {
    let project = Project::new();
    project.write(
        "pipelines/q.toml",
        "name = \"q\"\nprovince = \"36\"\n[[sources]]\nname = \"pkh\"\nrole = \"program\"\npath = \"../data/pkh.csv\"\nschema = \"kpm_beneficiary\"\nformat = { type = \"csv\" }\nprogram = { code = \"PKH\", unit = \"family\" }\n",
    );
    let mut csv = b"NO,NAMA PENERIMA,NIK KTP,NO KK,TAHAP,KOMPONEN,PROVINSI,KABUPATEN,KECAMATAN,KELURAHAN,ALAMAT\n".to_vec();
    csv.extend_from_slice(b"1,SITI AMINAH,3601015205850001,3601011203100001,TAHAP 3,Balita,BANTEN,KAB. PANDEGLANG,SUMUR,,KP. A\n");
    csv.extend_from_slice(b"2,TOO,MANY,FIELDS,,,,,,,,,EXTRA\n");
    csv.extend_from_slice(b"3,DEWI \xff\xfe,3601015205850002,,TAHAP 3,,BANTEN,,,,\n");
    csv.extend_from_slice(b"4,,,,TAHAP 3,,BANTEN,,,,\n");
    csv.extend_from_slice(b"5,BUDI,3601011201900003,3601"); // truncated mid-row
    project.write("data/pkh.csv", csv);
    let out = run(&["ingest", &project.pipeline("q")]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest = project.manifest("q");
    let source = &manifest["sources"][0];
    assert_eq!(source["rows_read"], 5);
    assert_eq!(source["rows_staged"], 1);
    assert_eq!(source["rows_quarantined"], 4);
    let quarantine = read_parquet(&project.quarantine("q", "pkh"));
    let files = column_text(&quarantine, "source_file");
    assert_eq!(
        quarantine_reasons(&quarantine),
        vec![
            ("3".to_string(), "wrong_column_count".to_string()),
            ("4".to_string(), "invalid_encoding".to_string()),
            ("5".to_string(), "no_identity".to_string()),
            ("6".to_string(), "wrong_column_count".to_string()),
        ]
    );
    assert!(
        files
            .iter()
            .all(|f| f.as_deref().is_some_and(|f| f.ends_with("data/pkh.csv")))
    );
    // The quarantine keeps the raw text so nothing is lost.
    let raws = column_text(&quarantine, "raw");
    assert!(
        raws[3].as_deref().is_some_and(|r| r.contains("BUDI")),
        "{raws:?}"
    );
}

#[test]
fn spreadsheet_damaged_niks_in_a_csv_are_flagged_not_dropped() {
    let project = Project::new();
    project.write(
        "pipelines/d.toml",
        "name = \"d\"\n[[sources]]\nname = \"pbi\"\nrole = \"program\"\npath = \"../data/pbi.csv\"\nschema = \"pbi_jkn\"\nformat = { type = \"csv\" }\nprogram = { code = \"PBI\", unit = \"person\" }\n",
    );
    project.write(
        "data/pbi.csv",
        "NO_KARTU,NIK,NAMA,TGL_LAHIR,JENIS_KELAMIN,HUBUNGAN,KD_PROP,KD_KAB,KD_KEC,KD_DESA,STATUS\n\
         0000000000001,3.60101E+15,SITI,12/05/1985,P,ISTRI,36,3601,360101,3601012001,AKTIF\n\
         0000000000002,360101520585000,DEWI,12/05/1985,P,ISTRI,36,3601,360101,3601012001,AKTIF\n\
         0000000000003,'3601015205850001,AMINAH,12/05/1985,P,ISTRI,36,3601,360101,3601012001,AKTIF\n\
         0000000000004,3601015205850001,AMINAH,12/05/1985,L,ISTRI,36,3601,360101,3601012001,AKTIF\n",
    );
    let out = run(&["ingest", &project.pipeline("d")]);
    assert!(out.status.success(), "{}", text(&out));
    let batches = read_parquet(&project.staged("d", "pbi"));
    let status = column_text(&batches, "nik_status");
    let nik = column_text(&batches, "nik");
    let prefix = column_text(&batches, "nik_known_prefix");
    let flags = column_lists(&batches, "quality_flags");
    assert_eq!(status[0].as_deref(), Some("damaged"));
    assert!(flags[0].contains(&"nik_scientific".into()));
    // Excel rounds the last mantissa digit, so only the digits before it are known.
    assert_eq!(prefix[0].as_deref(), Some("36010"));
    assert_eq!(status[1].as_deref(), Some("damaged"));
    assert!(flags[1].contains(&"nik_last_digit_lost".into()));
    assert_eq!(prefix[1].as_deref(), Some("360101520585000"));
    assert_eq!(nik[2].as_deref(), Some("3601015205850001"));
    assert!(flags[2].contains(&"nik_cleaned".into()));
    assert!(
        flags[3].contains(&"nik_sex_mismatch".into()),
        "{:?}",
        flags[3]
    );
    assert_eq!(
        column_text(&batches, "village_code")[0].as_deref(),
        Some("3601012001")
    );
}

#[test]
fn a_missing_extract_fails_before_any_work_and_keeps_the_previous_staged_data() {
    let project = ingested_sample();
    let before = project.manifest("sample")["run_id"].clone();
    let staged = project.staged("sample", "pkh");
    let staged_bytes = std::fs::read(&staged).expect("staged pkh");
    // Tonight's PBI extract did not arrive.
    let pbi_dir = project.path().join("sample_data/pbi");
    std::fs::remove_dir_all(&pbi_dir).expect("remove pbi");
    let out = run(&["ingest", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("source 'pbi': no file matches") && stderr.contains("sample_data/pbi"),
        "{stderr}"
    );
    assert_eq!(
        project.manifest("sample")["run_id"],
        before,
        "manifest unchanged"
    );
    assert_eq!(
        std::fs::read(&staged).expect("staged pkh"),
        staged_bytes,
        "staged data unchanged"
    );
}

#[test]
fn a_wrong_delimiter_is_named_with_a_fix() {
    let project = Project::with_sample();
    let pipeline = std::fs::read_to_string(project.pipeline("sample")).expect("pipeline");
    // The civil registry is pipe-delimited; declare it as comma-delimited.
    let broken = pipeline.replacen(
        "format = { type = \"csv\", delimiter = \"|\" }",
        "format = { type = \"csv\" }",
        1,
    );
    assert_ne!(broken, pipeline);
    project.write("pipelines/sample.toml", broken);
    let out = run(&["ingest", &project.pipeline("sample")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("source 'dukcapil'") && stderr.contains("lacks column(s) NIK"),
        "{stderr}"
    );
    assert!(stderr.contains("set format.delimiter = \"|\""), "{stderr}");
    // Nothing was published, and the failed run left no data files.
    assert!(project.history("sample").is_empty());
    let staged_dir = project.workspace("sample").join("store/staged");
    let left: Vec<_> = walk(&staged_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn row_numbers_are_physical_lines_in_windows_files_with_blank_lines_and_stray_quotes() {
    let project = Project::new();
    project.write(
        "pipelines/w.toml",
        "name = \"w\"\n[[sources]]\nname = \"pbi\"\nrole = \"program\"\npath = \"../data/pbi.csv\"\nschema = \"pbi_jkn\"\nformat = { type = \"csv\", delimiter = \";\" }\nprogram = { code = \"PBI\", unit = \"person\" }\n",
    );
    let header =
        "NO_KARTU;NIK;NAMA;TGL_LAHIR;JENIS_KELAMIN;HUBUNGAN;KD_PROP;KD_KAB;KD_KEC;KD_DESA;STATUS";
    let row = |n: u32, name: &str| {
        format!("{n};3601011201900{n:03};{name};12/01/1990;L;ANAK;36;3601;360101;3601012001;AKTIF")
    };
    let lines = [
        header.to_string(),             // line 1
        row(1, "AHMAD"),                // line 2
        String::new(),                  // line 3: blank
        format!("{};", row(2, "BUDI")), // line 4: trailing delimiter
        header.to_string(),             // line 5: repeated header
        row(3, "\"CECEP"),              // line 6: stray quote swallows...
        row(4, "DEDI"),                 // line 7: ...this line
        row(5, "ENENG\""),              // line 8: ...up to this quote
        row(6, "FITRI"),                // line 9
    ];
    project.write("data/pbi.csv", lines.join("\r\n") + "\r\n");
    let out = run(&["ingest", &project.pipeline("w")]);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("w")["sources"][0];
    assert_eq!(source["rows_read"], 7, "{source}");
    assert_eq!(source["rows_staged"], 3, "{source}");
    let batches = read_parquet(&project.staged("w", "pbi"));
    assert_eq!(
        column_text(&batches, "source_row"),
        vec![Some("2".into()), Some("4".into()), Some("9".into())]
    );
    assert_eq!(
        column_text(&batches, "name"),
        vec![
            Some("AHMAD".into()),
            Some("BUDI".into()),
            Some("FITRI".into())
        ]
    );
    let quarantine = read_parquet(&project.quarantine("w", "pbi"));
    assert_eq!(
        quarantine_reasons(&quarantine),
        vec![
            ("5".to_string(), "repeated_header".to_string()),
            ("6".to_string(), "wrong_column_count".to_string()),
            ("7".to_string(), "wrong_column_count".to_string()),
            ("8".to_string(), "wrong_column_count".to_string()),
        ]
    );
    let raws = column_text(&quarantine, "raw");
    assert!(
        raws[2].as_deref().is_some_and(|r| r.contains("DEDI")),
        "{raws:?}"
    );
}

#[test]
fn each_ingest_publishes_a_new_version_and_the_previous_one_stays_readable() {
    let project = Project::with_sample();
    let mut run_ids = Vec::new();
    for _ in 0..2 {
        let out = run(&[
            "ingest",
            &project.pipeline("sample"),
            "--source",
            "pengaduan",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        run_ids.push(
            project.manifest("sample")["run_id"]
                .as_str()
                .expect("run id")
                .to_string(),
        );
    }
    assert_ne!(run_ids[0], run_ids[1]);
    let history = project.history("sample");
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Version 1 still reads its own table version, whose file is not the latest one.
    let first = crate::util::block_on(async {
        let store = terpadu::store::Store::new(&project.workspace("sample"));
        store
            .pin(1)
            .await
            .expect("pin 1")
            .table_files("staged/pengaduan")
            .await
            .expect("files of version 1")
    });
    assert_eq!(first.files.len(), 1);
    assert!(first.files[0].exists());
    assert_ne!(first.files[0], project.staged("sample", "pengaduan"));
    let rows =
        |path: &std::path::Path| -> usize { read_parquet(path).iter().map(|b| b.num_rows()).sum() };
    assert_eq!(
        rows(&first.files[0]),
        rows(&project.staged("sample", "pengaduan"))
    );
}

#[test]
fn a_second_run_on_a_busy_workspace_is_refused_and_a_stale_lock_is_taken_over() {
    let project = Project::with_sample();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let lock = |pid: u32| {
        serde_json::json!({"pid": pid, "host": host, "since": "2026-11-23T02:00:00Z", "command": "ingest"})
            .to_string()
    };
    // This test process holds the lock (a kernel lock, as a running terpadu would).
    let path = project.write("workspace/sample/.lock", lock(std::process::id()));
    let held = std::fs::File::open(&path).expect("open lock");
    held.lock().expect("lock");
    let out = run(&[
        "ingest",
        &project.pipeline("sample"),
        "--source",
        "pengaduan",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by ingest")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    assert!(!project.workspace("sample").join("store").exists());
    // A lock file left by a process that is gone (its kernel lock went with it) is taken
    // over, with a warning.
    drop(held);
    project.write("workspace/sample/.lock", lock(u32::MAX - 1));
    let out = run(&[
        "ingest",
        &project.pipeline("sample"),
        "--source",
        "pengaduan",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("left by a process that is gone"),
        "{}",
        text(&out)
    );
    assert!(
        std::fs::read(project.workspace("sample").join(".lock")).is_ok_and(|b| b.is_empty()),
        "released after the run (the file stays, empty and unlocked)"
    );
}
