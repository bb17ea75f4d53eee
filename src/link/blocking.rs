//! Blocking: which record pairs are worth comparing at all.
//!
//! Comparing every record with every other is quadratic; blocking rules name keys that true
//! matches almost always share (same NIK; same 12-digit NIK prefix; same district and birth
//! date; same KK). Candidate pairs are the union, without duplicates, of the pairs each rule
//! produces. As Splink does, the cost of every rule is counted *before* any pair is made
//! ([`count_pairs`]), with its largest blocks, and a rule that would explode is refused with
//! its name ([`check_caps`]).
//!
//! Everything runs as DataFusion SQL over a registered records table, so the same plan can run
//! on a cluster later.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SessionContext};

/// A blocking rule: records that agree on every key become candidate pairs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    /// Rule name, used in counts and messages (`same_nik`, `district_birth_date`).
    pub name: String,
    /// SQL expressions over the records table, e.g. `["district_code", "birth_date"]` or
    /// `["substr(nik, 1, 12)"]`. Rows where any key is NULL join nothing under this rule.
    pub keys: Vec<String>,
}

/// What a rule would produce, counted before generating it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleCount {
    /// Rule name.
    pub rule: String,
    /// Pairs the rule produces on its own (n(n-1)/2 summed over blocks).
    pub pairs: u64,
    /// Number of blocks (distinct keys with at least one record).
    pub blocks: u64,
    /// The largest blocks: key values (joined with ` | `) and their sizes, largest first.
    pub largest: Vec<(String, u64)>,
}

/// Blocking errors.
#[derive(Debug, thiserror::Error)]
pub enum BlockingError {
    /// A rule would produce more pairs than allowed.
    #[error(
        "blocking rule '{rule}' would produce {pairs} pairs, above the limit of {cap}; its largest block is {largest} ({largest_size} records). Make the rule stricter (add a key) or raise max_pairs_per_rule"
    )]
    RuleExplodes {
        /// Rule name.
        rule: String,
        /// Pairs it would produce.
        pairs: u64,
        /// The configured limit.
        cap: u64,
        /// Key of its largest block.
        largest: String,
        /// Size of its largest block.
        largest_size: u64,
    },
    /// A rule without keys.
    #[error("blocking rule '{0}' has no keys")]
    NoKeys(String),
    /// The rule's SQL failed to plan or run.
    #[error("blocking rule '{rule}': {source}")]
    Query {
        /// Rule name.
        rule: String,
        /// DataFusion's error.
        source: DataFusionError,
    },
}

fn query_error(rule: &str) -> impl Fn(DataFusionError) -> BlockingError + '_ {
    move |source| BlockingError::Query {
        rule: rule.to_string(),
        source,
    }
}

/// `SELECT <keys> AS k0.. FROM table WHERE every key is not null` for one rule.
fn keyed_select(table: &str, id_column: Option<&str>, rule: &BlockingRule) -> String {
    let keys: Vec<String> = rule
        .keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("({k}) AS k{i}"))
        .collect();
    let not_null: Vec<String> = rule
        .keys
        .iter()
        .map(|k| format!("({k}) IS NOT NULL"))
        .collect();
    let id = id_column
        .map(|c| format!("{c} AS id, "))
        .unwrap_or_default();
    format!(
        "SELECT {id}{} FROM {table} WHERE {}",
        keys.join(", "),
        not_null.join(" AND ")
    )
}

/// Counts, for every rule, the pairs it would produce and its largest blocks, without
/// generating any pair.
pub async fn count_pairs(
    ctx: &SessionContext,
    table: &str,
    rules: &[BlockingRule],
    top: usize,
) -> Result<Vec<RuleCount>, BlockingError> {
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        if rule.keys.is_empty() {
            return Err(BlockingError::NoKeys(rule.name.clone()));
        }
        let err = query_error(&rule.name);
        let key_list: Vec<String> = (0..rule.keys.len()).map(|i| format!("k{i}")).collect();
        let blocks = format!(
            "SELECT concat_ws(' | ', {keys_text}) AS block, count(*) AS n FROM ({inner}) GROUP BY {keys}",
            keys_text = key_list
                .iter()
                .map(|k| format!("CAST({k} AS VARCHAR)"))
                .collect::<Vec<_>>()
                .join(", "),
            inner = keyed_select(table, None, rule),
            keys = key_list.join(", "),
        );
        let totals = format!(
            "SELECT CAST(COALESCE(sum(n * (n - 1) / 2), 0) AS BIGINT UNSIGNED) AS pairs, CAST(count(*) AS BIGINT UNSIGNED) AS blocks FROM ({blocks})"
        );
        let batches = ctx
            .sql(&totals)
            .await
            .map_err(&err)?
            .collect()
            .await
            .map_err(&err)?;
        let (pairs, block_count) = first_two_u64(&batches).map_err(&err)?;
        let largest_sql = format!(
            "SELECT block, CAST(n AS BIGINT UNSIGNED) AS n FROM ({blocks}) ORDER BY n DESC, block LIMIT {top}"
        );
        let batches = ctx
            .sql(&largest_sql)
            .await
            .map_err(&err)?
            .collect()
            .await
            .map_err(&err)?;
        let mut largest = Vec::new();
        for batch in &batches {
            let names = cast(batch.column(0), &DataType::Utf8)
                .map_err(DataFusionError::from)
                .map_err(&err)?;
            let names = names.as_string::<i32>();
            let sizes = batch.column(1).as_primitive::<UInt64Type>();
            for i in 0..batch.num_rows() {
                largest.push((names.value(i).to_string(), sizes.value(i)));
            }
        }
        out.push(RuleCount {
            rule: rule.name.clone(),
            pairs,
            blocks: block_count,
            largest,
        });
    }
    Ok(out)
}

fn first_two_u64(batches: &[RecordBatch]) -> Result<(u64, u64), DataFusionError> {
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| DataFusionError::Internal("pair count returned no row".into()))?;
    let a = batch.column(0).as_primitive::<UInt64Type>();
    let b = batch.column(1).as_primitive::<UInt64Type>();
    Ok((
        if a.is_null(0) { 0 } else { a.value(0) },
        if b.is_null(0) { 0 } else { b.value(0) },
    ))
}

/// Refuses the first rule whose pair count exceeds `cap`.
pub fn check_caps(counts: &[RuleCount], cap: u64) -> Result<(), BlockingError> {
    match counts.iter().find(|c| c.pairs > cap) {
        Some(c) => {
            let (largest, largest_size) = c.largest.first().cloned().unwrap_or_default();
            // Error messages reach logs and the run ledger: the key is shown masked.
            let largest = crate::redact::mask_key(&largest);
            Err(BlockingError::RuleExplodes {
                rule: c.rule.clone(),
                pairs: c.pairs,
                cap,
                largest,
                largest_size,
            })
        }
        None => Ok(()),
    }
}

/// The candidate pairs of all rules as a DataFrame `(left_id, right_id, rule)`, each pair once
/// (`left_id < right_id`), attributed to the first rule (in declaration order) that produced it.
pub async fn candidate_pairs(
    ctx: &SessionContext,
    table: &str,
    id_column: &str,
    rules: &[BlockingRule],
) -> Result<DataFrame, BlockingError> {
    let mut selects = Vec::with_capacity(rules.len());
    for (index, rule) in rules.iter().enumerate() {
        if rule.keys.is_empty() {
            return Err(BlockingError::NoKeys(rule.name.clone()));
        }
        let keyed = keyed_select(table, Some(id_column), rule);
        let on: Vec<String> = (0..rule.keys.len())
            .map(|i| format!("l.k{i} = r.k{i}"))
            .collect();
        selects.push(format!(
            "SELECT l.id AS left_id, r.id AS right_id, {index} AS rule_index FROM ({keyed}) l JOIN ({keyed}) r ON {} WHERE l.id < r.id",
            on.join(" AND ")
        ));
    }
    let names: Vec<String> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| format!("WHEN {i} THEN '{}'", r.name.replace('\'', "''")))
        .collect();
    let sql = format!(
        "SELECT left_id, right_id, CASE min(rule_index) {} END AS rule FROM ({}) GROUP BY left_id, right_id",
        names.join(" "),
        selects.join(" UNION ALL ")
    );
    let rule_name = rules.first().map_or("", |r| r.name.as_str());
    ctx.sql(&sql).await.map_err(query_error(rule_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{StringArray, UInt64Array};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use std::sync::Arc;

    /// Ten records: a family of four in one village (two twins share a birth date), two
    /// records of one person (same NIK), and strangers.
    async fn context() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("nik", DataType::Utf8, true),
            Field::new("district_code", DataType::Utf8, true),
            Field::new("birth_date", DataType::Utf8, true),
            Field::new("no_kk", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from((1..=10).collect::<Vec<u64>>())),
                Arc::new(StringArray::from(vec![
                    Some("3601011201900001"), // 1 father
                    Some("3601015205920001"), // 2 mother
                    Some("3601010101150001"), // 3 twin a
                    Some("3601010101150002"), // 4 twin b
                    Some("3601011201900001"), // 5 father again, other source
                    None,                     // 6 no NIK, father's birth date and district
                    Some("3602021111800001"), // 7 stranger
                    Some("3602021111800002"), // 8 stranger's neighbour, same day
                    None,                     // 9 no NIK, no district
                    Some("3603030303030003"), // 10 alone
                ])),
                Arc::new(StringArray::from(vec![
                    Some("360101"),
                    Some("360101"),
                    Some("360101"),
                    Some("360101"),
                    Some("360101"),
                    Some("360101"),
                    Some("360202"),
                    Some("360202"),
                    None,
                    Some("360303"),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("1990-01-12"),
                    Some("1992-05-12"),
                    Some("2015-01-01"),
                    Some("2015-01-01"),
                    Some("1990-01-12"),
                    Some("1990-01-12"),
                    Some("1980-11-11"),
                    Some("1980-11-11"),
                    Some("1990-01-12"),
                    Some("2003-03-03"),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("KK1"),
                    Some("KK1"),
                    Some("KK1"),
                    Some("KK1"),
                    None,
                    None,
                    Some("KK7"),
                    Some("KK8"),
                    None,
                    Some("KK10"),
                ])),
            ],
        )
        .expect("test batch");
        let ctx = SessionContext::new();
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("mem table");
        ctx.register_table("records", Arc::new(table))
            .expect("register");
        ctx
    }

    fn rules() -> Vec<BlockingRule> {
        let rule = |name: &str, keys: &[&str]| BlockingRule {
            name: name.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
        };
        vec![
            rule("same_nik", &["nik"]),
            rule("same_nik_prefix", &["substr(nik, 1, 12)"]),
            rule("district_birth_date", &["district_code", "birth_date"]),
            rule("same_kk", &["no_kk"]),
        ]
    }

    #[tokio::test]
    async fn pairs_are_counted_per_rule_before_generation() {
        let ctx = context().await;
        let counts = count_pairs(&ctx, "records", &rules(), 2)
            .await
            .expect("counts");
        let pairs: Vec<(&str, u64)> = counts.iter().map(|c| (c.rule.as_str(), c.pairs)).collect();
        // same_nik: {1,5}. prefix: {1,5}, {3,4} (twins), {7,8}. district+date: {1,5,6}, {3,4},
        // {7,8}. same_kk: {1,2,3,4} = 6 pairs.
        assert_eq!(
            pairs,
            vec![
                ("same_nik", 1),
                ("same_nik_prefix", 3),
                ("district_birth_date", 5),
                ("same_kk", 6),
            ]
        );
        let kk = &counts[3];
        assert_eq!(kk.largest[0], ("KK1".to_string(), 4));
        assert_eq!(kk.blocks, 4, "KK1, KK7, KK8, KK10");
        let district = &counts[2];
        assert_eq!(district.largest[0], ("360101 | 1990-01-12".to_string(), 3));
    }

    #[tokio::test]
    async fn candidate_pairs_are_unioned_once_with_the_first_rule() {
        let ctx = context().await;
        let frame = candidate_pairs(&ctx, "records", "id", &rules())
            .await
            .expect("plan");
        let batches = frame
            .sort_by(vec![
                datafusion::prelude::col("left_id"),
                datafusion::prelude::col("right_id"),
            ])
            .expect("sort")
            .collect()
            .await
            .expect("pairs");
        let mut got = Vec::new();
        for batch in &batches {
            let l = batch.column(0).as_primitive::<UInt64Type>();
            let r = batch.column(1).as_primitive::<UInt64Type>();
            let rule = cast(batch.column(2), &DataType::Utf8).expect("text");
            let rule = rule.as_string::<i32>();
            for i in 0..batch.num_rows() {
                got.push((l.value(i), r.value(i), rule.value(i).to_string()));
            }
        }
        let expected: Vec<(u64, u64, String)> = [
            (1, 2, "same_kk"),
            (1, 3, "same_kk"),
            (1, 4, "same_kk"),
            (1, 5, "same_nik"),
            (1, 6, "district_birth_date"),
            (2, 3, "same_kk"),
            (2, 4, "same_kk"),
            (3, 4, "same_nik_prefix"),
            (5, 6, "district_birth_date"),
            (7, 8, "same_nik_prefix"),
        ]
        .into_iter()
        .map(|(l, r, n)| (l, r, n.to_string()))
        .collect();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn an_exploding_rule_is_refused_by_name() {
        let ctx = context().await;
        let counts = count_pairs(&ctx, "records", &rules(), 1)
            .await
            .expect("counts");
        let err = check_caps(&counts, 5).expect_err("same_kk has 6 pairs");
        let text = err.to_string();
        assert!(
            text.contains("'same_kk' would produce 6 pairs, above the limit of 5"),
            "{text}"
        );
        // The key is personal data: shown masked, with the block's size.
        assert!(text.contains("K** (4 records)"), "{text}");
        assert!(check_caps(&counts, 6).is_ok());
    }
}
