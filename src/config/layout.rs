//! Source layouts (`schemas/*.toml`): how one agency's columns map onto the canonical record.
//!
//! ```toml
//! name = "dukcapil_biodata"
//! description = "Civil registry (Dukcapil) biodata extract"
//! keep = ["AGAMA"]                      # agency columns kept as-is (staged as extra_agama)
//!
//! [fields]
//! nik        = { column = "NIK" }
//! birth_date = { column = "TGL_LHR", formats = ["%d-%m-%Y"] }
//! sex        = { column = "JENIS_KLMIN", codes = { "1" = "M", "2" = "F" } }
//!
//! [region]
//! type = "code_parts"                   # or "codes", or "names"
//! province = "NO_PROP"
//! regency = "NO_KAB"
//! district = "NO_KEC"
//! village = "NO_KEL"
//! ```
//!
//! Column names match headers ignoring case, spaces and punctuation (`N I K` = `NIK`), and a
//! field may list `aliases` for headers that vary between deliveries. In JSON lines sources a
//! column is a dotted path into nested objects (`alamat.desa`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Diagnostic;
use crate::ingest::canonical::{CanonicalField, FieldKind, extra_column_name};
use crate::normalize::dates;

/// Most distinct agency columns one layout may read (readers track numeric cells in a
/// 64-bit mask per row).
pub const MAX_COLUMNS: usize = 64;

/// A layout file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayout {
    /// Layout name; must equal the file stem.
    pub name: String,
    /// What kind of extract this layout reads.
    #[serde(default)]
    pub description: String,
    /// Agency columns kept as-is in the staged data (as `extra_<snake_case>`).
    #[serde(default)]
    pub keep: Vec<String>,
    /// Canonical field -> how to read it.
    #[serde(default)]
    pub fields: BTreeMap<String, RawFieldSpec>,
    /// Where the record lives: codes, code parts, or names.
    pub region: Option<RegionSpec>,
}

/// How to read one canonical field, as written in a layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldSpec {
    /// The agency's column (header) or, for JSON lines, a dotted path.
    pub column: String,
    /// Other headers the same column has had in other deliveries.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Date formats (chrono strftime), tried in order; ISO `%Y-%m-%d` is always tried last.
    #[serde(default)]
    pub formats: Vec<String>,
    /// Code mapping from the agency's values to canonical values (keys match ignoring case).
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
    /// Separator of list fields (components); default `;`.
    pub separator: Option<String>,
}

/// Where a record lives, read one of three ways (`type = ...`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RegionSpec {
    /// Full Kemendagri codes per level, dotted or not (`36.01.01` or `360101`).
    Codes {
        /// Province code column.
        province: Option<String>,
        /// Regency/city code column.
        regency: Option<String>,
        /// District (kecamatan) code column.
        district: Option<String>,
        /// Village (desa/kelurahan) code column.
        village: Option<String>,
    },
    /// Each column holds only its level's own part (`36`, `1`, `1`, `2001`), zero-padded on read.
    CodeParts {
        /// Province part (2 digits).
        province: String,
        /// Regency part (2 digits).
        regency: String,
        /// District part (2 digits).
        district: String,
        /// Village part (4 digits).
        village: Option<String>,
    },
    /// Region names, resolved to codes level by level (`KAB. PANDEGLANG`, `Kec. Sumur`).
    Names {
        /// Province name column; without it the pipeline's `province` is used.
        province: Option<String>,
        /// Regency/city name column.
        regency: Option<String>,
        /// District name column.
        district: Option<String>,
        /// Village name column.
        village: Option<String>,
    },
}

impl RegionSpec {
    /// The columns this region spec reads, with their keys for diagnostics.
    pub fn columns(&self) -> Vec<(&'static str, &str)> {
        let (province, regency, district, village) = match self {
            RegionSpec::Codes {
                province,
                regency,
                district,
                village,
            }
            | RegionSpec::Names {
                province,
                regency,
                district,
                village,
            } => (
                province.as_deref(),
                regency.as_deref(),
                district.as_deref(),
                village.as_deref(),
            ),
            RegionSpec::CodeParts {
                province,
                regency,
                district,
                village,
            } => (
                Some(province.as_str()),
                Some(regency.as_str()),
                Some(district.as_str()),
                village.as_deref(),
            ),
        };
        [
            ("province", province),
            ("regency", regency),
            ("district", district),
            ("village", village),
        ]
        .into_iter()
        .filter_map(|(key, column)| column.map(|c| (key, c)))
        .collect()
    }
}

/// A checked field mapping.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// Which canonical field.
    pub field: CanonicalField,
    /// Header or dotted path.
    pub column: String,
    /// Alternative headers.
    pub aliases: Vec<String>,
    /// Date formats (date fields only).
    pub formats: Vec<String>,
    /// Upper-cased agency value -> canonical value (coded and flag fields).
    pub codes: BTreeMap<String, String>,
    /// List separator (list fields).
    pub separator: String,
}

/// A checked layout: every key known, every date pattern valid, every code target allowed.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Layout name.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// What kind of extract this layout reads.
    pub description: String,
    /// Field mappings in canonical order.
    pub fields: Vec<FieldSpec>,
    /// Region columns.
    pub region: Option<RegionSpec>,
    /// Kept agency columns.
    pub keep: Vec<String>,
}

impl Layout {
    /// The mapping of one canonical field, if the layout has it.
    pub fn field(&self, field: CanonicalField) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.field == field)
    }

    /// Every agency column the layout reads, with the key that reads it and whether it is
    /// required (field and region columns are; kept columns too).
    pub fn referenced_columns(&self) -> Vec<ColumnRef<'_>> {
        let mut out: Vec<ColumnRef<'_>> = self
            .fields
            .iter()
            .map(|f| ColumnRef {
                key: format!("fields.{}", f.field.key()),
                column: &f.column,
                aliases: &f.aliases,
            })
            .collect();
        if let Some(region) = &self.region {
            for (key, column) in region.columns() {
                out.push(ColumnRef {
                    key: format!("region.{key}"),
                    column,
                    aliases: &[],
                });
            }
        }
        for column in &self.keep {
            out.push(ColumnRef {
                key: "keep".to_string(),
                column,
                aliases: &[],
            });
        }
        out
    }
}

/// One agency column a layout reads.
#[derive(Debug, Clone)]
pub struct ColumnRef<'a> {
    /// Layout key that reads it (`fields.nik`, `region.village`, `keep`).
    pub key: String,
    /// Header or dotted path.
    pub column: &'a str,
    /// Alternative headers.
    pub aliases: &'a [String],
}

/// Header comparison key: upper case, letters and digits only (`No. K K` -> `NOKK`).
pub fn header_key(header: &str) -> String {
    header
        .chars()
        // A NUL is kept so `N\0I\0K` (UTF-16 read as bytes) never passes for `NIK`.
        .filter(|c| c.is_alphanumeric() || *c == '\0')
        .flat_map(char::to_uppercase)
        .collect()
}

impl RawLayout {
    /// Checks the layout, collecting every problem into `problems`.
    pub fn validate(self, file: &Path, problems: &mut Vec<Diagnostic>) -> Option<Layout> {
        let before = problems.len();
        let mut fail = |key: String, message: String| {
            problems.push(Diagnostic::new(file, key, message));
        };
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str())
            && stem != self.name
        {
            fail(
                "name".into(),
                format!(
                    "layout is named '{}' but its file is '{stem}.toml'; make them equal so pipelines can find it",
                    self.name
                ),
            );
        }
        if self.fields.is_empty() {
            fail(
                "fields".into(),
                "a layout must map at least one field (e.g. nik or full_name)".into(),
            );
        }
        let mut fields = Vec::new();
        for (key, raw) in self.fields {
            let Some(field) = CanonicalField::from_key(&key) else {
                let known: Vec<&str> = CanonicalField::ALL.iter().map(|f| f.key()).collect();
                fail(
                    format!("fields.{key}"),
                    format!("unknown field '{key}' (known: {})", known.join(", ")),
                );
                continue;
            };
            let path = format!("fields.{key}");
            for (i, column) in std::iter::once(&raw.column).chain(&raw.aliases).enumerate() {
                if header_key(column).is_empty() {
                    let key = if i == 0 {
                        format!("{path}.column")
                    } else {
                        format!("{path}.aliases[{}]", i - 1)
                    };
                    fail(
                        key,
                        format!("'{column}' has no letters or digits to match a header by"),
                    );
                }
            }
            let kind = field.kind();
            if !raw.formats.is_empty() && kind != FieldKind::Date {
                fail(
                    format!("{path}.formats"),
                    format!("formats only apply to date fields, and {key} is not one"),
                );
            }
            for (i, format) in raw.formats.iter().enumerate() {
                if let Err(message) = dates::check_format(format) {
                    fail(format!("{path}.formats[{i}]"), message);
                }
            }
            match kind {
                FieldKind::Code(allowed) => {
                    for (from, to) in &raw.codes {
                        if !allowed.contains(&to.as_str()) {
                            fail(
                                format!("{path}.codes.\"{from}\""),
                                format!(
                                    "'{to}' is not a value of {key} (allowed: {})",
                                    allowed.join(", ")
                                ),
                            );
                        }
                    }
                }
                FieldKind::Flag => {
                    for (from, to) in &raw.codes {
                        if to != "true" && to != "false" {
                            fail(
                                format!("{path}.codes.\"{from}\""),
                                format!("'{to}' must be \"true\" or \"false\""),
                            );
                        }
                    }
                }
                _ if !raw.codes.is_empty() => fail(
                    format!("{path}.codes"),
                    format!("codes only apply to coded and yes/no fields, and {key} is neither"),
                ),
                _ => {}
            }
            if raw.separator.as_deref().is_some_and(str::is_empty) {
                fail(
                    format!("{path}.separator"),
                    "separator must not be empty".into(),
                );
            }
            if raw.separator.is_some() && kind != FieldKind::List {
                fail(
                    format!("{path}.separator"),
                    format!("separator only applies to list fields (components), not {key}"),
                );
            }
            fields.push(FieldSpec {
                field,
                column: raw.column,
                aliases: raw.aliases,
                formats: raw.formats,
                codes: raw
                    .codes
                    .into_iter()
                    .map(|(k, v)| (k.trim().to_uppercase(), v))
                    .collect(),
                separator: raw.separator.unwrap_or_else(|| ";".to_string()),
            });
        }
        fields.sort_by_key(|f| f.field);
        if let Some(region) = &self.region {
            for (key, column) in region.columns() {
                if header_key(column).is_empty() {
                    fail(
                        format!("region.{key}"),
                        format!("'{column}' has no letters or digits to match a header by"),
                    );
                }
            }
        }
        let mut extras: BTreeMap<String, &str> = BTreeMap::new();
        for (i, column) in self.keep.iter().enumerate() {
            let name = extra_column_name(column);
            if header_key(column).is_empty() {
                fail(
                    format!("keep[{i}]"),
                    format!("'{column}' has no letters or digits to match a header by"),
                );
            } else if let Some(first) = extras.insert(name.clone(), column) {
                fail(
                    format!("keep[{i}]"),
                    format!("'{column}' and '{first}' would both be staged as {name}; keep one"),
                );
            }
        }
        let mut distinct: Vec<String> = fields
            .iter()
            .map(|f: &FieldSpec| header_key(&f.column))
            .chain(
                self.region
                    .iter()
                    .flat_map(|r| r.columns().into_iter().map(|(_, c)| header_key(c))),
            )
            .chain(self.keep.iter().map(|c| header_key(c)))
            .collect();
        distinct.sort();
        distinct.dedup();
        if distinct.len() > MAX_COLUMNS {
            fail(
                "fields".into(),
                format!(
                    "the layout reads {} distinct columns; at most {MAX_COLUMNS} are supported (drop some keep entries)",
                    distinct.len()
                ),
            );
        }
        (problems.len() == before).then(|| Layout {
            name: self.name,
            file: file.to_path_buf(),
            description: self.description,
            fields,
            region: self.region,
            keep: self.keep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (Option<Layout>, Vec<Diagnostic>) {
        let raw: RawLayout = toml::from_str(text).expect("test TOML parses");
        let mut problems = Vec::new();
        let layout = raw.validate(Path::new("schemas/test.toml"), &mut problems);
        (layout, problems)
    }

    #[test]
    fn a_good_layout_validates() {
        let (layout, problems) = check(
            r#"
            name = "test"
            keep = ["AGAMA"]
            [fields]
            nik = { column = "NIK" }
            birth_date = { column = "TGL_LHR", formats = ["%d-%m-%Y"] }
            sex = { column = "JK", codes = { "l" = "M", "p" = "F" } }
            [region]
            type = "code_parts"
            province = "NO_PROP"
            regency = "NO_KAB"
            district = "NO_KEC"
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let layout = layout.expect("valid layout");
        let sex = layout.field(CanonicalField::Sex).expect("sex mapped");
        assert_eq!(sex.codes.get("L").map(String::as_str), Some("M"));
        assert_eq!(layout.referenced_columns().len(), 7);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let (layout, problems) = check(
            r#"
            name = "other"
            [fields]
            nikk = { column = "NIK" }
            birth_date = { column = "TGL", formats = ["%d-%m", "%Q"] }
            sex = { column = "JK", codes = { "1" = "male" } }
            full_name = { column = "NAMA", formats = ["%d-%m-%Y"] }
            "#,
        );
        assert!(layout.is_none());
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let joined = text.join("\n");
        assert!(joined.contains("name: layout is named 'other'"), "{joined}");
        assert!(
            joined.contains("fields.nikk: unknown field 'nikk'"),
            "{joined}"
        );
        assert!(joined.contains("fields.birth_date.formats[0]"), "{joined}");
        assert!(joined.contains("fields.birth_date.formats[1]"), "{joined}");
        assert!(
            joined.contains("fields.sex.codes.\"1\": 'male' is not a value"),
            "{joined}"
        );
        assert!(joined.contains("fields.full_name.formats"), "{joined}");
        assert_eq!(problems.len(), 6, "{joined}");
    }

    #[test]
    fn headers_compare_ignoring_case_and_punctuation() {
        assert_eq!(header_key("N I K"), header_key("nik"));
        assert_eq!(header_key("No. Kartu Keluarga"), "NOKARTUKELUARGA");
    }
}
