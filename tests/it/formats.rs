//! Each input format on files made here: Parquet, a Windows-1252 CSV, a workbook whose header
//! sits under title rows (declared and detected), and JSON lines with broken lines.

use std::sync::Arc;

use arrow::array::{Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::util::{Project, column_lists, column_text, read_parquet, run, text};

const PBI_PIPELINE: &str = "name = \"f\"\n[[sources]]\nname = \"pbi\"\nrole = \"program\"\npath = \"../data/pbi.*\"\nschema = \"pbi_jkn\"\nprogram = { code = \"PBI\", unit = \"person\" }\n";

fn staged(project: &Project, source: &str) -> Vec<RecordBatch> {
    read_parquet(&project.staged("f", source))
}

#[test]
fn parquet_sources_go_through_the_same_layout() {
    let project = Project::new();
    project.write(
        "pipelines/f.toml",
        format!("{PBI_PIPELINE}format = {{ type = \"parquet\" }}\n"),
    );
    let text_field = |name: &str| Field::new(name, DataType::Utf8, true);
    let schema = Arc::new(Schema::new(vec![
        text_field("NO_KARTU"),
        // An agency that stored NIKs as floating point numbers: digits may be lost.
        Field::new("NIK", DataType::Float64, true),
        text_field("NAMA"),
        text_field("TGL_LAHIR"),
        text_field("JENIS_KELAMIN"),
        text_field("HUBUNGAN"),
        text_field("KD_PROP"),
        text_field("KD_KAB"),
        text_field("KD_KEC"),
        text_field("KD_DESA"),
        text_field("STATUS"),
    ]));
    let s = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as _;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            s(&["1", "2"]),
            Arc::new(Float64Array::from(vec![Some(3601015205850000.0), None])),
            s(&["Hj. Siti Aminah", "M. Yusuf"]),
            s(&["12/05/1985", "01/07/2010"]),
            s(&["P", "L"]),
            s(&["ISTRI", "ANAK"]),
            s(&["36", "36"]),
            s(&["3601", "3601"]),
            s(&["360101", "360101"]),
            s(&["3601012001", "3601012001"]),
            s(&["AKTIF", "AKTIF"]),
        ],
    )
    .expect("batch");
    std::fs::create_dir_all(project.path().join("data")).expect("mkdir");
    let file = std::fs::File::create(project.path().join("data/pbi.parquet")).expect("create");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");

    let out = run(&["ingest", &project.pipeline("f")]);
    assert!(out.status.success(), "{}", text(&out));
    let batches = staged(&project, "pbi");
    assert_eq!(
        column_text(&batches, "source_row"),
        vec![Some("1".into()), Some("2".into())]
    );
    assert_eq!(
        column_text(&batches, "name"),
        vec![Some("SITI AMINAH".into()), Some("MUHAMMAD YUSUF".into())]
    );
    assert_eq!(
        column_text(&batches, "nik_status"),
        vec![Some("damaged".into()), Some("missing".into())]
    );
    let flags = column_lists(&batches, "quality_flags");
    assert!(
        flags[0].contains(&"nik_last_digit_lost".into()),
        "{flags:?}"
    );
    assert!(
        flags[1].contains(&"birth_date_placeholder".into()),
        "{flags:?}"
    );
    assert_eq!(
        column_text(&batches, "relationship"),
        vec![Some("spouse".into()), Some("child".into())]
    );
}

#[test]
fn a_declared_windows_1252_encoding_is_decoded() {
    let project = Project::new();
    project.write(
        "pipelines/f.toml",
        format!("{PBI_PIPELINE}format = {{ type = \"csv\", encoding = \"windows-1252\" }}\n"),
    );
    let mut csv = b"NO_KARTU,NIK,NAMA,TGL_LAHIR,JENIS_KELAMIN,HUBUNGAN,KD_PROP,KD_KAB,KD_KEC,KD_DESA,STATUS\n".to_vec();
    // "ANDR\xc9" is ANDRÉ in Windows-1252 (and invalid UTF-8).
    csv.extend_from_slice(
        b"1,3601011201900001,ANDR\xc9 WIJAYA,12/01/1990,L,ANAK,36,3601,360101,3601012001,AKTIF\n",
    );
    project.write("data/pbi.csv", csv);
    let out = run(&["ingest", &project.pipeline("f")]);
    assert!(out.status.success(), "{}", text(&out));
    let batches = staged(&project, "pbi");
    assert_eq!(
        column_text(&batches, "full_name"),
        vec![Some("ANDRÉ WIJAYA".into())]
    );
    assert_eq!(
        column_text(&batches, "name"),
        vec![Some("ANDRE WIJAYA".into())]
    );
}

fn workbook(path: &std::path::Path) {
    use rust_xlsxwriter::Workbook;
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Data").expect("name");
    sheet
        .write_string(0, 0, "REKAP PENERIMA BANTUAN")
        .expect("cell");
    let header = [
        "No.",
        "Nama Lengkap",
        "N I K",
        "No. Kartu Keluarga",
        "Tempat Lahir",
        "Tanggal Lahir",
        "Jenis Kelamin",
        "Kabupaten/Kota",
        "Kecamatan",
        "Desa/Kelurahan",
        "Alamat",
        "RT",
        "RW",
        "Keterangan",
    ];
    for (col, name) in header.iter().enumerate() {
        sheet.write_string(2, col as u16, *name).expect("cell");
    }
    // Row 4 (index 3): NIK as a number cell, date as an Excel serial number.
    sheet.write_number(3, 0, 1.0).expect("cell");
    sheet.write_string(3, 1, "Siti Aminah").expect("cell");
    sheet.write_number(3, 2, 3601015205850000.0).expect("cell");
    sheet.write_string(3, 3, "3601011203100001").expect("cell");
    sheet.write_number(3, 5, 31179.0).expect("cell"); // 12 May 1985
    sheet.write_string(3, 6, "P").expect("cell");
    sheet
        .write_string(3, 7, "Kabupaten Pandeglang")
        .expect("cell");
    sheet.write_string(3, 8, "Sumur").expect("cell");
    // Row 5 blank, row 6 a totals row without identity.
    sheet.write_string(5, 0, "JUMLAH").expect("cell");
    sheet.write_number(5, 11, 1.0).expect("cell");
    book.save(path).expect("save workbook");
}

#[test]
fn workbook_headers_under_title_rows_are_found_or_declared() {
    for header_row in [None, Some(3)] {
        let project = Project::new();
        let format = match header_row {
            Some(n) => {
                format!("format = {{ type = \"xlsx\", sheet = \"Data\", header_row = {n} }}")
            }
            None => "format = { type = \"xlsx\" }".to_string(),
        };
        project.write(
            "pipelines/f.toml",
            format!("name = \"f\"\nprovince = \"36\"\n[[sources]]\nname = \"prov\"\nrole = \"program\"\npath = \"../data/prov.xlsx\"\nschema = \"provincial_jamsosratu\"\n{format}\nprogram = {{ code = \"J\", unit = \"household\" }}\n"),
        );
        std::fs::create_dir_all(project.path().join("data")).expect("mkdir");
        workbook(&project.path().join("data/prov.xlsx"));
        let out = run(&["ingest", &project.pipeline("f")]);
        assert!(out.status.success(), "{header_row:?}: {}", text(&out));
        let manifest = project.manifest("f");
        let source = &manifest["sources"][0];
        assert_eq!(source["rows_read"], 2, "{source}");
        assert_eq!(source["rows_staged"], 1);
        assert_eq!(
            source["rows_quarantined"], 1,
            "the totals row is quarantined"
        );
        assert_eq!(source["blank_rows_skipped"], 1);
        let batches = staged(&project, "prov");
        assert_eq!(column_text(&batches, "source_row"), vec![Some("4".into())]);
        assert_eq!(
            column_text(&batches, "birth_date"),
            vec![Some("1985-05-12".into())]
        );
        assert_eq!(
            column_text(&batches, "nik_status"),
            vec![Some("damaged".into())]
        );
        assert_eq!(
            column_text(&batches, "district_code"),
            vec![Some("360101".into())]
        );
        let quarantine = read_parquet(&project.quarantine("f", "prov"));
        assert_eq!(
            column_text(&quarantine, "source_row"),
            vec![Some("6".into())]
        );
        assert_eq!(
            column_text(&quarantine, "reason_code"),
            vec![Some("no_identity".into())]
        );
    }
}

#[test]
fn broken_json_lines_are_quarantined_and_the_rest_staged() {
    let project = Project::new();
    project.write("pipelines/f.toml", crate::util::COMPLAINTS_JSONL_PIPELINE);
    project.write(
        "data/adu.jsonl",
        concat!(
            "\u{feff}{\"id_laporan\":\"A1\",\"NAMA\":\"Oetjoep\",\"nik\":3601011201900001,\"tanggal_lahir\":null,\"jenis_kelamin\":\"L\",\"keluhan\":null,\"tanggal_lapor\":\"2025-10-01\",\"alamat\":{\"jalan\":null,\"rt\":1.0,\"rw\":null,\"desa\":\"Kertajaya\",\"kecamatan\":\"Sumur\",\"kabupaten\":\"Kab. Pandeglang\"}}\n",
            "{\"id_laporan\":\"A2\",\"nama\":\"Broken\"\n",
            "\n",
            "[1, 2, 3]\n",
            "{\"id_laporan\":\"A4\",\"nama\":\"Sri\",\"nik\":null,\"alamat\":{\"desa\":\"Atlantis\",\"kecamatan\":\"Sumur\",\"kabupaten\":\"Kab. Pandeglang\"}}\n",
        ),
    );
    let out = run(&["ingest", &project.pipeline("f")]);
    assert!(out.status.success(), "{}", text(&out));
    let source = &project.manifest("f")["sources"][0];
    assert_eq!(source["rows_read"], 4, "{source}");
    assert_eq!(source["rows_staged"], 2);
    assert_eq!(source["quarantined_by_reason"]["invalid_json"], 1);
    assert_eq!(source["quarantined_by_reason"]["not_an_object"], 1);
    let batches = staged(&project, "adu");
    assert_eq!(
        column_text(&batches, "source_row"),
        vec![Some("1".into()), Some("5".into())]
    );
    assert_eq!(
        column_text(&batches, "name"),
        vec![Some("UCUP".into()), Some("SRI".into())]
    );
    assert_eq!(
        column_text(&batches, "nik"),
        vec![Some("3601011201900001".into()), None]
    );
    assert_eq!(
        column_text(&batches, "district_code"),
        vec![Some("360101".into()), Some("360101".into())]
    );
    assert_eq!(
        column_text(&batches, "village_code")[1],
        None,
        "unknown village stays unresolved"
    );
    let flags = column_lists(&batches, "quality_flags");
    assert!(flags[1].contains(&"region_unknown".into()), "{flags:?}");
    // A key in another case is found (NAMA for nama); whole floats lose their ".0".
    assert_eq!(column_text(&batches, "rt")[0].as_deref(), Some("1"));
}

#[test]
fn a_json_path_no_line_has_is_a_layout_error() {
    let project = Project::new();
    project.write("pipelines/f.toml", crate::util::COMPLAINTS_JSONL_PIPELINE);
    project.write("data/adu.jsonl", "{\"name\":\"Sri\",\"nik\":null}\n");
    let out = run(&["ingest", &project.pipeline("f")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lacks column(s) nama (for fields.full_name)"),
        "{stderr}"
    );
}
