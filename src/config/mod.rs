//! Loads pipelines and layouts, checks them together, and reports every problem at once.
//!
//! Two steps, as ripgrep does with its arguments: serde parses the TOML (keeping the line and
//! column of syntax errors), then `validate` turns the `Raw*` types into checked ones so later
//! stages never check again. Every problem becomes a [`Diagnostic`] naming the file, the key
//! path and what to do; `terpadu check` prints them all.

pub mod layout;
pub mod linkage;
pub mod pipeline;
pub mod programs;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use layout::{Layout, RegionSpec};
pub use pipeline::{Pipeline, ProgramSpec, ProgramUnit, Source, SourceFormat, SourceRole};

use layout::RawLayout;
use pipeline::RawPipeline;

/// One configuration problem: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file with the problem.
    pub file: PathBuf,
    /// Key path inside the file (`sources[2].schema`), or `line 4, column 7` for syntax.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Diagnostic {
    /// A new diagnostic.
    pub fn new(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

/// Configuration errors: the configuration is wrong, not terpadu.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One or more problems in pipeline or layout files.
    #[error("{} configuration problem(s):\n{}", .0.len(), render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// The problems.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
        }
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    problems: &mut Vec<Diagnostic>,
) -> Option<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.push(Diagnostic::new(path, "", format!("cannot read file: {e}")));
            return None;
        }
    };
    match toml::from_str::<T>(&text) {
        Ok(value) => Some(value),
        Err(e) => {
            let key = e
                .span()
                .map(|span| {
                    let (line, column) = line_column(&text, span.start);
                    format!("line {line}, column {column}")
                })
                .unwrap_or_default();
            problems.push(Diagnostic::new(path, key, e.message().to_string()));
            None
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Loads and checks a layout file on its own.
pub fn load_layout(path: &Path) -> Result<Layout, ConfigError> {
    let mut problems = Vec::new();
    let layout = read_toml::<RawLayout>(path, &mut problems)
        .and_then(|raw| raw.validate(path, &mut problems));
    match layout {
        Some(layout) if problems.is_empty() => Ok(layout),
        _ => Err(ConfigError::Invalid(problems)),
    }
}

/// Today in the pipeline's time zone (its schedule's, else Asia/Jakarta): the date a night's
/// run judges ages, deaths and "in the future" by.
pub fn today(pipeline: &Pipeline) -> chrono::NaiveDate {
    let tz = pipeline
        .schedule
        .as_ref()
        .map_or(chrono_tz::Asia::Jakarta, |s| s.timezone);
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

/// Options that override a pipeline file's settings.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Use this workspace instead of the pipeline's.
    pub workspace: Option<PathBuf>,
}

/// Loads a pipeline and every layout it names, and checks them together.
pub fn load_pipeline(path: &Path, overrides: &Overrides) -> Result<Pipeline, ConfigError> {
    let mut problems = Vec::new();
    let Some(raw) = read_toml::<RawPipeline>(path, &mut problems) else {
        return Err(ConfigError::Invalid(problems));
    };
    if !pipeline::is_plain_identifier(&raw.name) {
        problems.push(Diagnostic::new(
            path,
            "name",
            format!(
                "'{}' must be lower-case letters, digits and _ (it names the workspace and the runs)",
                raw.name
            ),
        ));
    }
    if let Some(province) = &raw.province {
        let known = crate::normalize::region::region_index().get(province);
        if province.len() != 2 || known.is_none() {
            problems.push(Diagnostic::new(
                path,
                "province",
                format!(
                    "'{province}' is not a 2-digit Kemendagri province code (Banten is \"36\")"
                ),
            ));
        }
    }
    if raw.sources.is_empty() {
        problems.push(Diagnostic::new(
            path,
            "sources",
            "a pipeline needs at least one [[sources]] entry",
        ));
    }
    let schemas_dir = pipeline::relative_to(
        path,
        raw.schemas_dir
            .as_deref()
            .unwrap_or(Path::new("../schemas")),
    );
    let mut layouts: BTreeMap<String, Option<Arc<Layout>>> = BTreeMap::new();
    let mut seen_names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sources = Vec::new();
    for (index, source) in raw.sources.iter().enumerate() {
        pipeline::check_source(path, index, source, &mut problems);
        if let Some(first) = seen_names.insert(&source.name, index) {
            problems.push(Diagnostic::new(
                path,
                format!("sources[{index}].name"),
                format!(
                    "'{}' is already the name of sources[{first}]; source names must be unique",
                    source.name
                ),
            ));
        }
        let layout = layouts
            .entry(source.schema.clone())
            .or_insert_with(|| {
                let file = schemas_dir.join(format!("{}.toml", source.schema));
                if !file.exists() {
                    return None;
                }
                read_toml::<RawLayout>(&file, &mut problems)
                    .and_then(|raw| raw.validate(&file, &mut problems))
                    .map(Arc::new)
            })
            .clone();
        let Some(layout) = layout else {
            let file = schemas_dir.join(format!("{}.toml", source.schema));
            if !file.exists() {
                problems.push(Diagnostic::new(
                    path,
                    format!("sources[{index}].schema"),
                    format!(
                        "no layout '{}' ({} does not exist; known: {})",
                        source.schema,
                        file.display(),
                        known_layouts(&schemas_dir).join(", ")
                    ),
                ));
            }
            continue;
        };
        if let (Some(RegionSpec::Names { province: None, .. }), None) =
            (&layout.region, &raw.province)
        {
            problems.push(Diagnostic::new(
                path,
                format!("sources[{index}].schema"),
                format!(
                    "layout '{}' reads region names without a province column; set province = \"NN\" in the pipeline",
                    layout.name
                ),
            ));
        }
        let absolute = pipeline::relative_to(path, Path::new(&source.path));
        sources.push(Source {
            name: source.name.clone(),
            role: source.role,
            path: absolute.to_string_lossy().into_owned(),
            path_as_written: source.path.clone(),
            format: source.format.clone(),
            layout,
            program: source.program.clone(),
            arrival: source.arrival.clone(),
            checks: source.checks.clone(),
        });
    }
    let linkage = raw
        .linkage
        .clone()
        .unwrap_or_default()
        .validate(path, &mut problems);
    let store = raw.store.clone().unwrap_or_default();
    let defaults = crate::store::Retention::default();
    let retention = crate::store::Retention {
        retain_hours: store.retain_hours.unwrap_or(defaults.retain_hours),
        keep_versions: store
            .keep_versions
            .or(linkage.keep_versions)
            .unwrap_or(defaults.keep_versions),
    };
    if store.keep_versions == Some(0) {
        problems.push(Diagnostic::new(
            path,
            "store.keep_versions",
            "must be at least 1 (the latest version)",
        ));
    }
    if store.retain_hours.is_some_and(|h| h > 24 * 365 * 10) {
        problems.push(Diagnostic::new(
            path,
            "store.retain_hours",
            "more than ten years; vacuum would never free space (168, one week, is the default)",
        ));
    }
    let source_codes: Vec<(usize, String)> = raw
        .sources
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.program.as_ref().map(|p| (i, p.code.clone())))
        .collect();
    let catalogue = programs::validate(
        path,
        raw.programs.clone(),
        raw.exclusivity.clone(),
        raw.reports.clone().unwrap_or_default(),
        &source_codes,
        &mut problems,
    );
    let timezone = match raw.timezone.as_deref() {
        None => Some(chrono_tz::Asia::Jakarta),
        Some(name) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                problems.push(Diagnostic::new(
                    path,
                    "timezone",
                    format!("'{name}' is not an IANA time zone (for example Asia/Jakarta, Asia/Makassar, Asia/Jayapura)"),
                ));
                None
            }
        },
    };
    let schedule =
        raw.schedule
            .as_deref()
            .and_then(|expression| match pipeline::parse_schedule(expression) {
                Ok(cron) => timezone.map(|timezone| pipeline::ScheduleSpec {
                    expression: expression.to_string(),
                    cron,
                    timezone,
                    retries: raw.retries.unwrap_or(2),
                    backoff_seconds: raw.retry_backoff_seconds.unwrap_or(300),
                }),
                Err(message) => {
                    problems.push(Diagnostic::new(path, "schedule", message));
                    None
                }
            });
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let workspace = overrides.workspace.clone().unwrap_or_else(|| {
        pipeline::relative_to(
            path,
            &raw.workspace
                .unwrap_or_else(|| PathBuf::from("../workspace").join(&raw.name)),
        )
    });
    Ok(Pipeline {
        name: raw.name,
        description: raw.description,
        file: path.to_path_buf(),
        workspace,
        province: raw.province,
        sources,
        linkage,
        retention,
        catalogue,
        schedule,
    })
}

fn known_layouts(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().is_some_and(|x| x == "toml"))
                        .then(|| p.file_stem()?.to_str().map(String::from))
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        names.push(format!("none in {}", dir.display()));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create test dir");
        }
        std::fs::write(&path, text).expect("write test file");
        path
    }

    #[test]
    fn pipeline_problems_are_all_reported_with_file_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "schemas/kpm.toml",
            "name = \"kpm\"\n[fields]\nnik = { column = \"NIK\" }\n",
        );
        let pipeline = write(
            dir.path(),
            "pipelines/p.toml",
            r#"
name = "p"
[[sources]]
name = "pkh"
role = "program"
path = "x.csv"
schema = "kpm"
format = { type = "csv", delimiter = ";;", encoding = "klingon" }

[[sources]]
name = "pkh"
role = "civil_registry"
path = "y.csv"
schema = "kpm_banten"
format = { type = "csv" }
program = { code = "X", unit = "family" }

[[sources]]
name = "quarantine"
role = "local"
path = "z.csv"
schema = "kpm"
format = { type = "csv" }
"#,
        );
        let err = load_pipeline(&pipeline, &Overrides::default()).expect_err("invalid");
        let text = err.to_string();
        assert!(text.contains("sources[0].format.delimiter"), "{text}");
        assert!(
            text.contains("sources[0].format.encoding: unknown encoding 'klingon'"),
            "{text}"
        );
        assert!(
            text.contains("sources[0].program: a program source needs"),
            "{text}"
        );
        assert!(text.contains("sources[1].name: 'pkh' is already"), "{text}");
        assert!(
            text.contains("sources[1].program: only program sources"),
            "{text}"
        );
        assert!(
            text.contains("sources[1].schema: no layout 'kpm_banten'")
                && text.contains("known: kpm"),
            "{text}"
        );
        assert!(
            text.contains("sources[2].name: 'quarantine' is a table terpadu itself provides"),
            "{text}"
        );
        assert_eq!(err.diagnostics().len(), 7, "{text}");
    }

    #[test]
    fn toml_syntax_errors_keep_line_and_column() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = write(dir.path(), "p.toml", "name = \"p\"\n[[sources]\n");
        let err = load_pipeline(&pipeline, &Overrides::default()).expect_err("invalid");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = write(dir.path(), "p.toml", "name = \"p\"\nworkspaces = \"x\"\n");
        let err = load_pipeline(&pipeline, &Overrides::default()).expect_err("invalid");
        assert!(
            err.to_string().contains("unknown field `workspaces`"),
            "{err}"
        );
    }
}
