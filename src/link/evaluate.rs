//! Measuring linkage against ground truth: pairwise precision, recall and F1, and cluster
//! accuracy, overall and broken down by source and by noise kind.
//!
//! A *pair* is two records placed in one cluster. Predicted pairs come from the linkage's
//! clusters, true pairs from the generator's truth file (`truth.csv`: source, source_row,
//! person_id, family_id, noise). Precision is the share of predicted pairs that are true (a
//! wrong merge hides a person); recall the share of true pairs that were found.
//!
//! Breakdowns count the pairs that involve at least one record of the source (or with the
//! noise kind), so "recall for nik_typo" answers: of the links a NIK typo put at risk, how many
//! survived.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One record as evaluated: its predicted cluster, its true person, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalRecord {
    /// Cluster the linkage put the record in.
    pub predicted: u64,
    /// The true person (from the truth file).
    pub truth: u64,
    /// Source name.
    pub source: String,
    /// Noise kinds the generator applied to this record.
    pub noise: Vec<String>,
    /// The record's NIK status (`valid`, `missing`, `damaged`, `invalid`).
    pub nik_status: String,
}

/// Pair counts from which the metrics follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCounts {
    /// Pairs in the same predicted cluster and the same true person.
    pub true_positive: u64,
    /// Pairs in the same predicted cluster.
    pub predicted: u64,
    /// Pairs of the same true person.
    pub actual: u64,
}

impl PairCounts {
    /// Predicted pairs that are true; 1 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.predicted)
    }

    /// True pairs that were predicted; 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.actual)
    }

    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// The full evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// All records.
    pub overall: PairCounts,
    /// Pairs touching each source.
    pub by_source: BTreeMap<String, PairCounts>,
    /// Pairs touching a record with each noise kind.
    pub by_noise: BTreeMap<String, PairCounts>,
    /// Pairs touching a record with each NIK status.
    pub by_nik_status: BTreeMap<String, PairCounts>,
    /// True persons whose records form exactly one predicted cluster holding nothing else.
    pub persons_exact: u64,
    /// True persons.
    pub persons: u64,
}

fn choose2(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Pairwise counts over all records (cluster sizes only, no pair enumeration).
pub fn pair_counts(records: &[EvalRecord]) -> PairCounts {
    let mut predicted: HashMap<u64, u64> = HashMap::new();
    let mut actual: HashMap<u64, u64> = HashMap::new();
    let mut both: HashMap<(u64, u64), u64> = HashMap::new();
    for r in records {
        *predicted.entry(r.predicted).or_default() += 1;
        *actual.entry(r.truth).or_default() += 1;
        *both.entry((r.predicted, r.truth)).or_default() += 1;
    }
    PairCounts {
        true_positive: both.values().map(|n| choose2(*n)).sum(),
        predicted: predicted.values().map(|n| choose2(*n)).sum(),
        actual: actual.values().map(|n| choose2(*n)).sum(),
    }
}

/// Evaluates clusters against truth, overall and per source and noise kind.
pub fn evaluate(records: &[EvalRecord]) -> Evaluation {
    let mut out = Evaluation {
        overall: pair_counts(records),
        ..Evaluation::default()
    };
    let mut by_predicted: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut by_truth: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        by_predicted.entry(r.predicted).or_default().push(i);
        by_truth.entry(r.truth).or_default().push(i);
    }
    // Each pair is attributed once to every source and noise kind it touches.
    let mut attribute = |a: &EvalRecord, b: &EvalRecord, add: &dyn Fn(&mut PairCounts)| {
        let mut sources: Vec<&str> = vec![&a.source, &b.source];
        sources.dedup();
        for source in sources {
            add(out.by_source.entry(source.to_string()).or_default());
        }
        let mut kinds: Vec<&String> = a.noise.iter().chain(&b.noise).collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            add(out.by_noise.entry(kind.clone()).or_default());
        }
        let mut statuses: Vec<&str> = vec![&a.nik_status, &b.nik_status];
        statuses.sort();
        statuses.dedup();
        for status in statuses {
            add(out.by_nik_status.entry(status.to_string()).or_default());
        }
    };
    for members in by_predicted.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                let (a, b) = (&records[i], &records[j]);
                let correct = a.truth == b.truth;
                attribute(a, b, &|c: &mut PairCounts| {
                    c.predicted += 1;
                    if correct {
                        c.true_positive += 1;
                    }
                });
            }
        }
    }
    for members in by_truth.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                attribute(&records[i], &records[j], &|c: &mut PairCounts| {
                    c.actual += 1
                });
            }
        }
    }
    out.persons = by_truth.len() as u64;
    out.persons_exact = by_truth
        .values()
        .filter(|members| {
            let cluster = records[members[0]].predicted;
            members.iter().all(|i| records[*i].predicted == cluster)
                && by_predicted
                    .get(&cluster)
                    .is_some_and(|p| p.len() == members.len())
        })
        .count() as u64;
    out
}

/// The generator's truth: `(source, source_row)` -> (person, family, noise kinds).
pub type Truth = HashMap<(String, u64), (String, String, Vec<String>)>;

/// Truth-file errors.
#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    /// The file could not be read.
    #[error("cannot read truth file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A line is malformed.
    #[error(
        "{path}, line {line}: {message} (expected source,source_row,person_id,family_id,noise)"
    )]
    Malformed {
        /// The file.
        path: String,
        /// Line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Reads a truth file as written by `terpadu sample`.
pub fn read_truth(path: &Path) -> Result<Truth, TruthError> {
    let shown = path.display().to_string();
    let mut reader = csv::Reader::from_path(path).map_err(|e| TruthError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let mut truth = Truth::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let malformed = |message: String| TruthError::Malformed {
            path: shown.clone(),
            line,
            message,
        };
        let record = record.map_err(|e| malformed(e.to_string()))?;
        if record.len() < 4 {
            return Err(malformed(format!("{} fields", record.len())));
        }
        let row: u64 = record[1]
            .parse()
            .map_err(|_| malformed(format!("source_row '{}' is not a number", &record[1])))?;
        let noise = record
            .get(4)
            .unwrap_or("")
            .split(';')
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        truth.insert(
            (record[0].to_string(), row),
            (record[2].to_string(), record[3].to_string(), noise),
        );
    }
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(predicted: u64, truth: u64, source: &str, noise: &[&str]) -> EvalRecord {
        EvalRecord {
            predicted,
            truth,
            source: source.into(),
            noise: noise.iter().map(|s| s.to_string()).collect(),
            nik_status: "valid".into(),
        }
    }

    #[test]
    fn perfect_clusters_score_one() {
        let records = vec![
            rec(1, 10, "dukcapil", &[]),
            rec(1, 10, "pkh", &[]),
            rec(2, 20, "dukcapil", &[]),
        ];
        let e = evaluate(&records);
        assert_eq!(
            e.overall,
            PairCounts {
                true_positive: 1,
                predicted: 1,
                actual: 1
            }
        );
        assert_eq!(
            (e.overall.precision(), e.overall.recall(), e.overall.f1()),
            (1.0, 1.0, 1.0)
        );
        assert_eq!((e.persons_exact, e.persons), (2, 2));
    }

    #[test]
    fn a_wrong_merge_costs_precision_and_a_missed_link_costs_recall() {
        // Person 10 has three records, found as {a, b} + {c}; person 20 was merged into {a, b}
        // (a wrong merge, through a typo'd NIK).
        let records = vec![
            rec(1, 10, "dukcapil", &[]),
            rec(1, 10, "pkh", &[]),
            rec(2, 10, "bpnt", &["name_typo"]),
            rec(1, 20, "pkh", &["nik_typo"]),
        ];
        let e = evaluate(&records);
        // Predicted pairs in cluster 1: (a,b) true, (a,d) false, (b,d) false.
        // True pairs of person 10: (a,b) found, (a,c) and (b,c) missed.
        assert_eq!(
            e.overall,
            PairCounts {
                true_positive: 1,
                predicted: 3,
                actual: 3
            }
        );
        assert!((e.overall.precision() - 1.0 / 3.0).abs() < 1e-12);
        assert!((e.overall.recall() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            e.by_noise["nik_typo"],
            PairCounts {
                true_positive: 0,
                predicted: 2,
                actual: 0
            }
        );
        assert_eq!(
            e.by_noise["name_typo"],
            PairCounts {
                true_positive: 0,
                predicted: 0,
                actual: 2
            }
        );
        // pkh touches (a,b) true, (a,d), (b,d) predicted; (a,b), (b,c) actual.
        assert_eq!(
            e.by_source["pkh"],
            PairCounts {
                true_positive: 1,
                predicted: 3,
                actual: 2
            }
        );
        assert_eq!((e.persons_exact, e.persons), (0, 2));
        // The enumerating breakdown agrees with the counting shortcut.
        assert_eq!(pair_counts(&records), e.overall);
    }

    #[test]
    fn the_truth_file_is_read_with_line_numbers_in_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("truth.csv");
        std::fs::write(
            &path,
            "source,source_row,person_id,family_id,noise\ndukcapil,2,P1,F1,\npkh,2,P1,F1,nik_typo;name_typo\n",
        )
        .expect("write");
        let truth = read_truth(&path).expect("truth");
        assert_eq!(
            truth[&("pkh".to_string(), 2)],
            (
                "P1".into(),
                "F1".into(),
                vec!["nik_typo".into(), "name_typo".into()]
            )
        );
        std::fs::write(
            &path,
            "source,source_row,person_id,family_id,noise\npkh,two,P1,F1,\n",
        )
        .expect("write");
        let err = read_truth(&path).expect_err("malformed");
        assert!(
            err.to_string()
                .contains("line 2: source_row 'two' is not a number"),
            "{err}"
        );
    }
}
