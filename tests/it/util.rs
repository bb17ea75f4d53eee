//! Shared helpers: a scratch project directory and a command for the built binary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A pipeline `f` with one JSON lines source `adu` (complaints) reading `data/adu.jsonl`.
pub const COMPLAINTS_JSONL_PIPELINE: &str = "name = \"f\"\nprovince = \"36\"\n[[sources]]\nname = \"adu\"\nrole = \"local\"\npath = \"../data/adu.jsonl\"\nschema = \"pengaduan_jsonl\"\nformat = { type = \"jsonl\" }\n";

/// A command running the built `terpadu` binary.
pub fn terpadu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_terpadu"))
}

/// Runs `terpadu` with `args`; returns the output.
pub fn run(args: &[&str]) -> Output {
    terpadu().args(args).output().expect("terpadu runs")
}

/// Runs `terpadu sql PIPELINE --format json QUERY` on the project's sample pipeline; returns
/// the rows as JSON objects.
pub fn sql_json(project: &Project, query: &str) -> Vec<serde_json::Value> {
    let out = run(&[
        "sql",
        &project.pipeline("sample"),
        "--format",
        "json",
        query,
    ]);
    assert!(out.status.success(), "{query}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Standard output and error as one string for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A scratch project: `pipelines/`, `schemas/` (copies of the shipped layouts) and data.
pub struct Project {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A new project with the shipped layouts copied in.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&repo().join("schemas"), &dir.path().join("schemas"));
        std::fs::create_dir_all(dir.path().join("pipelines")).expect("mkdir");
        Project { dir }
    }

    /// A project with the shipped sample pipeline and sample data.
    pub fn with_sample() -> Project {
        let project = Project::new();
        copy_dir(
            &repo().join("sample_data"),
            &project.path().join("sample_data"),
        );
        std::fs::copy(
            repo().join("pipelines/sample.toml"),
            project.path().join("pipelines/sample.toml"),
        )
        .expect("copy pipeline");
        project
    }

    /// The project root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the root.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// The sample pipeline path, as a string.
    pub fn pipeline(&self, name: &str) -> String {
        self.path()
            .join("pipelines")
            .join(format!("{name}.toml"))
            .display()
            .to_string()
    }

    /// The workspace of pipeline `name` (default location).
    pub fn workspace(&self, name: &str) -> PathBuf {
        self.path().join("workspace").join(name)
    }

    /// The data file of `source`'s staged table in the latest version.
    pub fn staged(&self, pipeline: &str, source: &str) -> PathBuf {
        self.table_file(pipeline, &format!("staged/{source}"))
    }

    /// The data file of `source`'s quarantine table in the latest version.
    pub fn quarantine(&self, pipeline: &str, source: &str) -> PathBuf {
        self.table_file(pipeline, &format!("quarantine/{source}"))
    }

    /// The one data file of Delta table `table` (`registry/person`) in the latest version.
    pub fn table_file(&self, pipeline: &str, table: &str) -> PathBuf {
        let files = block_on(async {
            let snapshot = self.latest(pipeline).await;
            snapshot.table_files(table).await.expect("table files")
        });
        assert_eq!(files.files.len(), 1, "{table}: {:?}", files.files);
        files.files[0].clone()
    }

    /// The latest workspace version of pipeline `name`.
    pub async fn latest(&self, name: &str) -> terpadu::store::Snapshot {
        terpadu::store::Store::new(&self.workspace(name))
            .pin_latest()
            .await
            .expect("store readable")
            .expect("a published version")
    }

    /// Every published version of pipeline `name`, oldest first.
    pub fn history(&self, name: &str) -> Vec<terpadu::store::VersionRecord> {
        block_on(terpadu::store::Store::new(&self.workspace(name)).history()).expect("history")
    }

    /// The staged manifest of pipeline `name` (the latest version's `staged` document).
    pub fn manifest(&self, name: &str) -> serde_json::Value {
        let history = self.history(name);
        history
            .last()
            .and_then(|v| v.documents.get("staged").cloned())
            .expect("a staged manifest")
    }
}

/// Every file under `dir` (none when it does not exist).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs a future to completion on a small runtime (tests are synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Reads every batch of a Parquet file.
pub fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect()
}

/// One column of a set of batches as optional strings (any type cast to text).
pub fn column_text(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch
            .column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).expect("cast");
        let strings = text
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("strings");
        out.extend(strings.iter().map(|s| s.map(String::from)));
    }
    out
}

/// The (source_row, reason_code) of every quarantined row, in file order.
pub fn quarantine_reasons(batches: &[RecordBatch]) -> Vec<(String, String)> {
    column_text(batches, "source_row")
        .into_iter()
        .zip(column_text(batches, "reason_code"))
        .map(|(row, code)| (row.expect("row"), code.expect("reason")))
        .collect()
}

/// A list column (e.g. quality_flags) as vectors of strings.
pub fn column_lists(batches: &[RecordBatch], name: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch.column_by_name(name).expect("list column");
        let list = column
            .as_any()
            .downcast_ref::<arrow::array::ListArray>()
            .expect("list");
        for i in 0..list.len() {
            let values = list.value(i);
            let strings = values
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .expect("strings");
            out.push(strings.iter().flatten().map(String::from).collect());
        }
    }
    out
}

/// The generator's truth file: (source, row) -> (person_id, noise tags joined by `;`).
pub fn truth(dir: &Path) -> HashMap<(String, u64), (String, String)> {
    terpadu::link::evaluate::read_truth(&dir.join("truth.csv"))
        .expect("truth.csv")
        .into_iter()
        .map(|(key, (person, _family, noise))| (key, (person, noise.join(";"))))
        .collect()
}

/// `terpadu --quiet run` on the project's sample pipeline (with `--force`), asserting success.
pub fn sample_run(project: &Project, force: bool) {
    let mut args = vec!["--quiet", "run"];
    let pipeline = project.pipeline("sample");
    args.push(&pipeline);
    if force {
        args.push("--force");
    }
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out));
}

/// Appends one new person (serial `7000 + n`) to the sample's civil-registry extract, so the
/// next run publishes a version with one more person.
pub fn add_person(project: &Project, n: u32) {
    let file = first_input(project, "dukcapil");
    let mut text = std::fs::read_to_string(&file).expect("read");
    let names = [
        "ASIH", "BINTARI", "CAHYATI", "DEWANTI", "ENDAH", "FITRIA", "GITA", "HASNAH", "INDAH",
        "JUWITA", "KARTIKA", "LESTARI",
    ];
    text.push_str(&format!(
        "360101550799{serial:04}|360101150310{serial:04}|NENENG {name}|PANDEGLANG|15-07-1999|2|1|4|ISLAM|PETANI|36|1|1|2001|KP. SUKAMAJU|001|002|HIDUP|\n",
        serial = 7000 + n,
        name = names[n as usize % names.len()],
    ));
    std::fs::write(&file, text).expect("write");
}

/// The first input file of the sample's source `source` (`sample_data/<source>/`).
pub fn first_input(project: &Project, source: &str) -> PathBuf {
    let dir = project.path().join("sample_data").join(source);
    std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("a file")
}
