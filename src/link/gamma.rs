//! The comparison kernel: pairs of records (as Arrow columns) -> one level index per comparison.
//!
//! Blocking joins each candidate pair with its two records, giving a batch with `l_<column>`
//! and `r_<column>` for every compared column. [`gamma_batch`] walks those arrays once and
//! writes one `UInt8` column per comparison (`gamma_nik`, `gamma_name`, ...) holding the
//! [`Level::index`] of the level reached (0 = strongest, the last = missing). This is the
//! hand-written hot loop of linkage: no configuration lookups, string matching on column
//! names or allocations per pair beyond what the comparison functions need.
//!
//! The set of comparisons is fixed here for now ([`COMPARISONS`]); declaring them in the
//! pipeline comes with the model configuration.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, RecordBatch, StringArray, UInt8Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use chrono::NaiveDate;

use super::compare::{
    DateLevel, ExactLevel, Level, NameLevel, NikLevel, NikValue, RegionLevel, compare_dates,
    compare_exact, compare_names, compare_nik, compare_region,
};

/// One comparison of the kernel: its name and the staged columns it reads on each side.
#[derive(Debug, Clone, Copy)]
pub struct ComparisonDef {
    /// Comparison name; the output column is `gamma_<name>`.
    pub name: &'static str,
    /// Staged columns read from each record.
    pub columns: &'static [&'static str],
    /// Level codes, strongest first (the index is the gamma value).
    pub levels: fn() -> Vec<&'static str>,
    /// The same levels in words, for explanations.
    pub labels: fn() -> Vec<&'static str>,
}

fn codes<L: Level>() -> Vec<&'static str> {
    L::all().iter().map(|l| l.code()).collect()
}

fn labels<L: Level>() -> Vec<&'static str> {
    L::all().iter().map(|l| l.label()).collect()
}

/// The comparisons computed for every candidate pair.
pub const COMPARISONS: [ComparisonDef; 6] = [
    ComparisonDef {
        name: "nik",
        columns: &["nik", "nik_known_prefix"],
        levels: codes::<NikLevel>,
        labels: labels::<NikLevel>,
    },
    ComparisonDef {
        name: "name",
        columns: &["name"],
        levels: codes::<NameLevel>,
        labels: labels::<NameLevel>,
    },
    ComparisonDef {
        name: "birth_date",
        columns: &["birth_date"],
        levels: codes::<DateLevel>,
        labels: labels::<DateLevel>,
    },
    ComparisonDef {
        name: "sex",
        columns: &["sex"],
        levels: codes::<ExactLevel>,
        labels: labels::<ExactLevel>,
    },
    ComparisonDef {
        name: "no_kk",
        columns: &["no_kk"],
        levels: codes::<ExactLevel>,
        labels: labels::<ExactLevel>,
    },
    ComparisonDef {
        name: "region",
        columns: &[
            "province_code",
            "regency_code",
            "district_code",
            "village_code",
        ],
        levels: codes::<RegionLevel>,
        labels: labels::<RegionLevel>,
    },
];

/// Every `l_`/`r_` input column the kernel needs, in a stable order.
pub fn input_columns() -> Vec<String> {
    let mut out = Vec::new();
    for side in ["l_", "r_"] {
        for def in &COMPARISONS {
            for column in def.columns {
                out.push(format!("{side}{column}"));
            }
        }
    }
    out
}

/// Schema of the kernel's output: one `UInt8` gamma column per comparison.
pub fn gamma_schema() -> SchemaRef {
    Arc::new(Schema::new(
        COMPARISONS
            .iter()
            .map(|c| Field::new(format!("gamma_{}", c.name), DataType::UInt8, false))
            .collect::<Vec<_>>(),
    ))
}

/// Text columns of one side, cast to `Utf8` once per batch.
struct Side {
    columns: Vec<ArrayRef>,
    birth_date: Date32Array,
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, ArrowError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("the pair batch lacks column {name}")))?;
    cast(column, &DataType::Utf8)
}

fn side(batch: &RecordBatch, prefix: &str) -> Result<Side, ArrowError> {
    let mut columns = Vec::new();
    for def in &COMPARISONS {
        for column in def.columns {
            if *column != "birth_date" {
                columns.push(text_column(batch, &format!("{prefix}{column}"))?);
            }
        }
    }
    let name = format!("{prefix}birth_date");
    let date = batch
        .column_by_name(&name)
        .ok_or_else(|| ArrowError::SchemaError(format!("the pair batch lacks column {name}")))?;
    let birth_date = cast(date, &DataType::Date32)?
        .as_primitive::<arrow::datatypes::Date32Type>()
        .clone();
    Ok(Side {
        columns,
        birth_date,
    })
}

fn text(array: &ArrayRef, row: usize) -> Option<&str> {
    let strings: &StringArray = array.as_string::<i32>();
    (!strings.is_null(row)).then(|| strings.value(row))
}

fn date(array: &Date32Array, row: usize) -> Option<NaiveDate> {
    if array.is_null(row) {
        return None;
    }
    NaiveDate::from_num_days_from_ce_opt(array.value(row) + 719_163)
}

/// Computes the gamma columns of a batch of pairs (see the module doc for the input).
pub fn gamma_batch(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let l = side(batch, "l_")?;
    let r = side(batch, "r_")?;
    let n = batch.num_rows();
    let mut out: Vec<Vec<u8>> = (0..COMPARISONS.len())
        .map(|_| Vec::with_capacity(n))
        .collect();
    // Column positions inside `Side::columns` (birth_date excluded), in COMPARISONS order.
    const NIK: usize = 0;
    const PREFIX: usize = 1;
    const NAME: usize = 2;
    const SEX: usize = 3;
    const KK: usize = 4;
    const REGION: usize = 5;
    for row in 0..n {
        out[0].push(level_index(compare_nik(
            &nik_value(&l, row, NIK, PREFIX),
            &nik_value(&r, row, NIK, PREFIX),
        )));
        let name = match (text(&l.columns[NAME], row), text(&r.columns[NAME], row)) {
            (Some(a), Some(b)) => compare_names(a, b),
            _ => NameLevel::Missing,
        };
        out[1].push(level_index(name));
        out[2].push(level_index(compare_dates(
            date(&l.birth_date, row),
            date(&r.birth_date, row),
        )));
        out[3].push(level_index(compare_exact(
            text(&l.columns[SEX], row),
            text(&r.columns[SEX], row),
        )));
        let kk = compare_exact(text(&l.columns[KK], row), text(&r.columns[KK], row));
        out[4].push(level_index(kk));
        // A shared KK implies a shared address: the region is then not evidence of its own.
        let place = if kk == ExactLevel::Exact {
            RegionLevel::Missing
        } else {
            compare_region(region(&l, row, REGION), region(&r, row, REGION))
        };
        out[5].push(level_index(place));
    }
    let arrays: Vec<ArrayRef> = out
        .into_iter()
        .map(|values| Arc::new(UInt8Array::from(values)) as ArrayRef)
        .collect();
    RecordBatch::try_new(gamma_schema(), arrays)
}

fn nik_value(side: &Side, row: usize, nik: usize, prefix: usize) -> NikValue<'_> {
    NikValue {
        nik: text(&side.columns[nik], row),
        known_prefix: text(&side.columns[prefix], row),
    }
}

fn region(side: &Side, row: usize, first: usize) -> [Option<&str>; 4] {
    [0, 1, 2, 3].map(|i| text(&side.columns[first + i], row))
}

fn level_index<L: Level>(level: L) -> u8 {
    // Level enums have fewer than ten variants.
    u8::try_from(level.index()).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::names::normalize_name;

    /// One pair: (column, left value, right value) for each of the ten input columns.
    type Pair<'a> = [(&'a str, Option<&'a str>, Option<&'a str>); 10];

    /// A pair batch from (column, left, right) text triples; birth dates as ISO text.
    fn pairs(rows: &[Pair<'_>]) -> RecordBatch {
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (side, pick) in [("l_", 0usize), ("r_", 1usize)] {
            for (i, (column, _, _)) in rows[0].iter().enumerate() {
                let values: Vec<Option<String>> = rows
                    .iter()
                    .map(|r| {
                        let (_, a, b) = r[i];
                        let v = if pick == 0 { a } else { b };
                        v.map(|s| {
                            if *column == "name" {
                                normalize_name(s).name
                            } else {
                                s.to_string()
                            }
                        })
                    })
                    .collect();
                let strings = Arc::new(StringArray::from(values)) as ArrayRef;
                let (field, array) = if *column == "birth_date" {
                    (
                        Field::new(format!("{side}{column}"), DataType::Date32, true),
                        cast(&strings, &DataType::Date32).expect("dates"),
                    )
                } else {
                    (
                        Field::new(format!("{side}{column}"), DataType::Utf8, true),
                        strings,
                    )
                };
                fields.push(field);
                arrays.push(array);
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("pair batch")
    }

    #[test]
    fn the_kernel_writes_the_level_of_every_comparison() {
        let same_person = [
            ("nik", Some("3601015205850001"), None),
            ("nik_known_prefix", None, Some("36010152058500")),
            ("name", Some("Hj. Siti Aminah"), Some("SITI AMINAH, S.Pd")),
            ("birth_date", Some("1985-05-12"), Some("1985-12-05")),
            ("sex", Some("F"), Some("F")),
            ("no_kk", Some("3601011203100001"), None),
            ("province_code", Some("36"), Some("36")),
            ("regency_code", Some("3601"), Some("3601")),
            ("district_code", Some("360101"), Some("360101")),
            ("village_code", Some("3601012001"), Some("3601012002")),
        ];
        let twins = [
            ("nik", Some("3601010101150001"), Some("3601010101150002")),
            ("nik_known_prefix", None, None),
            ("name", Some("Ahmad"), Some("Ahmad Fauzi")),
            ("birth_date", Some("2015-01-01"), Some("2015-01-01")),
            ("sex", Some("M"), Some("M")),
            ("no_kk", Some("KK1"), Some("KK1")),
            ("province_code", Some("36"), Some("36")),
            ("regency_code", Some("3601"), Some("3601")),
            ("district_code", Some("360101"), Some("360101")),
            ("village_code", Some("3601012001"), Some("3601012001")),
        ];
        let gammas = gamma_batch(&pairs(&[same_person, twins])).expect("kernel");
        let column = |name: &str| {
            gammas
                .column_by_name(name)
                .expect("gamma column")
                .as_primitive::<arrow::datatypes::UInt8Type>()
                .values()
                .to_vec()
        };
        assert_eq!(
            column("gamma_nik"),
            vec![
                NikLevel::SpreadsheetCompatible.index() as u8,
                NikLevel::SameRegionDateOtherSerial.index() as u8
            ]
        );
        assert_eq!(column("gamma_name")[0], NameLevel::Exact.index() as u8);
        assert_eq!(
            column("gamma_birth_date"),
            vec![
                DateLevel::DayMonthSwapped.index() as u8,
                // 1 Jan is a placeholder: even an exact agreement is weak evidence.
                compare_dates(
                    NaiveDate::from_ymd_opt(2015, 1, 1),
                    NaiveDate::from_ymd_opt(2015, 1, 1)
                )
                .index() as u8
            ]
        );
        assert_eq!(column("gamma_sex"), vec![0, 0]);
        assert_eq!(
            column("gamma_no_kk"),
            vec![
                ExactLevel::Missing.index() as u8,
                ExactLevel::Exact.index() as u8
            ]
        );
        assert_eq!(
            column("gamma_region"),
            vec![
                RegionLevel::SameDistrict.index() as u8,
                // One KK, one address: the village is not counted a second time.
                RegionLevel::Missing.index() as u8
            ]
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("l_nik", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![Some("1")])) as ArrayRef],
        )
        .expect("batch");
        let err = gamma_batch(&batch).expect_err("incomplete");
        assert!(
            err.to_string().contains("lacks column l_nik_known_prefix"),
            "{err}"
        );
    }

    #[test]
    fn every_comparison_has_levels_and_inputs() {
        assert_eq!(gamma_schema().fields().len(), COMPARISONS.len());
        for def in &COMPARISONS {
            assert!((def.levels)().len() >= 3, "{}", def.name);
        }
        assert_eq!(input_columns().len(), 2 * 10);
    }
}
