//! Cleaning and validation of identifiers, names, dates and regions.
//!
//! Everything here is pure and per-value: ingestion calls it while building staged batches,
//! matching reuses it, and [`udf`] exposes the same functions to SQL. Problems that matching can
//! live with become [`QualityFlag`]s on the record instead of rejections.

pub mod dates;
pub mod names;
pub mod nik;
pub mod region;
pub mod udf;

/// Sex as recorded (jenis kelamin). Sources write it as 1/2, L/P (laki-laki/perempuan) or
/// LAKI-LAKI/PEREMPUAN; layouts map those codes to `M`/`F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// Male (laki-laki).
    Male,
    /// Female (perempuan).
    Female,
}

impl Sex {
    /// Canonical code stored in Parquet: `M` or `F`.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }

    /// Parses the canonical code `M` / `F`.
    pub fn from_code(code: &str) -> Option<Sex> {
        match code {
            "M" => Some(Sex::Male),
            "F" => Some(Sex::Female),
            _ => None,
        }
    }
}

/// A data-quality problem found on one record. Flags never reject a record: they travel with
/// it (staged column `quality_flags`) and are counted per source in the run manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum QualityFlag {
    /// No NIK at all (blank, `-`, `0`).
    NikMissing,
    /// The NIK needed cleaning (apostrophe, spaces, dots, dashes) but all 16 digits survived.
    NikCleaned,
    /// Not 16 digits after cleaning, and no spreadsheet damage explains it.
    NikWrongLength,
    /// Contains letters or other characters that are not separators.
    NikNonDigit,
    /// Written in scientific notation by a spreadsheet (`3.60101E+15`): trailing digits lost.
    NikScientific,
    /// 15 digits, or read from a numeric spreadsheet cell: the last digit is unreliable.
    NikLastDigitLost,
    /// The first six digits are no current or retired Kemendagri district.
    NikUnknownRegion,
    /// The region prefix is a retired code (valid for old NIKs; informational).
    NikRetiredRegion,
    /// Embedded birth date is impossible (day 32, month 13, women's day 72...).
    NikBadDate,
    /// Serial `0000`, which is never issued.
    NikSerialZero,
    /// Embedded birth date disagrees with the record's birth date.
    NikDateMismatch,
    /// Embedded sex (day + 40 for women) disagrees with the record's sex.
    NikSexMismatch,
    /// The NIK field holds the record's KK number.
    NikEqualsKk,
    /// No KK number.
    KkMissing,
    /// KK number is not 16 digits, or its region or issue date is impossible.
    KkInvalid,
    /// KK number damaged by a spreadsheet (scientific notation, 15 digits, numeric cell).
    KkDamaged,
    /// No name.
    NameMissing,
    /// No birth date.
    BirthDateMissing,
    /// A birth date was present but matched none of the layout's formats.
    BirthDateUnparsed,
    /// A registration placeholder (31 Dec before 2004, 1 Jul since, 1 Jan) or a survey `98`.
    BirthDatePlaceholder,
    /// Birth date after the run date.
    BirthDateFuture,
    /// Birth date before 1900, or age above 120.
    BirthDateImplausible,
    /// A coded value (sex, relationship, life status...) that the layout's mapping lacks.
    CodeUnmapped,
    /// Region code unknown to Kemendagri, or region name not resolved to a code.
    RegionUnknown,
    /// Region name matched several regions (e.g. two villages of one name in a district).
    RegionAmbiguous,
    /// A number (decile, date) that could not be parsed.
    ValueUnparsed,
    /// A spreadsheet cell held a formula with no saved result (a workbook written by a script
    /// and never opened in Excel): the value is unknown, not blank.
    FormulaWithoutValue,
    /// A value longer than [`MAX_PLAUSIBLE_VALUE_BYTES`]: no NIK, name or address is that
    /// long (a pasted document, a broken export). Kept whole; cut in XLSX reports.
    ValueTooLong,
}

/// The longest plausible staged value in bytes; longer ones are flagged `value_too_long`.
pub const MAX_PLAUSIBLE_VALUE_BYTES: usize = 1024;

impl QualityFlag {
    /// Every flag, in code order.
    pub const ALL: [QualityFlag; 28] = [
        QualityFlag::NikMissing,
        QualityFlag::NikCleaned,
        QualityFlag::NikWrongLength,
        QualityFlag::NikNonDigit,
        QualityFlag::NikScientific,
        QualityFlag::NikLastDigitLost,
        QualityFlag::NikUnknownRegion,
        QualityFlag::NikRetiredRegion,
        QualityFlag::NikBadDate,
        QualityFlag::NikSerialZero,
        QualityFlag::NikDateMismatch,
        QualityFlag::NikSexMismatch,
        QualityFlag::NikEqualsKk,
        QualityFlag::KkMissing,
        QualityFlag::KkInvalid,
        QualityFlag::KkDamaged,
        QualityFlag::NameMissing,
        QualityFlag::BirthDateMissing,
        QualityFlag::BirthDateUnparsed,
        QualityFlag::BirthDatePlaceholder,
        QualityFlag::BirthDateFuture,
        QualityFlag::BirthDateImplausible,
        QualityFlag::CodeUnmapped,
        QualityFlag::RegionUnknown,
        QualityFlag::RegionAmbiguous,
        QualityFlag::ValueUnparsed,
        QualityFlag::FormulaWithoutValue,
        QualityFlag::ValueTooLong,
    ];

    /// The snake_case code stored in Parquet and the manifest.
    pub fn code(self) -> &'static str {
        match self {
            QualityFlag::NikMissing => "nik_missing",
            QualityFlag::NikCleaned => "nik_cleaned",
            QualityFlag::NikWrongLength => "nik_wrong_length",
            QualityFlag::NikNonDigit => "nik_non_digit",
            QualityFlag::NikScientific => "nik_scientific",
            QualityFlag::NikLastDigitLost => "nik_last_digit_lost",
            QualityFlag::NikUnknownRegion => "nik_unknown_region",
            QualityFlag::NikRetiredRegion => "nik_retired_region",
            QualityFlag::NikBadDate => "nik_bad_date",
            QualityFlag::NikSerialZero => "nik_serial_zero",
            QualityFlag::NikDateMismatch => "nik_date_mismatch",
            QualityFlag::NikSexMismatch => "nik_sex_mismatch",
            QualityFlag::NikEqualsKk => "nik_equals_kk",
            QualityFlag::KkMissing => "kk_missing",
            QualityFlag::KkInvalid => "kk_invalid",
            QualityFlag::KkDamaged => "kk_damaged",
            QualityFlag::NameMissing => "name_missing",
            QualityFlag::BirthDateMissing => "birth_date_missing",
            QualityFlag::BirthDateUnparsed => "birth_date_unparsed",
            QualityFlag::BirthDatePlaceholder => "birth_date_placeholder",
            QualityFlag::BirthDateFuture => "birth_date_future",
            QualityFlag::BirthDateImplausible => "birth_date_implausible",
            QualityFlag::CodeUnmapped => "code_unmapped",
            QualityFlag::RegionUnknown => "region_unknown",
            QualityFlag::RegionAmbiguous => "region_ambiguous",
            QualityFlag::ValueUnparsed => "value_unparsed",
            QualityFlag::FormulaWithoutValue => "formula_without_value",
            QualityFlag::ValueTooLong => "value_too_long",
        }
    }
}

/// A small set of [`QualityFlag`]s, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QualityFlags(u32);

impl QualityFlags {
    /// No flags.
    pub const EMPTY: QualityFlags = QualityFlags(0);

    /// Adds a flag.
    pub fn insert(&mut self, flag: QualityFlag) {
        self.0 |= 1 << (flag as u8);
    }

    /// Removes a flag.
    pub fn remove(&mut self, flag: QualityFlag) {
        self.0 &= !(1 << (flag as u8));
    }

    /// True when `flag` is set.
    pub fn contains(self, flag: QualityFlag) -> bool {
        self.0 & (1 << (flag as u8)) != 0
    }

    /// Adds every flag of `other`.
    pub fn extend(&mut self, other: QualityFlags) {
        self.0 |= other.0;
    }

    /// True when no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set flags, in code order.
    pub fn iter(self) -> impl Iterator<Item = QualityFlag> {
        QualityFlag::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

impl FromIterator<QualityFlag> for QualityFlags {
    fn from_iter<I: IntoIterator<Item = QualityFlag>>(iter: I) -> Self {
        let mut flags = QualityFlags::EMPTY;
        for flag in iter {
            flags.insert(flag);
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_and_codes_are_unique() {
        let all: QualityFlags = QualityFlag::ALL.into_iter().collect();
        assert_eq!(all.iter().count(), QualityFlag::ALL.len());
        let mut codes: Vec<&str> = QualityFlag::ALL.iter().map(|f| f.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), QualityFlag::ALL.len());
        let mut some = QualityFlags::EMPTY;
        some.insert(QualityFlag::NikScientific);
        some.insert(QualityFlag::KkMissing);
        assert!(some.contains(QualityFlag::KkMissing));
        some.remove(QualityFlag::KkMissing);
        assert_eq!(
            some.iter().collect::<Vec<_>>(),
            vec![QualityFlag::NikScientific]
        );
    }
}
