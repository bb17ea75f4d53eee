//! The `[linkage]` section of a pipeline: blocking rules, comparisons and thresholds as data.
//!
//! ```toml
//! [linkage]
//! threshold = 0.95               # link pairs whose match probability is at least this
//! max_pairs_per_rule = 50000000  # refuse a blocking rule that would produce more pairs
//! term_frequency = true          # weigh agreement on common names and dates down
//! keep_versions = 5              # versions kept (now [store] keep_versions; still read)
//!
//! [[linkage.blocking]]           # when given, replaces the shipped rules
//! name = "same_nik"
//! keys = ["nik"]                 # SQL expressions over the records table
//!
//! [linkage.comparisons.sex]
//! enabled = false                # leave a comparison out of the match weight
//!
//! [linkage.comparisons.nik]
//! m = { exact = 0.95 }           # fix m or u of a level; the rest is estimated
//! ```
//! Every key is optional: an empty or absent section means the shipped defaults.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::Diagnostic;
use crate::link::blocking::BlockingRule;
use crate::link::gamma::COMPARISONS;

/// `[linkage]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLinkage {
    /// Link threshold (probability).
    pub threshold: Option<f64>,
    /// Cap on one blocking rule's pairs.
    pub max_pairs_per_rule: Option<u64>,
    /// Term-frequency adjustment on or off.
    pub term_frequency: Option<bool>,
    /// Registry versions kept.
    pub keep_versions: Option<usize>,
    /// Blocking rules replacing the shipped ones.
    #[serde(default)]
    pub blocking: Vec<RawBlockingRule>,
    /// Per-comparison settings, by comparison name.
    #[serde(default)]
    pub comparisons: BTreeMap<String, ComparisonSpec>,
}

/// A blocking rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlockingRule {
    /// Rule name, shown in counts and errors.
    pub name: String,
    /// SQL key expressions; records with equal, non-null keys form candidate pairs.
    pub keys: Vec<String>,
}

/// Settings of one comparison.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ComparisonSpec {
    /// False leaves the comparison out of the weights (every level weighs 0).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Fixed m by level code.
    #[serde(default)]
    pub m: BTreeMap<String, f64>,
    /// Fixed u by level code.
    #[serde(default)]
    pub u: BTreeMap<String, f64>,
}

fn yes() -> bool {
    true
}

/// The checked `[linkage]` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Linkage {
    /// Link threshold, if set.
    pub threshold: Option<f64>,
    /// Cap on one rule's pairs, if set.
    pub max_pairs_per_rule: Option<u64>,
    /// Term-frequency adjustment, if set.
    pub term_frequency: Option<bool>,
    /// Versions kept, if set.
    pub keep_versions: Option<usize>,
    /// Blocking rules (empty: the shipped defaults).
    pub blocking: Vec<BlockingRule>,
    /// Comparison settings by name.
    pub comparisons: BTreeMap<String, ComparisonSpec>,
}

impl RawLinkage {
    /// Checks names, level codes and ranges; every problem is reported with its key.
    pub fn validate(self, file: &Path, problems: &mut Vec<Diagnostic>) -> Linkage {
        let mut problem = |key: String, message: String| {
            problems.push(Diagnostic::new(file, key, message));
        };
        if let Some(t) = self.threshold
            && !(0.0..=1.0).contains(&t)
        {
            problem(
                "linkage.threshold".into(),
                format!("{t} is not a probability between 0 and 1 (0.95 is the default)"),
            );
        }
        if self.keep_versions == Some(0) {
            problem(
                "linkage.keep_versions".into(),
                "must be at least 1 (the current version)".into(),
            );
        }
        let mut seen = BTreeMap::new();
        for (i, rule) in self.blocking.iter().enumerate() {
            if let Some(first) = seen.insert(rule.name.clone(), i) {
                problem(
                    format!("linkage.blocking[{i}].name"),
                    format!(
                        "'{}' is already the name of linkage.blocking[{first}]",
                        rule.name
                    ),
                );
            }
            if rule.keys.is_empty() || rule.keys.iter().any(|k| k.trim().is_empty()) {
                problem(
                    format!("linkage.blocking[{i}].keys"),
                    "a rule needs at least one non-empty key expression, e.g. keys = [\"nik\"]"
                        .into(),
                );
            }
        }
        let names: Vec<&str> = COMPARISONS.iter().map(|c| c.name).collect();
        for (name, spec) in &self.comparisons {
            let Some(comparison) = COMPARISONS.iter().find(|c| c.name == name) else {
                problem(
                    format!("linkage.comparisons.{name}"),
                    format!("no comparison '{name}' (known: {})", names.join(", ")),
                );
                continue;
            };
            let levels = (comparison.levels)();
            for (which, values) in [("m", &spec.m), ("u", &spec.u)] {
                for (level, p) in values {
                    if !levels.contains(&level.as_str()) {
                        problem(
                            format!("linkage.comparisons.{name}.{which}.{level}"),
                            format!(
                                "'{name}' has no level '{level}' (levels: {})",
                                levels.join(", ")
                            ),
                        );
                    } else if !(*p > 0.0 && *p <= 1.0) {
                        problem(
                            format!("linkage.comparisons.{name}.{which}.{level}"),
                            format!("{p} is not a probability in (0, 1]"),
                        );
                    }
                }
            }
        }
        Linkage {
            threshold: self.threshold,
            max_pairs_per_rule: self.max_pairs_per_rule,
            term_frequency: self.term_frequency,
            keep_versions: self.keep_versions,
            blocking: self
                .blocking
                .into_iter()
                .map(|r| BlockingRule {
                    name: r.name,
                    keys: r.keys,
                })
                .collect(),
            comparisons: self.comparisons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (Linkage, Vec<String>) {
        let raw: RawLinkage = toml::from_str(text).expect("toml");
        let mut problems = Vec::new();
        let linkage = raw.validate(Path::new("p.toml"), &mut problems);
        (linkage, problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_full_section_is_read() {
        let (linkage, problems) = check(
            r#"
            threshold = 0.9
            term_frequency = false
            [[blocking]]
            name = "same_nik"
            keys = ["nik"]
            [comparisons.sex]
            enabled = false
            [comparisons.nik]
            m = { exact = 0.95 }
            u = { same_region_date_other_serial = 1.0 }
            "#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(linkage.threshold, Some(0.9));
        assert_eq!(linkage.blocking[0].keys, vec!["nik"]);
        assert!(!linkage.comparisons["sex"].enabled);
        assert_eq!(linkage.comparisons["nik"].m["exact"], 0.95);
    }

    #[test]
    fn mistakes_are_named_with_their_keys() {
        let (_, problems) = check(
            r#"
            threshold = 1.5
            keep_versions = 0
            [[blocking]]
            name = "a"
            keys = []
            [[blocking]]
            name = "a"
            keys = ["nik"]
            [comparisons.nama]
            enabled = false
            [comparisons.nik]
            m = { exakt = 0.9, exact = 0 }
            "#,
        );
        let all = problems.join("\n");
        for expected in [
            "linkage.threshold",
            "linkage.keep_versions",
            "linkage.blocking[0].keys",
            "linkage.blocking[1].name",
            "no comparison 'nama' (known: nik, name",
            "'nik' has no level 'exakt' (levels: exact,",
            "linkage.comparisons.nik.m.exact",
        ] {
            assert!(all.contains(expected), "{expected} in:\n{all}");
        }
    }
}
