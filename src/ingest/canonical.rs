//! terpadu's canonical person-record schema: what every staged Parquet file holds, whatever
//! the agency's own layout was.
//!
//! A layout (`schemas/*.toml`) maps agency columns onto the [`CanonicalField`]s; ingestion adds
//! the derived columns (cleaned NIK and KK with their status, normalised name, region codes and
//! names, quality flags) and the provenance columns. [`staged_schema`] declares the hand-off
//! schema once; later stages read staged Parquet against it.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// How a canonical field's raw text is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text, trimmed.
    Text,
    /// A 16-digit identifier (NIK or KK), cleaned and validated.
    Identifier,
    /// A person's name, normalised.
    Name,
    /// A date, parsed with the layout's formats.
    Date,
    /// A code mapped onto a closed set of canonical values.
    Code(&'static [&'static str]),
    /// Yes/no.
    Flag,
    /// A small whole number within bounds.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A separated list (program components such as `Ibu Hamil; Balita`).
    List,
}

/// Canonical values of `relationship` (STAT_HBKEL in the civil registry, Hub_KRT in DTKS).
pub const RELATIONSHIPS: &[&str] = &[
    "head",
    "spouse",
    "child",
    "child_in_law",
    "grandchild",
    "parent",
    "parent_in_law",
    "other_relative",
    "servant",
    "other",
];

/// A field of the canonical person record that a layout can fill from a source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CanonicalField {
    /// NIK (Nomor Induk Kependudukan), the 16-digit national identity number.
    Nik,
    /// KK (Kartu Keluarga) number, the 16-digit family card number.
    NoKk,
    /// Full name as written.
    FullName,
    /// Place of birth.
    BirthPlace,
    /// Date of birth.
    BirthDate,
    /// Sex: `M` or `F`.
    Sex,
    /// Relationship to the head of the family: see [`RELATIONSHIPS`].
    Relationship,
    /// Marital status: single, married, divorced, widowed.
    MaritalStatus,
    /// Street address.
    Address,
    /// RT (rukun tetangga), the neighbourhood unit.
    Rt,
    /// RW (rukun warga), the community unit above RT.
    Rw,
    /// Welfare decile (desil) 1-10 of the welfare registry; 1 is the poorest tenth.
    WelfareDecile,
    /// The welfare registry's household id (IDBDT in DTKS).
    HouseholdId,
    /// The welfare registry's member id (IDARTBDT in DTKS).
    MemberId,
    /// Life status: `alive` or `dead`.
    LifeStatus,
    /// Date of death.
    DeathDate,
    /// Program code when the source lists several programs (else the pipeline's).
    Program,
    /// Payment period or round (TAHAP), when it varies by row.
    Period,
    /// Who is paid on this row for a family program: head, spouse, mother, other.
    PayeeRole,
    /// A pregnant woman in the household (or this person is pregnant).
    Pregnant,
    /// Living with a disability.
    Disability,
    /// In school.
    InSchool,
    /// Program components, e.g. `Ibu Hamil; Balita`.
    Components,
    /// Free-text remark.
    Remark,
}

impl CanonicalField {
    /// Every field, in schema order.
    pub const ALL: [CanonicalField; 24] = [
        CanonicalField::Nik,
        CanonicalField::NoKk,
        CanonicalField::FullName,
        CanonicalField::BirthPlace,
        CanonicalField::BirthDate,
        CanonicalField::Sex,
        CanonicalField::Relationship,
        CanonicalField::MaritalStatus,
        CanonicalField::Address,
        CanonicalField::Rt,
        CanonicalField::Rw,
        CanonicalField::WelfareDecile,
        CanonicalField::HouseholdId,
        CanonicalField::MemberId,
        CanonicalField::LifeStatus,
        CanonicalField::DeathDate,
        CanonicalField::Program,
        CanonicalField::Period,
        CanonicalField::PayeeRole,
        CanonicalField::Pregnant,
        CanonicalField::Disability,
        CanonicalField::InSchool,
        CanonicalField::Components,
        CanonicalField::Remark,
    ];

    /// The key used in layouts and the staged column name (`nik`, `birth_date`...).
    pub fn key(self) -> &'static str {
        match self {
            CanonicalField::Nik => "nik",
            CanonicalField::NoKk => "no_kk",
            CanonicalField::FullName => "full_name",
            CanonicalField::BirthPlace => "birth_place",
            CanonicalField::BirthDate => "birth_date",
            CanonicalField::Sex => "sex",
            CanonicalField::Relationship => "relationship",
            CanonicalField::MaritalStatus => "marital_status",
            CanonicalField::Address => "address",
            CanonicalField::Rt => "rt",
            CanonicalField::Rw => "rw",
            CanonicalField::WelfareDecile => "welfare_decile",
            CanonicalField::HouseholdId => "household_id",
            CanonicalField::MemberId => "member_id",
            CanonicalField::LifeStatus => "life_status",
            CanonicalField::DeathDate => "death_date",
            CanonicalField::Program => "program",
            CanonicalField::Period => "period",
            CanonicalField::PayeeRole => "payee_role",
            CanonicalField::Pregnant => "pregnant",
            CanonicalField::Disability => "disability",
            CanonicalField::InSchool => "in_school",
            CanonicalField::Components => "components",
            CanonicalField::Remark => "remark",
        }
    }

    /// Finds a field by its layout key.
    pub fn from_key(key: &str) -> Option<CanonicalField> {
        CanonicalField::ALL.into_iter().find(|f| f.key() == key)
    }

    /// How the field's raw text is parsed.
    pub fn kind(self) -> FieldKind {
        match self {
            CanonicalField::Nik | CanonicalField::NoKk => FieldKind::Identifier,
            CanonicalField::FullName => FieldKind::Name,
            CanonicalField::BirthDate | CanonicalField::DeathDate => FieldKind::Date,
            CanonicalField::Sex => FieldKind::Code(&["M", "F"]),
            CanonicalField::Relationship => FieldKind::Code(RELATIONSHIPS),
            CanonicalField::MaritalStatus => {
                FieldKind::Code(&["single", "married", "divorced", "widowed"])
            }
            CanonicalField::LifeStatus => FieldKind::Code(&["alive", "dead"]),
            CanonicalField::PayeeRole => {
                FieldKind::Code(&["head", "spouse", "mother", "father", "self", "other"])
            }
            CanonicalField::WelfareDecile => FieldKind::Integer { min: 1, max: 10 },
            CanonicalField::Pregnant | CanonicalField::Disability | CanonicalField::InSchool => {
                FieldKind::Flag
            }
            CanonicalField::Components => FieldKind::List,
            CanonicalField::BirthPlace
            | CanonicalField::Address
            | CanonicalField::Rt
            | CanonicalField::Rw
            | CanonicalField::HouseholdId
            | CanonicalField::MemberId
            | CanonicalField::Program
            | CanonicalField::Period
            | CanonicalField::Remark => FieldKind::Text,
        }
    }

    /// Built-in code mapping used when a layout gives none (keys upper-case).
    pub fn default_codes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            CanonicalField::Sex => &[
                ("1", "M"),
                ("L", "M"),
                ("LK", "M"),
                ("LAKI-LAKI", "M"),
                ("LAKI LAKI", "M"),
                ("PRIA", "M"),
                ("M", "M"),
                ("2", "F"),
                ("P", "F"),
                ("PR", "F"),
                ("PEREMPUAN", "F"),
                ("WANITA", "F"),
                ("W", "F"),
                ("F", "F"),
            ],
            CanonicalField::LifeStatus => &[
                ("HIDUP", "alive"),
                ("ALIVE", "alive"),
                ("1", "alive"),
                ("MATI", "dead"),
                ("MENINGGAL", "dead"),
                ("MENINGGAL DUNIA", "dead"),
                ("DEAD", "dead"),
                ("2", "dead"),
            ],
            _ => &[],
        }
    }
}

/// Values read as true/false for [`FieldKind::Flag`] fields when a layout gives no codes.
pub const DEFAULT_TRUE: &[&str] = &["1", "Y", "YA", "TRUE", "YES", "ADA", "V", "X"];
/// See [`DEFAULT_TRUE`].
pub const DEFAULT_FALSE: &[&str] = &["0", "T", "N", "TIDAK", "FALSE", "NO", "TIDAK ADA", "-"];

/// Provenance and derived columns of the staged record, in order, before the canonical fields.
pub fn staged_schema(extra_columns: &[String]) -> SchemaRef {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
    let date = |name: &str| Field::new(name, DataType::Date32, true);
    let flag = |name: &str| Field::new(name, DataType::Boolean, true);
    let list = |name: &str| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )
    };
    let mut fields = vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_row", DataType::UInt64, false),
        // Identity
        utf8("nik"),
        utf8("nik_raw"),
        utf8("nik_status"),
        utf8("nik_known_prefix"),
        date("nik_birth_date"),
        utf8("nik_sex"),
        utf8("no_kk"),
        utf8("no_kk_raw"),
        utf8("no_kk_status"),
        utf8("full_name"),
        utf8("name"),
        list("name_titles"),
        utf8("name_patronymic"),
        flag("name_old_spelling"),
        utf8("birth_place"),
        date("birth_date"),
        utf8("birth_date_raw"),
        utf8("sex"),
        utf8("relationship"),
        utf8("marital_status"),
        // Where
        utf8("province_code"),
        utf8("regency_code"),
        utf8("district_code"),
        utf8("village_code"),
        utf8("province_name"),
        utf8("regency_name"),
        utf8("district_name"),
        utf8("village_name"),
        utf8("address"),
        utf8("rt"),
        utf8("rw"),
        // Welfare registry
        Field::new("welfare_decile", DataType::UInt8, true),
        utf8("household_id"),
        utf8("member_id"),
        // Life
        utf8("life_status"),
        date("death_date"),
        // Program
        utf8("program"),
        utf8("period"),
        utf8("program_unit"),
        utf8("payee_role"),
        flag("pregnant"),
        flag("disability"),
        flag("in_school"),
        list("components"),
        utf8("remark"),
        // Quality
        list("quality_flags"),
    ];
    for extra in extra_columns {
        fields.push(utf8(&extra_column_name(extra)));
    }
    Arc::new(Schema::new(fields))
}

/// The staged column name of a kept agency column: `extra_` + snake_case of its header.
pub fn extra_column_name(header: &str) -> String {
    let mut out = String::from("extra_");
    let mut last_underscore = true;
    for c in header.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            last_underscore = false;
        } else if !last_underscore {
            out.push('_');
            last_underscore = true;
        }
    }
    while out.ends_with('_') && out.len() > "extra_".len() {
        out.pop();
    }
    out
}

/// Schema of quarantine files: rows that could not be parsed at all, with the reason.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_row", DataType::UInt64, false),
        Field::new("reason_code", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, true),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_field_has_a_staged_column() {
        let schema = staged_schema(&[]);
        for field in CanonicalField::ALL {
            let name = field.key();
            // full_name is kept as written; the normalised key is `name`.
            assert!(
                schema.field_with_name(name).is_ok(),
                "staged schema lacks {name}"
            );
        }
        assert_eq!(
            CanonicalField::from_key("birth_date"),
            Some(CanonicalField::BirthDate)
        );
        assert_eq!(CanonicalField::from_key("birthdate"), None);
    }

    #[test]
    fn extra_columns_get_snake_case_names() {
        assert_eq!(extra_column_name("JENIS_PKRJN"), "extra_jenis_pkrjn");
        assert_eq!(extra_column_name("No. Kartu "), "extra_no_kartu");
        assert_eq!(extra_column_name("alamat.jalan"), "extra_alamat_jalan");
    }
}
