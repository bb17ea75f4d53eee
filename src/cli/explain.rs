//! `terpadu explain`: why records were linked into a person, or not, level by level.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, UInt32Type, UInt64Type};

use super::{EXIT_FAILED, EXIT_OK};
use crate::link::gamma::COMPARISONS;
use crate::link::model::Model;
use crate::normalize::nik::mask_id;
use crate::registry;
use crate::sql::Session;

pub(super) const LONG_ABOUT: &str = "\
Explain, in words, why records were linked into one person, and which near misses were not.

WHAT is one of:
  <source>:<row>   a staged record, e.g. pkh:12 (the row number in the source file)
  a 16-digit NIK   every person holding records with that NIK
  a person id      e.g. P000000042

For each person it prints the registry's view (best NIK, name and the variants seen, birth
date, family, programs), then each record with the link that placed it: the record it was
linked to, the probability, and each comparison's level with the weight it added (bits of
evidence: positive for agreement, negative against). Then the strongest candidate pairs that
were NOT linked (below the threshold, or refused because two civil-registry records have
different NIKs), so a wrong split can be understood too.

NIK and KK numbers are masked unless --unmasked is given (which is logged).

Examples:
  terpadu explain pipelines/sample.toml pkh:12
  terpadu explain pipelines/sample.toml 3601014906820001 --unmasked
  terpadu explain pipelines/sample.toml P000000042";

/// Arguments of `terpadu explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// What to explain: <source>:<row>, a NIK, or a person id.
    #[arg(value_name = "WHAT")]
    what: String,

    /// Near misses shown per person.
    #[arg(long, default_value_t = 5, value_name = "N")]
    near_misses: usize,

    /// Show NIK and KK numbers in full (logged).
    #[arg(long)]
    unmasked: bool,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

/// What the user asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Record(String, u64),
    Nik(String),
    Person(String),
}

fn parse_target(what: &str) -> Result<Target, String> {
    let what = what.trim();
    if let Some((source, row)) = what.rsplit_once(':') {
        let row = row
            .parse()
            .map_err(|_| format!("'{row}' in '{what}' is not a row number"))?;
        return Ok(Target::Record(source.to_string(), row));
    }
    if what.len() == 16 && what.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Target::Nik(what.to_string()));
    }
    if what.starts_with('P') && what[1..].bytes().all(|b| b.is_ascii_digit()) && what.len() > 1 {
        return Ok(Target::Person(what.to_string()));
    }
    Err(format!(
        "'{what}' is neither <source>:<row> (pkh:12), a 16-digit NIK, nor a person id (P000000042)"
    ))
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(super) fn run(args: Args) -> Result<u8> {
    let (_, workspace) = super::pipeline_and_workspace(&args.pipeline, args.workspace.clone())?;
    let target = parse_target(&args.what).map_err(anyhow::Error::msg)?;
    if args.unmasked {
        crate::ops::ledger::record_unmasked(
            &workspace,
            "explain --unmasked",
            std::path::Path::new("stdout"),
        );
    }
    let runtime = super::runtime()?;
    let snapshot = runtime.block_on(registry::pin_registry(&workspace))?;
    let model: Model = snapshot
        .document("model")
        .context("the current version has no model; run `terpadu link` again")?;
    let meta = registry::read_meta(&snapshot)?;
    let out = runtime.block_on(async {
        let session =
            Session::open_snapshot(&snapshot, datafusion::prelude::SessionConfig::new()).await?;
        let filter = match &target {
            Target::Record(source, row) => format!(
                "person_id IN (SELECT person_id FROM record_link WHERE source = {} AND source_row = {row})",
                quote(source)
            ),
            Target::Nik(nik) => format!(
                "person_id IN (SELECT person_id FROM record_link WHERE nik = {n} \
                 UNION SELECT person_id FROM person WHERE nik = {n})",
                n = quote(nik)
            ),
            Target::Person(id) => format!("person_id = {}", quote(id)),
        };
        let persons = session
            .query(&format!(
                "SELECT person_id, nik, full_name, name_variants, birth_date, sex, family_id, \
                 no_kk, village_name, district_name, regency_name, life_status, death_date, \
                 welfare_decile, programs, sources FROM person WHERE {filter} ORDER BY person_id"
            ))
            .await?;
        let records = session
            .query(&format!(
                "SELECT * FROM record_link WHERE {filter} ORDER BY person_id, rid"
            ))
            .await?;
        let rids: Vec<u32> = records
            .iter()
            .flat_map(|b| {
                b.column_by_name("rid")
                    .and_then(|c| arrow::compute::cast(c, &DataType::UInt32).ok())
                    .map(|c| c.as_primitive::<UInt32Type>().values().to_vec())
                    .unwrap_or_default()
            })
            .collect();
        let misses = if rids.is_empty() {
            Vec::new()
        } else {
            let list = rids
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(",");
            session
                .query(&format!(
                    "SELECT p.*, a.person_id AS left_person, b.person_id AS right_person, \
                       a.source AS left_source, a.source_row AS left_row, \
                       b.source AS right_source, b.source_row AS right_row \
                     FROM match_pairs p \
                       JOIN record_link a ON p.left_rid = a.rid \
                       JOIN record_link b ON p.right_rid = b.rid \
                     WHERE (p.left_rid IN ({list}) OR p.right_rid IN ({list})) \
                       AND a.person_id <> b.person_id \
                     ORDER BY p.match_probability DESC, p.left_rid, p.right_rid"
                ))
                .await?
        };
        anyhow::Ok(render(
            &persons,
            &records,
            &misses,
            &model,
            meta.threshold,
            args.near_misses,
            !args.unmasked,
        ))
    })?;
    if out.trim().is_empty() {
        eprintln!(
            "terpadu: nothing in workspace version {} matches '{}'",
            meta.version,
            crate::redact::mask_identifiers(&args.what)
        );
        return Ok(EXIT_FAILED);
    }
    print!("{out}");
    Ok(EXIT_OK)
}

/// `" (F, born 1974-11-14)"`, leaving out what is unknown.
fn describe(sex: &str, birth: &str) -> String {
    let mut parts = Vec::new();
    if !sex.is_empty() {
        parts.push(sex.to_string());
    }
    if !birth.is_empty() {
        parts.push(format!("born {birth}"));
    }
    if parts.is_empty() {
        " (birth date unknown)".to_string()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn or_unknown(text: String) -> String {
    if text.is_empty() {
        "unknown".into()
    } else {
        text
    }
}

/// Reads cell `row` of column `name` as text ("" when null or absent).
fn cell(batch: &RecordBatch, name: &str, row: usize) -> String {
    let Some(column) = batch.column_by_name(name) else {
        return String::new();
    };
    if column.is_null(row) {
        return String::new();
    }
    match column.data_type() {
        DataType::UInt64 => column.as_primitive::<UInt64Type>().value(row).to_string(),
        DataType::Int64 => column
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(row)
            .to_string(),
        DataType::Float64 => column.as_primitive::<Float64Type>().value(row).to_string(),
        _ => arrow::util::display::array_value_to_string(column, row).unwrap_or_default(),
    }
}

fn f64_cell(batch: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    let column = batch.column_by_name(name)?;
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Float64 => Some(column.as_primitive::<Float64Type>().value(row)),
        DataType::Float32 => Some(f64::from(column.as_primitive::<Float32Type>().value(row))),
        _ => None,
    }
}

/// The level words and weights of one pair, from its `<comparison>_level` columns.
fn waterfall(batch: &RecordBatch, row: usize, model: &Model, tf_weight: f64, out: &mut String) {
    let _ = writeln!(
        out,
        "        {:+7.2}  prior: the chance that two records picked at random are the same person",
        model.prior_weight()
    );
    for (k, comparison) in COMPARISONS.iter().enumerate() {
        let code = cell(batch, &format!("{}_level", comparison.name), row);
        let codes = (comparison.levels)();
        let labels = (comparison.labels)();
        let Some(level) = codes.iter().position(|c| *c == code) else {
            continue;
        };
        let weight = model.bayes_factor(k, level as u8).log2();
        let _ = writeln!(
            out,
            "        {weight:+7.2}  {}: {}",
            comparison.name.replace('_', " "),
            labels[level]
        );
    }
    if tf_weight != 0.0 {
        let _ = writeln!(
            out,
            "        {tf_weight:+7.2}  how common the agreeing name or birth date is (term frequency)"
        );
    }
}

fn render(
    persons: &[RecordBatch],
    records: &[RecordBatch],
    misses: &[RecordBatch],
    model: &Model,
    threshold: f64,
    near_misses: usize,
    masked: bool,
) -> String {
    let mask = |id: String| {
        if masked && !id.is_empty() {
            mask_id(&id)
        } else {
            id
        }
    };
    let mut out = String::new();
    let mut shown_misses: HashMap<String, usize> = HashMap::new();
    for batch in persons {
        for row in 0..batch.num_rows() {
            let person = cell(batch, "person_id", row);
            let _ = writeln!(
                out,
                "Person {person}: {}{}, NIK {}",
                cell(batch, "full_name", row),
                describe(&cell(batch, "sex", row), &cell(batch, "birth_date", row)),
                or_unknown(mask(cell(batch, "nik", row)))
            );
            let _ = writeln!(out, "  names seen   {}", cell(batch, "name_variants", row));
            let _ = writeln!(
                out,
                "  lives in     {}, {}, {}",
                cell(batch, "village_name", row),
                cell(batch, "district_name", row),
                cell(batch, "regency_name", row)
            );
            let _ = writeln!(
                out,
                "  family       {} (KK {})",
                cell(batch, "family_id", row),
                mask(cell(batch, "no_kk", row))
            );
            let death = cell(batch, "death_date", row);
            let _ = writeln!(
                out,
                "  status       {}{}; welfare decile {}",
                or_unknown(cell(batch, "life_status", row)),
                if death.is_empty() {
                    String::new()
                } else {
                    format!(" (died {death})")
                },
                or_unknown(cell(batch, "welfare_decile", row))
            );
            let _ = writeln!(out, "  programs     {}", cell(batch, "programs", row));
            let _ = writeln!(out, "  records");
            for records in records {
                for r in 0..records.num_rows() {
                    if cell(records, "person_id", r) != person {
                        continue;
                    }
                    let _ = writeln!(
                        out,
                        "    {}:{}  {}{}, NIK {} ({})",
                        cell(records, "source", r),
                        cell(records, "source_row", r),
                        cell(records, "full_name", r),
                        describe("", &cell(records, "birth_date", r)),
                        or_unknown(mask(cell(records, "nik", r))),
                        cell(records, "nik_status", r),
                    );
                    match f64_cell(records, "match_probability", r) {
                        Some(p) => {
                            let _ = writeln!(
                                out,
                                "      linked to {}:{} with probability {p:.6} (match weight {:.2} bits, threshold {threshold}):",
                                cell(records, "linked_to_source", r),
                                cell(records, "linked_to_row", r),
                                f64_cell(records, "match_weight", r).unwrap_or(0.0),
                            );
                            let tf = f64_cell(records, "tf_weight", r).unwrap_or(0.0);
                            waterfall(records, r, model, tf, &mut out);
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "      not linked to any other record: the only record of this person"
                            );
                        }
                    }
                }
            }
            let _ = writeln!(out, "  near misses (candidate pairs not linked)");
            let mut any = false;
            for batch in misses {
                for m in 0..batch.num_rows() {
                    let (left, right) = (
                        cell(batch, "left_person", m),
                        cell(batch, "right_person", m),
                    );
                    if left != person && right != person {
                        continue;
                    }
                    let shown = shown_misses.entry(person.clone()).or_default();
                    if *shown >= near_misses {
                        continue;
                    }
                    *shown += 1;
                    any = true;
                    let p = f64_cell(batch, "match_probability", m).unwrap_or(0.0);
                    let why = if p >= threshold {
                        "above the threshold, but refused: the two persons hold civil-registry records with different NIKs"
                    } else {
                        "below the threshold"
                    };
                    let _ = writeln!(
                        out,
                        "    {}:{} ({left}) and {}:{} ({right}): probability {p:.6}, {why}",
                        cell(batch, "left_source", m),
                        cell(batch, "left_row", m),
                        cell(batch, "right_source", m),
                        cell(batch, "right_row", m),
                    );
                    let tf = f64_cell(batch, "tf_weight", m).unwrap_or(0.0);
                    waterfall(batch, m, model, tf, &mut out);
                }
            }
            if !any {
                let _ = writeln!(out, "    none");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_parsed_or_explained() {
        assert_eq!(parse_target("pkh:12"), Ok(Target::Record("pkh".into(), 12)));
        assert_eq!(
            parse_target("3601014906820001"),
            Ok(Target::Nik("3601014906820001".into()))
        );
        assert_eq!(
            parse_target("P000000042"),
            Ok(Target::Person("P000000042".into()))
        );
        let err = parse_target("pkh:twelve").expect_err("not a row");
        assert!(err.contains("not a row number"), "{err}");
        let err = parse_target("SITI").expect_err("not a target");
        assert!(err.contains("<source>:<row>"), "{err}");
    }
}
