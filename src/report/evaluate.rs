//! Report cases measured against the generator's ground truth: precision and recall of
//! within-program duplicates, exclusivity breaches (Jamsosratu with PKH, the rule the
//! generator plants), dead recipients and exclusion errors (welfare-registry families
//! receiving nothing).

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;

use crate::config::Pipeline;
use crate::config::pipeline::{ProgramUnit, SourceRole};
use crate::link::evaluate::Truth;
use crate::sql::{Session, SqlError};

/// One truth row: source row, true person, true family, noise kinds.
type TruthRow<'a> = (u64, &'a str, &'a str, &'a [String]);

/// Precision and recall of one report against truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseCounts {
    /// Cases (or case pairs) the report lists.
    pub predicted: u64,
    /// Cases truth holds.
    pub actual: u64,
    /// Listed and true.
    pub correct: u64,
}

impl CaseCounts {
    fn from_sets<T: std::hash::Hash + Eq>(predicted: &HashSet<T>, actual: &HashSet<T>) -> Self {
        CaseCounts {
            predicted: predicted.len() as u64,
            actual: actual.len() as u64,
            correct: predicted.intersection(actual).count() as u64,
        }
    }

    /// correct / predicted (1 when nothing is predicted).
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.correct as f64 / self.predicted as f64
        }
    }

    /// correct / actual (1 when nothing is true).
    pub fn recall(&self) -> f64 {
        if self.actual == 0 {
            1.0
        } else {
            self.correct as f64 / self.actual as f64
        }
    }
}

fn strings(batches: &[RecordBatch], column: usize) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let array = arrow::compute::cast(batch.column(column), &DataType::Utf8)
            .expect("every column casts to text");
        let array = array.as_string::<i32>();
        out.extend((0..array.len()).map(|i| array.is_valid(i).then(|| array.value(i).to_string())));
    }
    out
}

/// Evaluates the current reports; `None` entries are reports the run did not write.
pub async fn evaluate_reports(
    session: &Session,
    pipeline: &Pipeline,
    truth: &Truth,
) -> Result<BTreeMap<&'static str, CaseCounts>, SqlError> {
    let mut out = BTreeMap::new();
    let has_table = |name: &str| session.tables.iter().any(|t| t.name == name);
    let truth_of = |source: &str, row: u64| truth.get(&(source.to_string(), row));
    let program_sources: Vec<(&str, ProgramUnit, &str)> = pipeline
        .sources
        .iter()
        .filter(|s| s.role == SourceRole::Program)
        .filter_map(|s| {
            s.program
                .as_ref()
                .map(|p| (s.name.as_str(), p.unit, p.code.as_str()))
        })
        .collect();

    // Registry family -> true family, by the majority of its records.
    let rows = session
        .query("SELECT family_id, source, CAST(source_row AS VARCHAR) FROM record_link WHERE family_id IS NOT NULL")
        .await?;
    let (families, sources, source_rows) =
        (strings(&rows, 0), strings(&rows, 1), strings(&rows, 2));
    let mut votes: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for ((family, source), row) in families.iter().zip(&sources).zip(&source_rows) {
        let (Some(family), Some(source), Some(row)) = (family, source, row) else {
            continue;
        };
        if let Some((_, true_family, _)) = truth_of(source, row.parse().unwrap_or(0)) {
            *votes
                .entry(family.clone())
                .or_default()
                .entry(true_family.clone())
                .or_default() += 1;
        }
    }
    let true_family: HashMap<String, String> = votes
        .into_iter()
        .filter_map(|(family, counts)| {
            counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(t, _)| (family, t))
        })
        .collect();

    // True rows per program source.
    let mut by_source: HashMap<&str, Vec<TruthRow>> = HashMap::new();
    for ((source, row), (person, family, noise)) in truth {
        by_source.entry(source.as_str()).or_default().push((
            *row,
            person.as_str(),
            family.as_str(),
            noise.as_slice(),
        ));
    }

    // 1. Duplicates, as pairs of listings of one true unit in one program source.
    if has_table("report_duplicates") {
        let mut actual: HashSet<(String, u64, u64)> = HashSet::new();
        for (source, unit, _) in &program_sources {
            let mut groups: HashMap<&str, Vec<u64>> = HashMap::new();
            for (row, person, family, _) in by_source.get(source).into_iter().flatten() {
                let key = if *unit == ProgramUnit::Person {
                    *person
                } else {
                    *family
                };
                groups.entry(key).or_default().push(*row);
            }
            for rows in groups.values() {
                for (i, a) in rows.iter().enumerate() {
                    for b in &rows[i + 1..] {
                        actual.insert((source.to_string(), *a.min(b), *a.max(b)));
                    }
                }
            }
        }
        let cases = session
            .query("SELECT array_to_string(source_rows, ',') FROM report_duplicates")
            .await?;
        let mut predicted = HashSet::new();
        for case in strings(&cases, 0).into_iter().flatten() {
            let rows: Vec<(String, u64)> = case
                .split(',')
                .filter_map(|r| r.rsplit_once(':'))
                .map(|(s, r)| (s.to_string(), r.parse().unwrap_or(0)))
                .collect();
            for (i, a) in rows.iter().enumerate() {
                for b in &rows[i + 1..] {
                    if a.0 == b.0 {
                        predicted.insert((a.0.clone(), a.1.min(b.1), a.1.max(b.1)));
                    }
                }
            }
        }
        out.insert(
            "duplicates (row pairs)",
            CaseCounts::from_sets(&predicted, &actual),
        );
    }

    // 2. Breaches of "Jamsosratu is not for PKH families", as true families.
    let with_code = |code: &str| -> HashSet<&str> {
        program_sources
            .iter()
            .filter(|(_, _, c)| *c == code)
            .flat_map(|(s, _, _)| by_source.get(s).into_iter().flatten())
            .map(|(_, _, family, _)| *family)
            .collect()
    };
    if has_table("report_exclusivity_breaches") {
        let actual: HashSet<String> = with_code("JAMSOSRATU")
            .intersection(&with_code("PKH"))
            .map(|f| f.to_string())
            .collect();
        let cases = session
            .query(
                "SELECT unit_id FROM report_exclusivity_breaches WHERE rule = 'jamsosratu_not_pkh'",
            )
            .await?;
        let predicted: HashSet<String> = strings(&cases, 0)
            .into_iter()
            .flatten()
            .filter_map(|f| true_family.get(&f).cloned())
            .collect();
        out.insert(
            "breaches (families)",
            CaseCounts::from_sets(&predicted, &actual),
        );
    }

    // 3. Dead recipients, as program rows.
    if has_table("report_inclusion_errors") {
        let actual: HashSet<(String, u64)> = program_sources
            .iter()
            .flat_map(|(s, _, _)| {
                by_source
                    .get(s)
                    .into_iter()
                    .flatten()
                    .filter(|(_, _, _, noise)| noise.iter().any(|n| n == "recipient_dead"))
                    .map(move |(row, _, _, _)| (s.to_string(), *row))
            })
            .collect();
        let cases = session
            .query("SELECT source, CAST(source_row AS VARCHAR) FROM report_inclusion_errors WHERE category = 'dead'")
            .await?;
        let predicted: HashSet<(String, u64)> = strings(&cases, 0)
            .into_iter()
            .zip(strings(&cases, 1))
            .filter_map(|(s, r)| Some((s?, r?.parse().ok()?)))
            .collect();
        out.insert(
            "dead recipients (rows)",
            CaseCounts::from_sets(&predicted, &actual),
        );
    }

    // 4. Exclusion errors: welfare-registry families receiving nothing.
    if has_table("report_exclusion_errors") {
        let welfare: HashSet<&str> = pipeline
            .sources
            .iter()
            .filter(|s| s.role == SourceRole::WelfareRegistry)
            .flat_map(|s| by_source.get(s.name.as_str()).into_iter().flatten())
            .map(|(_, _, family, _)| *family)
            .collect();
        let receiving: HashSet<&str> = program_sources
            .iter()
            .flat_map(|(s, _, _)| by_source.get(s).into_iter().flatten())
            .map(|(_, _, family, _)| *family)
            .collect();
        let actual: HashSet<String> = welfare
            .difference(&receiving)
            .map(|f| f.to_string())
            .collect();
        let cases = session
            .query("SELECT DISTINCT unit_id FROM report_exclusion_errors WHERE receives_nothing AND unit = 'family'")
            .await?;
        let predicted: HashSet<String> = strings(&cases, 0)
            .into_iter()
            .flatten()
            .filter_map(|f| true_family.get(&f).cloned())
            .collect();
        out.insert(
            "exclusion errors (families)",
            CaseCounts::from_sets(&predicted, &actual),
        );
    }
    Ok(out)
}
