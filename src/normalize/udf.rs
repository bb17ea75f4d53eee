//! The normalisation functions as SQL functions, so planners use the same rules as ingestion:
//!
//! | function | returns |
//! |---|---|
//! | `nik_clean(text)` | the 16-digit NIK when it is readable, else NULL |
//! | `nik_status(text)` | `valid`, `missing`, `damaged` or `invalid` |
//! | `nik_birth_date(text)` | the birth date embedded in a NIK (women's day - 40) |
//! | `nik_sex(text)` | `M` / `F` from the NIK's day |
//! | `nik_district(text)` | the 6-digit district (kecamatan) of first registration |
//! | `normalize_name(text)` | the matching key of a name (titles, spellings, variants) |
//! | `mask_id(text)` | a NIK or KK masked for circulation: `3601********0001` |
//! | `mask_text(text)` | free text with every run of 10+ digits masked like a NIK |
//! | `mask_id_list(list)` | each NIK or KK of a list masked like `mask_id` |
//! | `region_name(code)` | the Kemendagri name of a region code |

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Builder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use chrono::Datelike;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::names::normalize_name;
use super::nik::{self, NikContext};
use super::region::region_index;

/// Which function a [`TextUdf`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TextFunction {
    NikClean,
    NikStatus,
    NikBirthDate,
    NikSex,
    NikDistrict,
    NormalizeName,
    MaskId,
    MaskText,
    RegionName,
}

impl TextFunction {
    fn name(self) -> &'static str {
        match self {
            TextFunction::NikClean => "nik_clean",
            TextFunction::NikStatus => "nik_status",
            TextFunction::NikBirthDate => "nik_birth_date",
            TextFunction::NikSex => "nik_sex",
            TextFunction::NikDistrict => "nik_district",
            TextFunction::NormalizeName => "normalize_name",
            TextFunction::MaskId => "mask_id",
            TextFunction::MaskText => "mask_text",
            TextFunction::RegionName => "region_name",
        }
    }

    fn return_type(self) -> DataType {
        match self {
            TextFunction::NikBirthDate => DataType::Date32,
            _ => DataType::Utf8,
        }
    }
}

/// A one-argument text function over Arrow string arrays.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextUdf {
    function: TextFunction,
    signature: Signature,
}

impl TextUdf {
    fn new(function: TextFunction) -> Self {
        TextUdf {
            function,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn context() -> NikContext<'static> {
    NikContext::new(chrono::Local::now().date_naive())
}

impl ScalarUDFImpl for TextUdf {
    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.function.return_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes exactly one argument", self.function.name());
        };
        let array = arg.to_array(args.number_rows)?;
        let text = cast(&array, &DataType::Utf8)?;
        let strings = text.as_string::<i32>();
        let out: ArrayRef = match self.function {
            TextFunction::NikBirthDate => {
                let ctx = context();
                let mut builder = Date32Builder::with_capacity(strings.len());
                for value in strings.iter() {
                    let date = value.and_then(|v| nik::parse_nik(v, &ctx).birth_date);
                    builder.append_option(date.map(|d| d.num_days_from_ce() - 719_163));
                }
                Arc::new(builder.finish())
            }
            function => {
                let ctx = context();
                let mut builder = StringBuilder::with_capacity(strings.len(), strings.len() * 16);
                for value in strings.iter() {
                    let Some(v) = value else {
                        builder.append_null();
                        continue;
                    };
                    let out: Option<String> = match function {
                        TextFunction::NikClean => nik::parse_nik(v, &ctx).nik,
                        TextFunction::NikStatus => {
                            Some(nik::parse_nik(v, &ctx).status.code().to_string())
                        }
                        TextFunction::NikSex => nik::parse_nik(v, &ctx)
                            .parts
                            .map(|p| p.sex.code().to_string()),
                        TextFunction::NikDistrict => {
                            nik::parse_nik(v, &ctx).parts.map(|p| p.district)
                        }
                        TextFunction::NormalizeName => {
                            Some(normalize_name(v).name).filter(|n| !n.is_empty())
                        }
                        TextFunction::MaskId => Some(nik::mask_id(v)),
                        TextFunction::MaskText => Some(crate::redact::mask_identifiers(v)),
                        TextFunction::RegionName => {
                            let code: String = v.chars().filter(|c| *c != '.').collect();
                            region_index().get(&code).map(|r| r.name.clone())
                        }
                        TextFunction::NikBirthDate => None,
                    };
                    builder.append_option(out);
                }
                Arc::new(builder.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// All of terpadu's SQL functions.
pub fn all() -> Vec<ScalarUDF> {
    [
        TextFunction::NikClean,
        TextFunction::NikStatus,
        TextFunction::NikBirthDate,
        TextFunction::NikSex,
        TextFunction::NikDistrict,
        TextFunction::NormalizeName,
        TextFunction::MaskId,
        TextFunction::MaskText,
        TextFunction::RegionName,
    ]
    .into_iter()
    .map(|f| ScalarUDF::new_from_impl(TextUdf::new(f)))
    .chain([ScalarUDF::new_from_impl(MaskIdList::default())])
    .collect()
}

/// `mask_id_list(list)`: every element of a list of NIKs or KKs masked like `mask_id`, the
/// list's shape (offsets, nulls) kept.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MaskIdList {
    signature: Signature,
}

impl Default for MaskIdList {
    fn default() -> Self {
        MaskIdList {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MaskIdList {
    fn name(&self) -> &str {
        "mask_id_list"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::List(_)] => Ok(DataType::new_list(DataType::Utf8, true)),
            _ => exec_err!("mask_id_list takes one list of text"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use arrow::array::ListArray;
        use arrow::datatypes::Field;
        let [arg] = args.args.as_slice() else {
            return exec_err!("mask_id_list takes exactly one argument");
        };
        let array = arg.to_array(args.number_rows)?;
        let Some(list) = array.as_list_opt::<i32>() else {
            return exec_err!("mask_id_list takes one list of text");
        };
        let values = cast(list.values(), &DataType::Utf8)?;
        let masked: arrow::array::StringArray = values
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(nik::mask_id))
            .collect();
        let out = ListArray::try_new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            list.offsets().clone(),
            Arc::new(masked),
            list.nulls().cloned(),
        )?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// True if `array` has any non-null value (helper for tests).
#[cfg(test)]
fn non_null(array: &dyn Array) -> usize {
    array.len() - array.null_count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn functions_run_in_sql() {
        let ctx = SessionContext::new();
        for udf in all() {
            ctx.register_udf(udf);
        }
        let batch = ctx
            .sql(
                "SELECT nik_clean('''3601 0152 0585 0001') AS a, nik_status('3.60101E+15') AS b, \
                 CAST(nik_birth_date('3601015205850001') AS VARCHAR) AS c, nik_sex('3601015205850001') AS d, \
                 normalize_name('Hj. Siti Aminah, S.Pd') AS e, mask_id('3601015205850001') AS f, \
                 region_name('36.01') AS g",
            )
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let row = &batch[0];
        let text = |i: usize| {
            let column = cast(row.column(i), &DataType::Utf8).expect("castable to text");
            column
                .as_any()
                .downcast_ref::<StringArray>()
                .map(|a| a.value(0).to_string())
                .expect("string column")
        };
        assert_eq!(text(0), "3601015205850001");
        assert_eq!(text(1), "damaged");
        assert_eq!(text(2), "1985-05-12");
        assert_eq!(text(3), "F");
        assert_eq!(text(4), "SITI AMINAH");
        assert_eq!(text(5), "3601********0001");
        assert_eq!(text(6), "Kabupaten Pandeglang");
        assert_eq!(non_null(row.column(0).as_ref()), 1);
    }
}
