//! Pipeline files (`pipelines/*.toml`): which extracts to load, from where, read how.
//!
//! ```toml
//! name = "sample"
//! province = "36"                      # default province for region names
//!
//! [[sources]]
//! name = "pkh"
//! role = "program"                     # civil_registry | welfare_registry | program | local
//! path = "../sample_data/pkh/*.csv"    # relative to this file; globs allowed
//! schema = "kpm_beneficiary"           # a layout in schemas/
//! format = { type = "csv", delimiter = "," }
//! program = { code = "PKH", period = "2025-T3", unit = "family" }
//!
//! [linkage]                            # optional: see `config::linkage`
//! threshold = 0.95
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::Diagnostic;
use super::layout::Layout;

/// A pipeline file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Pipeline name (used in logs, the run ledger and the default workspace).
    pub name: String,
    /// What the pipeline is for.
    #[serde(default)]
    pub description: String,
    /// Workspace directory for staged data and runs; default `../workspace/<name>` relative to
    /// the pipeline file.
    pub workspace: Option<PathBuf>,
    /// Directory of layouts; default `../schemas` relative to the pipeline file.
    pub schemas_dir: Option<PathBuf>,
    /// Default 2-digit Kemendagri province code for sources that give region names only.
    pub province: Option<String>,
    /// The extracts to load.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// Linkage settings (blocking rules, comparisons, thresholds); defaults when absent.
    pub linkage: Option<super::linkage::RawLinkage>,
    /// How long published versions are kept (`[store]`).
    pub store: Option<RawStore>,
    /// The program catalogue.
    #[serde(default)]
    pub programs: Vec<super::programs::RawProgram>,
    /// Exclusivity rules.
    #[serde(default)]
    pub exclusivity: Vec<super::programs::RawExclusivity>,
    /// Report settings.
    pub reports: Option<super::programs::RawReports>,
    /// When `terpadu schedule` runs the pipeline: a cron expression (`0 2 * * *`: 02:00 every
    /// day; six fields when seconds are needed).
    pub schedule: Option<String>,
    /// Time zone of the schedule (IANA name; default `Asia/Jakarta`).
    pub timezone: Option<String>,
    /// Retries of a failed scheduled run.
    pub retries: Option<u32>,
    /// Seconds before the first retry; doubled for each further one.
    pub retry_backoff_seconds: Option<u64>,
}

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// The expression as written.
    pub expression: String,
    /// The parsed schedule (seconds field first).
    pub cron: cron::Schedule,
    /// Its time zone.
    pub timezone: chrono_tz::Tz,
    /// Retries of a failed run.
    pub retries: u32,
    /// First backoff, seconds.
    pub backoff_seconds: u64,
}

/// Parses a 5-field (minute hour day month weekday) or 6-field (with seconds first) cron
/// expression with a maintained parser (the `cron` crate). Weekdays are best written as names
/// (`Mon-Fri`); numbers follow that crate (1 = Sunday).
pub fn parse_schedule(expression: &str) -> Result<cron::Schedule, String> {
    use std::str::FromStr;
    let fields = expression.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expression}"),
        6 | 7 => expression.to_string(),
        n => {
            return Err(format!(
                "'{expression}' has {n} fields; write minute hour day month weekday, e.g. \"0 2 * * *\""
            ));
        }
    };
    cron::Schedule::from_str(&full)
        .map_err(|e| format!("'{expression}' is not a cron expression: {e}"))
}

/// A source as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Source name: a table name in SQL, so letters, digits and `_`.
    pub name: String,
    /// What the source is to the registry.
    pub role: SourceRole,
    /// File path or glob, relative to the pipeline file.
    pub path: String,
    /// Layout name (a file `<schemas_dir>/<schema>.toml`).
    pub schema: String,
    /// How the files are encoded.
    pub format: SourceFormat,
    /// Program fields, for `role = "program"`.
    pub program: Option<ProgramSpec>,
    /// When and whether the source must arrive (`terpadu run`).
    #[serde(default)]
    pub arrival: Arrival,
    /// Sanity thresholds that stop publication.
    #[serde(default)]
    pub checks: SanityChecks,
}

/// Arrival rules of a source, checked by `terpadu run` before any work.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// A missing or stale required source fails the run; an optional one keeps its previous
    /// staged version.
    #[serde(default = "default_required")]
    pub required: bool,
    /// Inputs older than this many hours are stale.
    pub max_age_hours: Option<f64>,
    /// Inputs are read only once their size and modification time have not changed for this
    /// many seconds (a file still being copied is not read).
    #[serde(default)]
    pub stable_seconds: u64,
    /// A file that must exist in the inputs' directory before they are read (`_SUCCESS`,
    /// `*.done`).
    pub marker: Option<String>,
}

fn default_required() -> bool {
    true
}

impl Default for Arrival {
    fn default() -> Self {
        Arrival {
            required: true,
            max_age_hours: None,
            stable_seconds: 0,
            marker: None,
        }
    }
}

/// Thresholds that stop a run from publishing data that looks wrong (a truncated extract).
/// On by default: a source that stages no rows, or reads less than half of what the current
/// version read, stops publication unless the pipeline says otherwise.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SanityChecks {
    /// Largest allowed drop in rows read against the previous staged version (0.2 = 20%);
    /// [`DEFAULT_MAX_ROW_DROP`] when unset, `1.0` turns the check off.
    pub max_row_drop: Option<f64>,
    /// Largest allowed share of rows quarantined (0.05 = 5%).
    pub max_quarantined_share: Option<f64>,
    /// Publish even when the source stages no rows (a header-only extract).
    #[serde(default)]
    pub allow_empty: bool,
}

/// The row drop that stops publication when a source sets no `max_row_drop`: half.
pub const DEFAULT_MAX_ROW_DROP: f64 = 0.5;

impl SanityChecks {
    /// The row-drop threshold in force.
    pub fn row_drop_limit(&self) -> f64 {
        self.max_row_drop.unwrap_or(DEFAULT_MAX_ROW_DROP)
    }
}

/// What a source is to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceRole {
    /// The identity master (Dukcapil biodata): NIK, KK, names, births and deaths.
    CivilRegistry,
    /// A ranked welfare list (DTKS/DTSEN) with deciles.
    WelfareRegistry,
    /// A beneficiary list of one program (KPM list, provincial spreadsheet).
    Program,
    /// A local survey or complaint list.
    Local,
}

impl SourceRole {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceRole::CivilRegistry => "civil_registry",
            SourceRole::WelfareRegistry => "welfare_registry",
            SourceRole::Program => "program",
            SourceRole::Local => "local",
        }
    }
}

/// File format of a source (`type = ...`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceFormat {
    /// Delimited text with a header row.
    Csv {
        /// Field delimiter, one character; default `,`.
        #[serde(default = "default_delimiter")]
        delimiter: String,
        /// Quote character; default `"`.
        #[serde(default = "default_quote")]
        quote: String,
        /// Text encoding (an Encoding Standard label: utf-8, windows-1252, iso-8859-1,
        /// utf-16le...). A UTF-16 byte-order mark in the file overrides it.
        #[serde(default = "default_encoding")]
        encoding: String,
        /// Longest record in bytes; a longer one is quarantined as `record_too_long` and the
        /// rest of the file is still read. Default 1 MiB.
        #[serde(default = "default_max_record_bytes")]
        max_record_bytes: u64,
    },
    /// An Excel workbook sheet.
    Xlsx {
        /// Sheet name; default the first sheet.
        sheet: Option<String>,
        /// 1-based row of the header; default: the first of the top 20 rows that has every
        /// column the layout needs (title rows above the header are common).
        header_row: Option<u32>,
    },
    /// One JSON object per line; columns are dotted paths.
    Jsonl {
        /// Longest line in bytes; a longer one is quarantined as `record_too_long`. Default
        /// 1 MiB.
        #[serde(default = "default_max_record_bytes")]
        max_record_bytes: u64,
    },
    /// Parquet with the agency's columns.
    Parquet,
}

fn default_delimiter() -> String {
    ",".into()
}
fn default_quote() -> String {
    "\"".into()
}
fn default_encoding() -> String {
    "utf-8".into()
}
/// The default bound on one record (CSV record, JSON line): far above any real row, far below
/// a file without line breaks.
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 1 << 20;
fn default_max_record_bytes() -> u64 {
    DEFAULT_MAX_RECORD_BYTES
}

/// Program fields of a beneficiary list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Program code, e.g. `PKH`.
    pub code: String,
    /// Period, e.g. `2025-T3`; rows may override it with a `period` field.
    pub period: Option<String>,
    /// Unit of the benefit.
    pub unit: ProgramUnit,
}

/// Unit a program pays: checked for duplicates and exclusivity at this level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramUnit {
    /// One person (PBI health insurance, Prakerja).
    Person,
    /// One family card (PKH, BPNT).
    Family,
    /// One household (Jamsosratu).
    Household,
}

impl ProgramUnit {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgramUnit::Person => "person",
            ProgramUnit::Family => "family",
            ProgramUnit::Household => "household",
        }
    }
}

/// `[store]` as written: how long published workspace versions stay readable.
///
/// ```toml
/// [store]
/// retain_hours = 168   # every version published in the last 7 days stays readable
/// keep_versions = 5    # and the 5 newest, however old
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Hours a published version stays readable (default 168, Delta's default).
    pub retain_hours: Option<u64>,
    /// Newest versions kept beyond the retention period (default 5).
    pub keep_versions: Option<usize>,
}

/// A checked pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Pipeline name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The pipeline file.
    pub file: PathBuf,
    /// Workspace directory.
    pub workspace: PathBuf,
    /// Default province code.
    pub province: Option<String>,
    /// Sources in declaration order.
    pub sources: Vec<Source>,
    /// Linkage settings.
    pub linkage: super::linkage::Linkage,
    /// Retention of published versions.
    pub retention: crate::store::Retention,
    /// Programs, exclusivity rules and report settings.
    pub catalogue: super::programs::Catalogue,
    /// When `terpadu schedule` runs it.
    pub schedule: Option<ScheduleSpec>,
}

/// A checked source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Source name (SQL table name).
    pub name: String,
    /// Role.
    pub role: SourceRole,
    /// Absolute path or glob pattern.
    pub path: String,
    /// The path as written in the pipeline (for messages).
    pub path_as_written: String,
    /// File format.
    pub format: SourceFormat,
    /// Its layout.
    pub layout: Arc<Layout>,
    /// Program fields.
    pub program: Option<ProgramSpec>,
    /// Arrival rules.
    pub arrival: Arrival,
    /// Sanity thresholds.
    pub checks: SanityChecks,
}

/// Table names terpadu registers itself besides the registry's
/// ([`crate::workspace::REGISTRY_TABLES`]); sources may not take them.
pub const RESERVED_TABLES: &[&str] = &[
    "quarantine",
    "ingest_sources",
    "records",
    "runs",
    "run_stages",
];

/// Whether terpadu registers a table of this name itself.
fn is_reserved(name: &str) -> bool {
    RESERVED_TABLES.contains(&name)
        || crate::workspace::REGISTRY_TABLES
            .iter()
            .any(|(t, _)| *t == name)
        || name.starts_with("quarantine_")
        || name.starts_with("report_")
}

/// True for a name usable as an SQL table name without quoting.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Resolves `path` relative to the directory of `file`, removing `.` and `..` lexically so
/// messages show `workspace/sample`, not `pipelines/../workspace/sample`.
pub fn relative_to(file: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Checks one source's own settings (the layout is resolved by the caller).
pub fn check_source(file: &Path, index: usize, source: &RawSource, problems: &mut Vec<Diagnostic>) {
    let key = |k: &str| format!("sources[{index}].{k}");
    if !is_plain_identifier(&source.name) {
        problems.push(Diagnostic::new(
            file,
            key("name"),
            format!(
                "'{}' must be lower-case letters, digits and _ (it becomes an SQL table name)",
                source.name
            ),
        ));
    }
    if is_reserved(&source.name) {
        let names: Vec<&str> = RESERVED_TABLES
            .iter()
            .copied()
            .chain(crate::workspace::REGISTRY_TABLES.iter().map(|(t, _)| *t))
            .collect();
        problems.push(Diagnostic::new(
            file,
            key("name"),
            format!(
                "'{}' is a table terpadu itself provides in SQL ({}, quarantine_<source> and report_<name>); choose another name",
                source.name,
                names.join(", ")
            ),
        ));
    }
    if source.path.trim().is_empty() {
        problems.push(Diagnostic::new(file, key("path"), "path must not be empty"));
    }
    if let SourceFormat::Csv {
        max_record_bytes, ..
    }
    | SourceFormat::Jsonl { max_record_bytes } = &source.format
        && !(256..=1 << 30).contains(max_record_bytes)
    {
        problems.push(Diagnostic::new(
            file,
            key("format.max_record_bytes"),
            format!("{max_record_bytes} is out of range: give a size between 256 bytes and 1 GiB (default {DEFAULT_MAX_RECORD_BYTES})"),
        ));
    }
    if let SourceFormat::Csv {
        delimiter,
        quote,
        encoding,
        ..
    } = &source.format
    {
        if delimiter_byte(delimiter).is_none() {
            problems.push(Diagnostic::new(
                file,
                key("format.delimiter"),
                format!(
                    "'{delimiter}' must be one ASCII character, such as \",\", \";\", \"|\" or \"\\t\""
                ),
            ));
        }
        if delimiter_byte(quote).is_none() {
            problems.push(Diagnostic::new(
                file,
                key("format.quote"),
                format!("'{quote}' must be one ASCII character"),
            ));
        }
        match encoding_rs::Encoding::for_label(encoding.as_bytes()) {
            None => problems.push(Diagnostic::new(
                file,
                key("format.encoding"),
                format!(
                    "unknown encoding '{encoding}' (use a label such as utf-8, windows-1252, iso-8859-1)"
                ),
            )),
            // UTF-16 is decoded to UTF-8 before parsing (ingest::input); nothing else that is
            // not ASCII-compatible can be.
            Some(e) if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE => {}
            Some(e) if !e.is_ascii_compatible() || e == encoding_rs::REPLACEMENT => {
                problems.push(Diagnostic::new(
                    file,
                    key("format.encoding"),
                    format!(
                        "'{encoding}' is not an ASCII-compatible encoding; convert the file (e.g. UTF-16 to UTF-8) before loading"
                    ),
                ))
            }
            Some(_) => {}
        }
        if delimiter == quote {
            problems.push(Diagnostic::new(
                file,
                key("format.quote"),
                "the quote character must differ from the delimiter",
            ));
        }
    }
    if let SourceFormat::Xlsx {
        header_row: Some(0),
        ..
    } = &source.format
    {
        problems.push(Diagnostic::new(
            file,
            key("format.header_row"),
            "rows are numbered from 1, as Excel shows them",
        ));
    }
    match (source.role, &source.program) {
        (SourceRole::Program, None) => problems.push(Diagnostic::new(
            file,
            key("program"),
            "a program source needs program = { code = \"...\", unit = \"person\" | \"family\" | \"household\" }",
        )),
        (SourceRole::Program, Some(p)) if p.code.trim().is_empty() => problems.push(
            Diagnostic::new(file, key("program.code"), "program code must not be empty"),
        ),
        (role, Some(_)) if role != SourceRole::Program => problems.push(Diagnostic::new(
            file,
            key("program"),
            format!("only program sources take program fields; this source's role is {}", role.as_str()),
        )),
        _ => {}
    }
    check_thresholds(file, &key, source, problems);
}

/// The longest `arrival.stable_seconds` accepted: a file still growing after an hour is not
/// being copied, it is stuck.
pub const MAX_STABLE_SECONDS: u64 = 3600;

/// Sanity and arrival thresholds must be fractions and durations a night can hold.
fn check_thresholds(
    file: &Path,
    key: &dyn Fn(&str) -> String,
    source: &RawSource,
    problems: &mut Vec<Diagnostic>,
) {
    let fractions = [
        ("checks.max_row_drop", source.checks.max_row_drop),
        (
            "checks.max_quarantined_share",
            source.checks.max_quarantined_share,
        ),
    ];
    for (name, value) in fractions {
        if let Some(v) = value
            && !(0.0..=1.0).contains(&v)
        {
            problems.push(Diagnostic::new(
                file,
                key(name),
                format!("{v} is not a share: give a fraction between 0 and 1 (0.2 = 20%)"),
            ));
        }
    }
    if source.arrival.stable_seconds > MAX_STABLE_SECONDS {
        problems.push(Diagnostic::new(
            file,
            key("arrival.stable_seconds"),
            format!(
                "{} s would hold the run for {:.1} hours per source: give at most {MAX_STABLE_SECONDS} (a copy still running after that is stuck)",
                source.arrival.stable_seconds,
                source.arrival.stable_seconds as f64 / 3600.0
            ),
        ));
    }
    if let Some(hours) = source.arrival.max_age_hours
        && !(hours > 0.0 && hours <= 24.0 * 366.0)
    {
        problems.push(Diagnostic::new(
            file,
            key("arrival.max_age_hours"),
            format!("{hours} is out of range: give hours above 0 and at most a year (8784)"),
        ));
    }
}

/// The single byte of a one-character ASCII delimiter (`\t` written as a tab or as `\\t`).
pub fn delimiter_byte(text: &str) -> Option<u8> {
    match text {
        "\\t" | "\t" => Some(b'\t'),
        _ if text.len() == 1 && text.is_ascii() => text.bytes().next(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_relative_to_the_pipeline_file() {
        let file = Path::new("pipelines/sample.toml");
        assert_eq!(
            relative_to(file, Path::new("../sample_data/pkh/*.csv")),
            PathBuf::from("sample_data/pkh/*.csv")
        );
        assert_eq!(
            relative_to(Path::new("/srv/p/nightly.toml"), Path::new("../../x")),
            PathBuf::from("/x")
        );
        assert_eq!(
            relative_to(Path::new("p.toml"), Path::new("../w")),
            PathBuf::from("../w")
        );
        assert_eq!(
            relative_to(file, Path::new("/abs/x.csv")),
            PathBuf::from("/abs/x.csv")
        );
    }
}

#[cfg(test)]
mod reserved_tests {
    use super::is_reserved;

    #[test]
    fn every_table_terpadu_registers_is_reserved() {
        for name in [
            "quarantine",
            "records",
            "person",
            "match_pairs",
            "runs",
            "run_stages",
            "quarantine_pkh",
            "report_duplicates",
        ] {
            assert!(is_reserved(name), "{name}");
        }
        assert!(!is_reserved("pkh"));
    }
}
