//! Damaged extracts, built here one by one as offices deliver them: UTF-16 from Excel's "Unicode
//! text", gzip, a workbook or zeros under a `.csv` name, a line with no end, a quote cut off at
//! the end, a wrong encoding declaration, and JSON lines that are not JSON lines. Each must
//! give either the right rows or a clear error (`source_row` is the line number; the header is
//! line 1); never garbage with exit 0, never an abort.

use std::io::Write;

use crate::util::{Project, column_text, quarantine_reasons, read_parquet, run, text};

const HEADER: &str =
    "NO_KARTU,NIK,NAMA,TGL_LAHIR,JENIS_KELAMIN,HUBUNGAN,KD_PROP,KD_KAB,KD_KEC,KD_DESA,STATUS\n";
const ROW_1: &str =
    "1,3601011201900001,ANDI WIJAYA,12/01/1990,L,ANAK,36,3601,360101,3601012001,AKTIF\n";
const ROW_2: &str =
    "2,3601015205850002,SITI AMINAH,12/05/1985,P,ISTRI,36,3601,360101,3601012001,AKTIF\n";
const ROW_3: &str =
    "3,3601011507990003,NENENG ASIH,15/07/1999,P,ANAK,36,3601,360101,3601012001,AKTIF\n";

/// A project whose one source `pbi` reads `data/pbi.*` with `format`.
fn project_with(format: &str) -> Project {
    let project = Project::new();
    project.write(
        "pipelines/f.toml",
        format!(
            "name = \"f\"\n[[sources]]\nname = \"pbi\"\nrole = \"program\"\npath = \"../data/pbi.*\"\nschema = \"pbi_jkn\"\nprogram = {{ code = \"PBI\", unit = \"person\" }}\nformat = {format}\n"
        ),
    );
    project
}

fn ingest(project: &Project) -> std::process::Output {
    run(&["ingest", &project.pipeline("f")])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn utf16le(text: &str, bom: bool) -> Vec<u8> {
    let mut bytes = if bom { vec![0xff, 0xfe] } else { Vec::new() };
    for unit in text.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    bytes
}

#[test]
fn utf16_with_a_byte_order_mark_is_decoded_whatever_the_declaration() {
    let project = project_with("{ type = \"csv\" }");
    project.write(
        "data/pbi.csv",
        utf16le(
            &format!("{HEADER}{ROW_1}{}", ROW_2.replace('\n', "\r\n")),
            true,
        ),
    );
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_read"], 2, "{source}");
    assert_eq!(source["rows_staged"], 2, "{source}");
    let batches = read_parquet(&project.staged("f", "pbi"));
    assert_eq!(
        column_text(&batches, "name"),
        vec![Some("ANDI WIJAYA".into()), Some("SITI AMINAH".into())]
    );
    assert_eq!(
        column_text(&batches, "nik"),
        vec![
            Some("3601011201900001".into()),
            Some("3601015205850002".into())
        ]
    );
}

#[test]
fn utf16_without_a_byte_order_mark_is_refused_until_declared() {
    let project = project_with("{ type = \"csv\" }");
    project.write("data/pbi.csv", utf16le(&format!("{HEADER}{ROW_1}"), false));
    for command in ["check", "ingest"] {
        let out = run(&[command, &project.pipeline("f")]);
        assert!(!out.status.success(), "{command}: {}", text(&out));
        let err = text(&out);
        assert!(
            err.contains("UTF-16LE text without a byte-order mark")
                && err.contains("encoding = \"utf-16le\""),
            "{command}: {err}"
        );
    }

    let declared = project_with("{ type = \"csv\", encoding = \"utf-16le\" }");
    declared.write("data/pbi.csv", utf16le(&format!("{HEADER}{ROW_1}"), false));
    let out = ingest(&declared);
    assert!(out.status.success(), "{}", text(&out));
    let batches = read_parquet(&declared.staged("f", "pbi"));
    assert_eq!(
        column_text(&batches, "name"),
        vec![Some("ANDI WIJAYA".into())]
    );
}

#[test]
fn a_gzip_extract_is_read_through() {
    let project = project_with("{ type = \"csv\" }");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{HEADER}{ROW_1}{ROW_2}").as_bytes())
        .expect("gzip");
    project.write("data/pbi.csv.gz", gz.finish().expect("gzip"));
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_read"], 2, "{source}");
    assert_eq!(source["rows_staged"], 2, "{source}");
}

#[test]
fn a_workbook_or_zeros_under_a_csv_name_is_refused_with_what_it_is() {
    let project = project_with("{ type = \"csv\" }");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    workbook
        .add_worksheet()
        .write_string(0, 0, "NO_KARTU")
        .expect("cell");
    let file = project.path().join("data/pbi.csv");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    workbook.save(&file).expect("save");
    let out = ingest(&project);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("pbi.csv is a ZIP archive (an XLSX workbook is one), not CSV")
            && err.contains("type = \"xlsx\""),
        "{err}"
    );

    // Zeros with no line break at all (a disk image, a failed copy): refused at once, by
    // `check` too, without reading the whole file.
    std::fs::write(&file, vec![0u8; 64 << 20]).expect("zeros");
    for command in ["check", "ingest"] {
        let started = std::time::Instant::now();
        let out = run(&[command, &project.pipeline("f")]);
        assert!(!out.status.success(), "{command}: {}", text(&out));
        assert!(
            text(&out).contains("is binary data (NUL bytes at the start), not CSV"),
            "{command}: {}",
            text(&out)
        );
        // Generous: reading 64 MiB through the CSV parser would still pass, but buffering it
        // as one record (the old behaviour) took seconds per GiB.
        assert!(started.elapsed().as_secs() < 30, "{command} took too long");
    }
}

#[test]
fn an_over_long_line_is_quarantined_and_the_rest_read() {
    let project = project_with("{ type = \"csv\", max_record_bytes = 65536 }");
    // A 2 MiB line with no delimiter in the middle, and an unterminated 1 MiB tail at the end.
    let mut csv = format!("{HEADER}{ROW_1}").into_bytes();
    csv.extend(std::iter::repeat_n(b'A', 2 << 20));
    csv.push(b'\n');
    csv.extend_from_slice(ROW_2.as_bytes());
    csv.extend_from_slice(ROW_3.as_bytes());
    csv.extend(std::iter::repeat_n(b'x', 1 << 20));
    project.write("data/pbi.csv", csv);
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_read"], 5, "{source}");
    assert_eq!(source["rows_staged"], 3, "{source}");
    assert_eq!(
        source["quarantined_by_reason"]["record_too_long"], 2,
        "{source}"
    );
    let staged = read_parquet(&project.staged("f", "pbi"));
    assert_eq!(
        column_text(&staged, "source_row"),
        vec![Some("2".into()), Some("4".into()), Some("5".into())]
    );
    let quarantined = read_parquet(&project.quarantine("f", "pbi"));
    assert_eq!(
        quarantine_reasons(&quarantined),
        vec![
            ("3".to_string(), "record_too_long".to_string()),
            ("6".to_string(), "record_too_long".to_string())
        ]
    );
    // The quarantine keeps a bounded excerpt, not the whole line.
    let raw: usize = column_text(&quarantined, "raw")
        .iter()
        .map(|r| r.as_deref().map_or(0, str::len))
        .sum();
    assert!(raw < 200_000, "quarantined {raw} bytes of raw text");
}

#[test]
fn a_quote_cut_off_at_the_end_is_quarantined_not_swallowed() {
    let project = project_with("{ type = \"csv\" }");
    let cut = "4,3601011507990004,\"NENENG AS";
    project.write("data/pbi.csv", format!("{HEADER}{ROW_1}{ROW_2}{cut}"));
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_read"], 3, "{source}");
    assert_eq!(source["rows_staged"], 2, "{source}");
    assert_eq!(
        source["quarantined_by_reason"]["unterminated_quote"], 1,
        "{source}"
    );
    let quarantined = read_parquet(&project.quarantine("f", "pbi"));
    assert_eq!(
        quarantine_reasons(&quarantined),
        vec![("4".to_string(), "unterminated_quote".to_string())]
    );
}

#[test]
fn utf8_declared_as_windows_1252_is_warned_about() {
    let project = project_with("{ type = \"csv\", encoding = \"windows-1252\" }");
    project.write(
        "data/pbi.csv",
        format!("{HEADER}{}", ROW_1.replace("ANDI WIJAYA", "ANDRÉ WIJAYA")),
    );
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("declared windows-1252 but 1 row(s) with accented letters are valid UTF-8"),
        "{err}"
    );
}

#[test]
fn json_lines_that_are_csv_or_one_array_are_named_as_such() {
    let project = Project::new();
    project.write("pipelines/f.toml", crate::util::COMPLAINTS_JSONL_PIPELINE);
    project.write(
        "data/adu.jsonl",
        "id_laporan,nama,nik\nA1,SITI,3601015205850002\n",
    );
    let out = run(&["ingest", &project.pipeline("f")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("none of the 2 line(s) read is a JSON object")
            && err.contains("looks like CSV"),
        "{err}"
    );
    assert!(!err.contains("3601015205850002"), "a NIK leaked: {err}");
    assert!(!err.contains("SITI"), "a name leaked: {err}");

    project.write(
        "data/adu.jsonl",
        "[{\"id_laporan\":\"A1\",\"nama\":\"SITI\"},\n{\"id_laporan\":\"A2\",\"nama\":\"SRI\"}]\n",
    );
    for command in ["check", "ingest"] {
        let out = run(&[command, &project.pipeline("f")]);
        assert!(!out.status.success(), "{command}: {}", text(&out));
        assert!(
            text(&out).contains("jq -c '.[]'"),
            "{command}: {}",
            text(&out)
        );
    }
}

/// A workbook written the way scripts write them (openpyxl, PHP exports): one sheet of
/// `rows` (`<row>` XML) and `merges` (`A2:A4` references), strings inline, no styles.
fn raw_workbook(path: &std::path::Path, rows: &str, merges: &[&str]) {
    let file = std::fs::File::create(path).expect("create");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    let merge_xml = if merges.is_empty() {
        String::new()
    } else {
        format!(
            "<mergeCells count=\"{}\">{}</mergeCells>",
            merges.len(),
            merges
                .iter()
                .map(|m| format!("<mergeCell ref=\"{m}\"/>"))
                .collect::<String>()
        )
    };
    let parts = [
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/></Types>".to_string(),
        ),
        (
            "_rels/.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>".to_string(),
        ),
        (
            "xl/workbook.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets><sheet name=\"Data\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>".to_string(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>".to_string(),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>{rows}</sheetData>{merge_xml}</worksheet>"
            ),
        ),
    ];
    for (name, body) in parts {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(body.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip");
}

/// One `<row>` of inline strings from column A; `=...` cells are formulas with no saved result.
fn sheet_row<S: AsRef<str>>(number: u32, cells: &[S]) -> String {
    let mut out = format!("<row r=\"{number}\">");
    for (i, value) in cells.iter().enumerate() {
        let value = value.as_ref();
        let col = (b'A' + i as u8) as char;
        if value.is_empty() {
            continue;
        }
        if let Some(formula) = value.strip_prefix('=') {
            out.push_str(&format!("<c r=\"{col}{number}\"><f>{formula}</f></c>"));
        } else {
            out.push_str(&format!(
                "<c r=\"{col}{number}\" t=\"inlineStr\"><is><t>{value}</t></is></c>"
            ));
        }
    }
    out.push_str("</row>");
    out
}

#[test]
fn workbooks_from_scripts_and_provinces_read_right() {
    let project = project_with("{ type = \"xlsx\" }");
    let header: Vec<&str> = HEADER.trim().split(',').collect();
    let row = |line: &str| {
        line.trim()
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (r1, r2, r3) = (row(ROW_1), row(ROW_2), row(ROW_3));
    // KD_KAB (H) and KD_KEC (I) merged down over rows 2-5, as provincial lists do: only the
    // top cell holds the value.
    let below = |mut cells: Vec<String>| {
        cells[7].clear();
        cells[8].clear();
        cells
    };
    let (r2, r3) = (below(r2), below(r3));
    // Row 4's NIK is a formula nobody recalculated; row 5 has only formulas for identity.
    let mut r4 = row(ROW_3);
    r4[0] = "4".into();
    r4[1] = "=CONCATENATE(\"3601011507\",\"990004\")".into();
    r4[2] = "NENENG WATI".into();
    let r4 = below(r4);
    let mut r5 = row(ROW_3);
    r5[0] = "5".into();
    r5[1] = "=A5&amp;\"1\"".into();
    r5[2] = "=UPPER(\"x\")".into();
    let r5 = below(r5);
    let rows = [
        sheet_row(1, &header),
        sheet_row(2, &r1),
        sheet_row(3, &r2),
        sheet_row(4, &r3),
        sheet_row(5, &r4),
        sheet_row(6, &r5),
        // One stray cell in the sheet's last cell: a dense reader allocates 512 GiB here.
        "<row r=\"1048576\"><c r=\"XFD1048576\" t=\"inlineStr\"><is><t>x</t></is></c></row>"
            .to_string(),
    ]
    .concat();
    let file = project.path().join("data/pbi.xlsx");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    raw_workbook(&file, &rows, &["H2:H6", "I2:I6"]);

    let out = run(&["check", &project.pipeline("f")]);
    assert!(out.status.success(), "check: {}", text(&out));
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_staged"], 4, "{source}");
    assert_eq!(
        source["quarantined_by_reason"]["identity_only_formulas"], 1,
        "{source}"
    );
    assert_eq!(
        source["quarantined_by_reason"]["no_identity"], 1,
        "{source}"
    );
    assert_eq!(source["rows_read"], 6, "{source}");
    assert_eq!(
        source["quality_flags"]["formula_without_value"], 1,
        "{source}"
    );
    let staged = read_parquet(&project.staged("f", "pbi"));
    assert_eq!(
        column_text(&staged, "district_code"),
        vec![Some("360101".to_string()); 4],
        "merged KD_KEC filled down"
    );
    assert_eq!(
        column_text(&staged, "regency_code"),
        vec![Some("3601".to_string()); 4]
    );
    let flags = crate::util::column_lists(&staged, "quality_flags");
    let formula_rows: Vec<usize> = flags
        .iter()
        .enumerate()
        .filter(|(_, f)| f.contains(&"formula_without_value".to_string()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(formula_rows, vec![3], "{flags:?}");
    assert_eq!(column_text(&staged, "nik")[3], None);
    assert!(
        stderr(&out).contains("formulas with no saved result"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_40000_character_name_is_kept_and_flagged() {
    let project = project_with("{ type = \"csv\" }");
    let long = "SITI ".repeat(8_000);
    project.write(
        "data/pbi.csv",
        format!(
            "{HEADER}{}{ROW_2}",
            ROW_1.replace("ANDI WIJAYA", long.trim())
        ),
    );
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_staged"], 2, "{source}");
    assert_eq!(source["quality_flags"]["value_too_long"], 1, "{source}");
    let staged = read_parquet(&project.staged("f", "pbi"));
    assert_eq!(
        column_text(&staged, "full_name")[0]
            .as_deref()
            .map(str::len),
        Some(long.trim().len()),
        "kept whole"
    );
}

#[test]
fn a_rule_that_breaks_out_of_its_parentheses_is_refused_by_name() {
    let project = Project::with_sample();
    let path = project.path().join("pipelines/sample.toml");
    let pipeline = std::fs::read_to_string(&path).expect("pipeline");
    let widened = pipeline.replacen(
        "eligibility = \"welfare_decile <= 4\"",
        "eligibility = \"welfare_decile <= 4) OR (1=1\"",
        1,
    );
    assert_ne!(pipeline, widened, "the sample has the rule");
    std::fs::write(&path, widened).expect("write");
    for command in ["check", "run"] {
        let out = run(&[command, &project.pipeline("sample")]);
        assert_eq!(out.status.code(), Some(2), "{command}: {}", text(&out));
        let all = text(&out);
        assert!(
            all.contains(".eligibility: must be exactly one SQL expression")
                && all.contains("`)` at line 1 column 20"),
            "{command}: {all}"
        );
    }
    assert!(
        !project.workspace("sample").join("store").exists(),
        "nothing was published"
    );
}

#[test]
fn symlink_loops_and_second_names_read_a_file_once() {
    let project = Project::new();
    project.write(
        "pipelines/f.toml",
        "name = \"f\"\n[[sources]]\nname = \"pbi\"\nrole = \"program\"\npath = \"../data/pbi/**/*.csv\"\nschema = \"pbi_jkn\"\nprogram = { code = \"PBI\", unit = \"person\" }\nformat = { type = \"csv\" }\n",
    );
    project.write("data/pbi/kab/a.csv", format!("{HEADER}{ROW_1}{ROW_2}"));
    project.write("elsewhere/b.csv", format!("{HEADER}{ROW_3}"));
    let dir = project.path().join("data/pbi");
    // A loop back into the tree, a link out of it, and a second name for a.csv.
    std::os::unix::fs::symlink(&dir, dir.join("kab/loop")).expect("symlink");
    std::os::unix::fs::symlink(project.path().join("elsewhere"), dir.join("out")).expect("link");
    std::os::unix::fs::symlink(dir.join("kab/a.csv"), dir.join("same.csv")).expect("link");
    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_read"], 2, "{source}");
    assert_eq!(
        source["inputs"].as_array().map(Vec::len),
        Some(1),
        "{source}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("reached through a directory symlink")
            && err.contains("naming a file already read under another name"),
        "{err}"
    );
}

#[test]
fn parquet_text_that_is_not_utf8_is_quarantined_not_blanked() {
    use std::sync::Arc;

    use arrow::array::{BinaryArray, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let project = project_with("{ type = \"parquet\" }");
    let names: Vec<&str> = HEADER.trim().split(',').collect();
    // NAMA written as bytes without the String annotation, as old Hive and Spark jobs do.
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| {
                let kind = if *n == "NAMA" {
                    DataType::Binary
                } else {
                    DataType::Utf8
                };
                Field::new(*n, kind, true)
            })
            .collect::<Vec<_>>(),
    ));
    let rows = [row_cells(ROW_1), row_cells(ROW_2)];
    let columns = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if *n == "NAMA" {
                Arc::new(BinaryArray::from(vec![
                    b"ANDI WIJAYA".as_slice(),
                    b"SITI \xff\xfe AMINAH".as_slice(),
                ])) as _
            } else {
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                )) as _
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let dir = project.path().join("data");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = std::fs::File::create(dir.join("pbi.parquet")).expect("create");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let out = ingest(&project);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_staged"], 1, "{source}");
    assert_eq!(
        source["quarantined_by_reason"]["invalid_encoding"], 1,
        "{source}"
    );
    let quarantined = read_parquet(&project.quarantine("f", "pbi"));
    assert_eq!(
        quarantine_reasons(&quarantined),
        vec![("2".to_string(), "invalid_encoding".to_string())]
    );
    assert!(
        column_text(&quarantined, "reason")[0]
            .as_deref()
            .is_some_and(|r| r.contains("column NAMA")),
        "names the column"
    );
}

fn row_cells(line: &str) -> Vec<String> {
    line.trim().split(',').map(str::to_string).collect()
}
