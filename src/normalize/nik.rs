//! NIK and KK numbers: cleaning, spreadsheet damage and structural validation.
//!
//! A **NIK** (Nomor Induk Kependudukan, the civil-registry number of a person) has 16 digits,
//! `PP RR CC DDMMYY SSSS`:
//!
//! - `PP RR CC`: province, regency or city, and district (kecamatan) of *first registration*,
//!   together the six-digit Kemendagri district code (see [`super::region`]). It does not
//!   change when the person moves. Codes retired by later splits (Papua, 2022) still stand in
//!   old NIKs.
//! - `DDMMYY`: the birth date, with **40 added to the day for women**: a woman born on
//!   12 May 1985 has `520585`, a man born that day `120585`. The two-digit year needs a
//!   century ([`resolve_century`]).
//! - `SSSS`: a serial within the twelve-digit prefix, starting at `0001` (`0000` is never
//!   issued).
//!
//! A **KK** (Kartu Keluarga, the family card number) has the same shape, with the card's issue
//! date (no +40) in place of the birth date. It changes when a family moves or splits.
//!
//! Neither number has a check digit, so validation is structural only: a known (current or
//! retired) district, a real date and a non-zero serial. A NIK that passes can still be someone
//! else's or mistyped; the cross-checks against the rest of the record (birth date, sex, KK
//! number) catch part of that, and they only add [`QualityFlag`]s.
//!
//! Spreadsheets damage these numbers before we see them: Excel keeps 15 significant digits, so
//! a 16-digit number read from a numeric cell ends in `0` whatever its last digit was; it
//! shows `3.60102E+15` for `3601015205850001`, *rounding* the last digit shown; exporters
//! append `.0`. People type leading apostrophes (Excel's text marker), spaces, dots and dashes.
//! [`clean_digits`] undoes what can be undone. A number whose digits were lost is
//! [`IdStatus::Damaged`] and keeps the digits known to be right as a prefix, so blocking and
//! matching can still use them: for scientific notation, the mantissa without its rounded last
//! digit (`3.60102E+15` -> `36010`).

use chrono::{Datelike, NaiveDate};

use super::region::{CodeStatus, region_index};
use super::{QualityFlag, QualityFlags, Sex};

/// Number of digits of a NIK or a KK number.
pub const ID_LEN: usize = 16;

/// Number of digits of the Kemendagri district code that opens a NIK or KK number.
pub const DISTRICT_LEN: usize = 6;

/// Significant digits Excel keeps in a numeric cell.
const EXCEL_DIGITS: usize = 15;

/// What is added to the day of birth in a woman's NIK.
const WOMEN_DAY_OFFSET: u8 = 40;

/// 2^53 as 16 digits: the largest integer a 64-bit float holds exactly. A numeric cell above it
/// (province 91 and up) can have lost its last digit even when that digit is not `0`.
const F64_EXACT_MAX: &str = "9007199254740992";

/// Words that sources write when there is no number (compared upper-cased, spaces collapsed).
const MISSING_WORDS: &[&str] = &[
    "NULL",
    "N/A",
    "#N/A",
    "NA",
    "NAN",
    "NONE",
    "NIL",
    "TIDAK ADA",
    "BELUM ADA",
    "KOSONG",
];

/// Outcome class of a NIK (also used for KK numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdStatus {
    /// Sixteen digits with a known district, a real date and a serial other than `0000`.
    Valid,
    /// No number at all: blank, `-`, `0`, or a word such as `NULL` or `TIDAK ADA`.
    Missing,
    /// A spreadsheet lost trailing digits; only a prefix is known (see `known_prefix`).
    Damaged,
    /// Readable but impossible: letters, wrong length, unknown district, impossible date or
    /// serial `0000`.
    Invalid,
}

impl IdStatus {
    /// The snake_case code stored in Parquet: `valid`, `missing`, `damaged` or `invalid`.
    pub fn code(self) -> &'static str {
        match self {
            IdStatus::Valid => "valid",
            IdStatus::Missing => "missing",
            IdStatus::Damaged => "damaged",
            IdStatus::Invalid => "invalid",
        }
    }
}

/// The parts embedded in a sixteen-digit NIK, as its digits say (even when they are
/// impossible, e.g. day 32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NikParts {
    /// Kemendagri district code of first registration: the first six digits, e.g. `360101`.
    pub district: String,
    /// Day of birth with the 40 for women removed (`52` gives 12).
    pub day: u32,
    /// Month of birth as written (1-12 when valid).
    pub month: u32,
    /// Two-digit year of birth, without century.
    pub yy: u32,
    /// Female when the written day is above 40, male otherwise.
    pub sex: Sex,
    /// The last four digits, 1-9999 when valid.
    pub serial: u32,
}

/// A NIK after cleaning and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedNik {
    /// The cleaned sixteen digits when all of them are trustworthy (status `Valid`, or
    /// `Invalid` with sixteen digits); `None` otherwise.
    pub nik: Option<String>,
    /// For `Damaged` only: the leading digits known to be right (the first 15 of a 15-digit or
    /// numeric-cell NIK; for `3.60102E+15` the mantissa without its rounded last digit, i.e.
    /// `36010`). `None` when no digit is certain (`4E+15`).
    pub known_prefix: Option<String>,
    /// Outcome class.
    pub status: IdStatus,
    /// Everything noticed: cleaning, damage, structural problems, cross-check disagreements.
    pub flags: QualityFlags,
    /// The embedded parts, for every sixteen-digit NIK (also `Invalid` ones).
    pub parts: Option<NikParts>,
    /// The embedded birth date with the century resolved; `None` when the date is impossible
    /// or the NIK has no sixteen trustworthy digits.
    pub birth_date: Option<NaiveDate>,
}

/// Context from the same record, used to resolve the century and to cross-check a NIK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NikContext<'a> {
    /// The record's own birth date, if any (after date parsing).
    pub birth_date: Option<NaiveDate>,
    /// The record's own sex, if any.
    pub sex: Option<Sex>,
    /// The record's cleaned KK number (e.g. [`ParsedKk::kk`]), if any.
    pub no_kk: Option<&'a str>,
    /// True when the value was read from a numeric spreadsheet cell (or a float column), so
    /// the last digit may have been lost.
    pub from_numeric_cell: bool,
    /// The run date: two-digit years that would lie after it are put in the 1900s.
    pub today: NaiveDate,
}

impl NikContext<'_> {
    /// A context with nothing known about the record but the run date.
    pub fn new(today: NaiveDate) -> Self {
        NikContext {
            birth_date: None,
            sex: None,
            no_kk: None,
            from_numeric_cell: false,
            today,
        }
    }
}

/// A KK (family card) number after cleaning and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKk {
    /// The cleaned sixteen digits when all of them are trustworthy, also when the structure is
    /// impossible (status `Invalid`), so that numbers can still be compared; `None` otherwise.
    pub kk: Option<String>,
    /// For `Damaged` only: the leading digits known to be right (as for [`ParsedNik`]).
    pub known_prefix: Option<String>,
    /// Outcome class.
    pub status: IdStatus,
    /// `KkMissing`, `KkDamaged` or `KkInvalid` when something is wrong; empty otherwise.
    pub flags: QualityFlags,
}

/// Result of the cleaning step shared by NIK and KK numbers ([`clean_digits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// Nothing there: blank, only separators, all zeros, or a "no value" word.
    Missing,
    /// Only ASCII digits remained.
    Digits {
        /// The digits, in order.
        digits: String,
        /// True when more than surrounding whitespace was removed (apostrophe, quotes, inner
        /// spaces, dots, dashes, a `.0` suffix, scientific notation written out in full).
        cleaned: bool,
        /// True when the text itself shows that the value went through a number (a `.0`
        /// suffix, thousands grouping `3.601.015.205.850.001`, or scientific notation with
        /// every digit): the last digit may have been lost, as for a numeric cell.
        numeric: bool,
    },
    /// Scientific notation that lost digits: `3.60101E+15`.
    Scientific {
        /// The significant digits shown (`360101`); the last one was rounded, so it is not
        /// known to be right (see [`ParsedNik::known_prefix`]).
        mantissa: String,
        /// How many digits the number had before the spreadsheet rounded it (16).
        digit_count: usize,
    },
    /// Characters that are neither digits nor separators (letters, slashes...).
    NonDigit,
}

/// Cleans a raw NIK or KK cell: trims whitespace, strips a leading apostrophe or backtick
/// (Excel's text marker) and surrounding quotes, removes spaces (also non-breaking), dots,
/// commas and dashes, reads scientific notation and a `.0` suffix, and recognises the ways
/// sources write "no value" (`-`, `0`, `NULL`, `N/A`, `TIDAK ADA`...).
pub fn clean_digits(raw: &str) -> Cleaned {
    let trimmed = raw.trim_matches(is_blank);
    let unquoted = trimmed
        .trim_start_matches(is_quote)
        .trim_end_matches(is_quote)
        .trim_matches(is_blank);
    let had_marker = unquoted.len() != trimmed.len();
    if unquoted.is_empty() || is_missing_word(unquoted) {
        return Cleaned::Missing;
    }
    if let Some(scientific) = read_scientific(unquoted) {
        return scientific;
    }
    if let Some(integer) = strip_zero_fraction(unquoted) {
        return digits_or_missing(integer.to_string(), true, true);
    }
    if let Some(digits) = join_thousands_groups(unquoted) {
        return digits_or_missing(digits, true, true);
    }
    let mut digits = String::with_capacity(unquoted.len());
    let mut removed = false;
    for c in unquoted.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if is_separator(c) {
            removed = true;
        } else {
            return Cleaned::NonDigit;
        }
    }
    digits_or_missing(digits, had_marker || removed, false)
}

/// Resolves the century of a two-digit birth year (`yy` is taken modulo 100). A year after
/// `today`'s year is never chosen.
///
/// With a record birth date whose year ends in `yy` and is not after `today`'s year, that
/// year wins. Otherwise, when `2000 + yy` is not in the future, the nearer of `1900 + yy` and
/// `2000 + yy` to the record's year wins. Without a record date (or on a tie), `2000 + yy`
/// unless that lies after `today`'s year, then `1900 + yy`.
pub fn resolve_century(yy: u32, record_birth: Option<NaiveDate>, today: NaiveDate) -> i32 {
    resolve_century_on(yy, None, record_birth, today)
}

/// [`resolve_century`] knowing the embedded day and month (`(day, month)`, the +40 removed):
/// a year whose full birth date would lie after `today` is not chosen either, so a NIK dated
/// 12-12-25 read on 30-06-2025 is from 1925. The day and month need not form a real date.
fn resolve_century_on(
    yy: u32,
    day_month: Option<(u32, u32)>,
    record_birth: Option<NaiveDate>,
    today: NaiveDate,
) -> i32 {
    let yy = i32::try_from(yy % 100).unwrap_or_default();
    let (early, late) = (1900 + yy, 2000 + yy);
    let future = |year: i32| {
        year > today.year()
            || (year == today.year()
                && day_month
                    .is_some_and(|(day, month)| (month, day) > (today.month(), today.day())))
    };
    if let Some(record) = record_birth {
        let year = record.year();
        if year.rem_euclid(100) == yy && !future(year) {
            return year;
        }
        // Only 2000 + yy can be in the future (for any run date after 1999); when it is, the
        // nearest candidate that is not is 1900 + yy, as below.
        if !future(late) {
            let (to_early, to_late) = (year.abs_diff(early), year.abs_diff(late));
            if to_early < to_late {
                return early;
            }
            if to_late < to_early {
                return late;
            }
        }
    }
    if future(late) { early } else { late }
}

/// Cleans and validates a NIK, then cross-checks it against the rest of the record.
///
/// Structural problems (unknown district, impossible date, serial `0000`) make it `Invalid`;
/// disagreements with the record (`NikDateMismatch`, `NikSexMismatch`, `NikEqualsKk`) only add
/// flags. The sex cross-check is skipped when the written day is neither 1-31 nor 41-71,
/// since such a day says nothing reliable about sex.
pub fn parse_nik(raw: &str, ctx: &NikContext) -> ParsedNik {
    let mut out = ParsedNik {
        nik: None,
        known_prefix: None,
        status: IdStatus::Invalid,
        flags: QualityFlags::EMPTY,
        parts: None,
        birth_date: None,
    };
    let (digits, fields) = match classify(raw, ctx.from_numeric_cell) {
        Shape::Missing => {
            out.status = IdStatus::Missing;
            out.flags.insert(QualityFlag::NikMissing);
            return out;
        }
        Shape::NonDigit => {
            out.flags.insert(QualityFlag::NikNonDigit);
            return out;
        }
        Shape::WrongLength { scientific } => {
            out.flags.insert(QualityFlag::NikWrongLength);
            if scientific {
                out.flags.insert(QualityFlag::NikScientific);
            }
            return out;
        }
        Shape::Damaged {
            known_prefix,
            scientific,
        } => {
            out.status = IdStatus::Damaged;
            out.flags.insert(if scientific {
                QualityFlag::NikScientific
            } else {
                QualityFlag::NikLastDigitLost
            });
            out.known_prefix = (!known_prefix.is_empty()).then_some(known_prefix);
            return out;
        }
        Shape::Full {
            digits,
            fields,
            cleaned,
        } => {
            if cleaned {
                out.flags.insert(QualityFlag::NikCleaned);
            }
            (digits, fields)
        }
    };

    match region_index().status(&fields.district) {
        CodeStatus::Current => {}
        CodeStatus::Retired => out.flags.insert(QualityFlag::NikRetiredRegion),
        CodeStatus::Unknown => out.flags.insert(QualityFlag::NikUnknownRegion),
    }
    let (sex, day) = if fields.day > WOMEN_DAY_OFFSET {
        (Sex::Female, fields.day - WOMEN_DAY_OFFSET)
    } else {
        (Sex::Male, fields.day)
    };
    let year = resolve_century_on(
        u32::from(fields.yy),
        Some((u32::from(day), u32::from(fields.month))),
        ctx.birth_date,
        ctx.today,
    );
    let embedded = NaiveDate::from_ymd_opt(year, u32::from(fields.month), u32::from(day));
    if embedded.is_none() {
        out.flags.insert(QualityFlag::NikBadDate);
    }
    if fields.serial == 0 {
        out.flags.insert(QualityFlag::NikSerialZero);
    }
    let structural = [
        QualityFlag::NikUnknownRegion,
        QualityFlag::NikBadDate,
        QualityFlag::NikSerialZero,
    ];
    out.status = if structural.iter().any(|f| out.flags.contains(*f)) {
        IdStatus::Invalid
    } else {
        IdStatus::Valid
    };

    if let (Some(embedded), Some(record)) = (embedded, ctx.birth_date)
        && embedded != record
    {
        out.flags.insert(QualityFlag::NikDateMismatch);
    }
    let sex_readable = (1..=31).contains(&fields.day) || (41..=71).contains(&fields.day);
    if sex_readable && ctx.sex.is_some_and(|record| record != sex) {
        out.flags.insert(QualityFlag::NikSexMismatch);
    }
    if ctx.no_kk.is_some_and(|kk| kk.trim() == digits) {
        out.flags.insert(QualityFlag::NikEqualsKk);
    }

    out.parts = Some(NikParts {
        district: fields.district,
        day: u32::from(day),
        month: u32::from(fields.month),
        yy: u32::from(fields.yy),
        sex,
        serial: fields.serial,
    });
    out.birth_date = embedded;
    out.nik = Some(digits);
    out
}

/// Cleans and validates a KK (family card) number.
///
/// Same cleaning and spreadsheet-damage rules as [`parse_nik`]. Structure: a current or
/// retired district, an issue date DDMMYY that exists (plain day, no +40; years `00`-`99` are
/// checked as 2000-2099, which gives the same leap years as 1901-1999), and a serial other
/// than `0000`. A structurally impossible KK keeps its digits in `kk`, so it can still be
/// compared with other records' KK numbers.
pub fn parse_kk(raw: &str, from_numeric_cell: bool) -> ParsedKk {
    let mut out = ParsedKk {
        kk: None,
        known_prefix: None,
        status: IdStatus::Invalid,
        flags: QualityFlags::EMPTY,
    };
    match classify(raw, from_numeric_cell) {
        Shape::Missing => {
            out.status = IdStatus::Missing;
            out.flags.insert(QualityFlag::KkMissing);
        }
        Shape::NonDigit | Shape::WrongLength { .. } => {
            out.flags.insert(QualityFlag::KkInvalid);
        }
        Shape::Damaged { known_prefix, .. } => {
            out.status = IdStatus::Damaged;
            out.flags.insert(QualityFlag::KkDamaged);
            out.known_prefix = (!known_prefix.is_empty()).then_some(known_prefix);
        }
        Shape::Full { digits, fields, .. } => {
            let region_known = region_index().status(&fields.district) != CodeStatus::Unknown;
            let issued = NaiveDate::from_ymd_opt(
                2000 + i32::from(fields.yy),
                u32::from(fields.month),
                u32::from(fields.day),
            );
            if region_known && issued.is_some() && fields.serial != 0 {
                out.status = IdStatus::Valid;
            } else {
                out.flags.insert(QualityFlag::KkInvalid);
            }
            out.kk = Some(digits);
        }
    }
    out
}

/// Masks an identifier for reports: a sixteen-digit NIK or KK keeps its first four and last
/// four digits (`3601********0001`); any other string keeps its first two characters and has
/// every other character replaced by `*`.
pub fn mask_id(id: &str) -> String {
    if id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_digit()) {
        let head = id.get(..4).unwrap_or_default();
        let tail = id.get(ID_LEN - 4..).unwrap_or_default();
        return format!("{head}********{tail}");
    }
    id.chars()
        .enumerate()
        .map(|(i, c)| if i < 2 { c } else { '*' })
        .collect()
}

/// What the cleaned text of a NIK or KK cell amounts to, before its structure is read.
enum Shape {
    Missing,
    NonDigit,
    WrongLength {
        scientific: bool,
    },
    Damaged {
        known_prefix: String,
        scientific: bool,
    },
    Full {
        digits: String,
        fields: Fields,
        cleaned: bool,
    },
}

/// The fields of a sixteen-digit NIK or KK, as written (the NIK's +40 not yet removed).
struct Fields {
    district: String,
    day: u8,
    month: u8,
    yy: u8,
    serial: u32,
}

fn classify(raw: &str, from_numeric_cell: bool) -> Shape {
    match clean_digits(raw) {
        Cleaned::Missing => Shape::Missing,
        Cleaned::NonDigit => Shape::NonDigit,
        Cleaned::Scientific {
            mantissa,
            digit_count,
        } => {
            if digit_count == ID_LEN || digit_count == EXCEL_DIGITS {
                Shape::Damaged {
                    known_prefix: rounded_mantissa_prefix(&mantissa).to_string(),
                    scientific: true,
                }
            } else {
                Shape::WrongLength { scientific: true }
            }
        }
        Cleaned::Digits {
            digits,
            cleaned,
            numeric,
        } => match digits.len() {
            ID_LEN if (numeric || from_numeric_cell) && last_digit_unreliable(&digits) => {
                match digits.get(..EXCEL_DIGITS) {
                    Some(prefix) => Shape::Damaged {
                        known_prefix: prefix.to_string(),
                        scientific: false,
                    },
                    None => Shape::NonDigit,
                }
            }
            ID_LEN => match read_fields(&digits) {
                Some(fields) => Shape::Full {
                    digits,
                    fields,
                    cleaned,
                },
                None => Shape::NonDigit,
            },
            EXCEL_DIGITS => Shape::Damaged {
                known_prefix: digits,
                scientific: false,
            },
            _ => Shape::WrongLength { scientific: false },
        },
    }
}

/// The leading digits of a rounded mantissa that are certain. Excel (and any exporter printing
/// fewer digits) rounds the last digit shown, so it is dropped: `360102` (from `3.60102E+15`,
/// NIK `3601015205850001`) gives `36010`. A shown `0` may come from rounding up a `...9`,
/// which borrows from the digits before it (`3601011201899.7` shows as `3601011201900`), so
/// then the zeros before it and the digit they follow go too: `3601011201900` gives
/// `3601011201`. Empty when no digit is certain (`4`).
fn rounded_mantissa_prefix(mantissa: &str) -> &str {
    let Some(kept) = mantissa.get(..mantissa.len().saturating_sub(1)) else {
        return "";
    };
    if !mantissa.ends_with('0') {
        return kept;
    }
    let trimmed = kept.trim_end_matches('0');
    trimmed
        .get(..trimmed.len().saturating_sub(1))
        .unwrap_or_default()
}

/// A sixteen-digit number that went through a spreadsheet or a float: Excel turns the
/// sixteenth digit into `0`, and a float cannot hold every integer above 2^53.
fn last_digit_unreliable(digits: &str) -> bool {
    digits.ends_with('0') || (digits.len() == F64_EXACT_MAX.len() && digits > F64_EXACT_MAX)
}

fn read_fields(digits: &str) -> Option<Fields> {
    let bytes: &[u8; ID_LEN] = digits.as_bytes().try_into().ok()?;
    let mut values = [0u8; ID_LEN];
    for (value, byte) in values.iter_mut().zip(bytes) {
        if !byte.is_ascii_digit() {
            return None;
        }
        *value = byte - b'0';
    }
    let [_, _, _, _, _, _, d1, d2, m1, m2, y1, y2, s1, s2, s3, s4] = values;
    Some(Fields {
        district: digits.get(..DISTRICT_LEN)?.to_string(),
        day: d1 * 10 + d2,
        month: m1 * 10 + m2,
        yy: y1 * 10 + y2,
        serial: u32::from(s1) * 1000 + u32::from(s2) * 100 + u32::from(s3) * 10 + u32::from(s4),
    })
}

fn digits_or_missing(digits: String, cleaned: bool, numeric: bool) -> Cleaned {
    // Also catches "" (only separators) and "0" / "0000000000000000" placeholders.
    if digits.bytes().all(|b| b == b'0') {
        Cleaned::Missing
    } else {
        Cleaned::Digits {
            digits,
            cleaned,
            numeric,
        }
    }
}

/// Whitespace (including the non-breaking spaces spreadsheets paste) and invisible
/// zero-width characters.
fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
        )
}

/// Excel's text markers (apostrophe, backtick) and quotes, straight or curly.
fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '`' | '"' | '\u{00B4}' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}'
    )
}

/// Characters people put between digit groups.
fn is_separator(c: char) -> bool {
    is_blank(c)
        || matches!(
            c,
            '.' | ','
                | '-'
                | '\u{2010}'
                | '\u{2011}'
                | '\u{2012}'
                | '\u{2013}'
                | '\u{2014}'
                | '\u{2212}'
        )
}

fn is_ascii_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn is_missing_word(s: &str) -> bool {
    if !s.chars().any(char::is_alphabetic) {
        return false;
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    let normalized = words.join(" ").to_uppercase();
    MISSING_WORDS.contains(&normalized.as_str())
}

/// Reads `3.60101E+15`, `3,60101E+15`, `3.601011201900E15` (case-insensitive `E`, optional `+`,
/// decimal point or comma). `None` when the text is not in scientific notation.
fn read_scientific(s: &str) -> Option<Cleaned> {
    let compact: String = s.chars().filter(|c| !is_blank(*c)).collect();
    let (mantissa, exponent) = compact.split_once(['e', 'E'])?;
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    if exponent.is_empty() || exponent.len() > 3 || !is_ascii_digits(exponent) {
        return None;
    }
    let exponent: usize = exponent.parse().ok()?;
    let (int_part, frac_part) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    if int_part.is_empty() || !is_ascii_digits(int_part) || !is_ascii_digits(frac_part) {
        return None;
    }
    let all = format!("{int_part}{frac_part}");
    let significant = all.trim_start_matches('0');
    if significant.is_empty() {
        return Some(Cleaned::Missing);
    }
    // Digits before the decimal point once the exponent is applied.
    let leading_zeros = all.len() - significant.len();
    let Some(digit_count) = (int_part.len() + exponent).checked_sub(leading_zeros) else {
        return Some(Cleaned::NonDigit);
    };
    if digit_count == 0 {
        return Some(Cleaned::NonDigit);
    }
    match significant.split_at_checked(digit_count) {
        // Every digit is there (`3.601015205850001E+15`): written out in full.
        Some((integer, fraction)) if fraction.bytes().all(|b| b == b'0') => Some(Cleaned::Digits {
            digits: integer.to_string(),
            cleaned: true,
            numeric: true,
        }),
        // A fractional part that is not zero: no identifier.
        Some(_) => Some(Cleaned::NonDigit),
        None => Some(Cleaned::Scientific {
            mantissa: significant.to_string(),
            digit_count,
        }),
    }
}

/// `3601015205850001.0` or `,00` (a float written out): the integer part.
fn strip_zero_fraction(s: &str) -> Option<&str> {
    let (integer, fraction) = s.split_once(['.', ','])?;
    let is_float = !integer.is_empty()
        && is_ascii_digits(integer)
        && (1..=2).contains(&fraction.len())
        && fraction.bytes().all(|b| b == b'0');
    is_float.then_some(integer)
}

/// `3.601.015.205.850.001` or `3,601,015,205,850,001`: a number formatted with thousands
/// separators (groups of three from the right, at least four groups). Typed NIKs are grouped
/// differently (`3601 0152 0585 0001`, `36.01.01.520585.0001`).
fn join_thousands_groups(s: &str) -> Option<String> {
    let separator = s.chars().find(|c| !c.is_ascii_digit())?;
    if !matches!(separator, '.' | ',' | ' ' | '\u{00A0}' | '\u{202F}') {
        return None;
    }
    let groups: Vec<&str> = s.split(separator).collect();
    let (first, rest) = groups.split_first()?;
    let grouped = groups.len() >= 4
        && (1..=3).contains(&first.len())
        && is_ascii_digits(first)
        && rest.iter().all(|g| g.len() == 3 && is_ascii_digits(g));
    grouped.then(|| groups.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use QualityFlag::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    /// Run date used by every test: 30 June 2025.
    fn today() -> NaiveDate {
        date(2025, 6, 30)
    }

    fn flags(list: &[QualityFlag]) -> Vec<QualityFlag> {
        list.iter()
            .copied()
            .collect::<QualityFlags>()
            .iter()
            .collect()
    }

    /// One NIK case: input, expected outcome, all computed by hand from the rules.
    struct NikCase {
        raw: &'static str,
        numeric_cell: bool,
        status: IdStatus,
        nik: Option<&'static str>,
        prefix: Option<&'static str>,
        flags: &'static [QualityFlag],
        birth: Option<(i32, u32, u32)>,
    }

    fn check_nik(case: &NikCase, ctx: &NikContext) {
        let got = parse_nik(case.raw, ctx);
        let raw = case.raw;
        assert_eq!(got.status, case.status, "status of {raw:?}");
        assert_eq!(got.nik.as_deref(), case.nik, "nik of {raw:?}");
        assert_eq!(
            got.known_prefix.as_deref(),
            case.prefix,
            "prefix of {raw:?}"
        );
        assert_eq!(
            got.flags.iter().collect::<Vec<_>>(),
            flags(case.flags),
            "flags of {raw:?}"
        );
        let birth = case.birth.map(|(y, m, d)| date(y, m, d));
        assert_eq!(got.birth_date, birth, "birth date of {raw:?}");
        assert_eq!(got.parts.is_some(), case.nik.is_some(), "parts of {raw:?}");
    }

    fn run_nik_cases(cases: &[NikCase]) {
        for case in cases {
            let ctx = NikContext {
                from_numeric_cell: case.numeric_cell,
                ..NikContext::new(today())
            };
            check_nik(case, &ctx);
        }
    }

    #[test]
    fn valid_niks_and_the_women_day_offset() {
        run_nik_cases(&[
            // Sumur (Pandeglang), day 52 = 12 + 40: a woman born 12-05-1985 (2085 > 2025).
            NikCase {
                raw: "3601015205850001",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601015205850001"),
                prefix: None,
                flags: &[],
                birth: Some((1985, 5, 12)),
            },
            // Same day, a man: day written as is.
            NikCase {
                raw: "3601011205850002",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601011205850002"),
                prefix: None,
                flags: &[],
                birth: Some((1985, 5, 12)),
            },
            // Day 41 = the 1st, female. Kota Tangerang district 367101, born 2003 (<= 2025).
            NikCase {
                raw: "3671014101030005",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3671014101030005"),
                prefix: None,
                flags: &[],
                birth: Some((2003, 1, 1)),
            },
            // Day 71 = the 31st, female.
            NikCase {
                raw: "3601017112990001",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601017112990001"),
                prefix: None,
                flags: &[],
                birth: Some((1999, 12, 31)),
            },
        ]);
        let parsed = parse_nik("3601015205850001", &NikContext::new(today()));
        assert_eq!(
            parsed.parts,
            Some(NikParts {
                district: "360101".into(),
                day: 12,
                month: 5,
                yy: 85,
                sex: Sex::Female,
                serial: 1,
            })
        );
        let man = parse_nik("3601011205850002", &NikContext::new(today()));
        assert_eq!(
            man.parts.map(|p| (p.sex, p.day, p.serial)),
            Some((Sex::Male, 12, 2))
        );
    }

    #[test]
    fn century_follows_the_record_then_the_run_date() {
        let t = today();
        let cases: &[(u32, Option<NaiveDate>, i32)] = &[
            // Record year ends in the NIK's year: its century.
            (5, Some(date(1905, 3, 15)), 1905),
            (5, Some(date(2005, 3, 15)), 2005),
            (85, Some(date(1985, 1, 1)), 1985),
            // Record year ends otherwise: the nearer candidate.
            (5, Some(date(1950, 1, 1)), 1905), // 45 vs 55 years away
            (5, Some(date(1960, 1, 1)), 2005), // 55 vs 45 years away
            (99, Some(date(2001, 1, 1)), 1999), // 2 vs 98 years away
            // Tie (1955: 50 years from both): as without a record.
            (5, Some(date(1955, 1, 1)), 2005),
            // 2030 is nearer to 1990 (40 vs 60 years) but in the future.
            (30, Some(date(1990, 1, 1)), 1930),
            // A record year in the future is not followed either.
            (30, Some(date(2030, 1, 1)), 1930),
            (25, Some(date(2025, 1, 1)), 2025),
            // No record: 20yy unless after the run year.
            (5, None, 2005),
            (25, None, 2025),
            (26, None, 1926),
            (85, None, 1985),
            (0, None, 2000),
        ];
        for &(yy, record, want) in cases {
            assert_eq!(
                resolve_century(yy, record, t),
                want,
                "yy {yy} record {record:?}"
            );
        }
    }

    /// Two-digit year, embedded (day, month), record birth date, expected year.
    type CenturyCase = (u32, (u32, u32), Option<NaiveDate>, i32);

    #[test]
    fn century_never_puts_the_embedded_date_after_the_run_date() {
        let t = today(); // 2025-06-30
        let cases: &[CenturyCase] = &[
            // No record: 12-12-2025 is after the run date, so 1925.
            (25, (12, 12), None, 1925),
            (25, (1, 7), None, 1925),
            (25, (30, 6), None, 2025),
            (25, (12, 5), None, 2025),
            // An impossible day still compares (32 June is after 30 June).
            (25, (32, 6), None, 1925),
            // Even a record of the same year does not bring the date into the future.
            (25, (12, 12), Some(date(2025, 1, 1)), 1925),
            (25, (12, 5), Some(date(2025, 5, 12)), 2025),
            (26, (1, 1), None, 1926),
        ];
        for &(yy, day_month, record, want) in cases {
            assert_eq!(
                resolve_century_on(yy, Some(day_month), record, t),
                want,
                "yy {yy} day/month {day_month:?} record {record:?}"
            );
        }
        // Through parse_nik: a man born 12-12-25 and one born 12-05-25, read on 30-06-2025.
        let december = parse_nik("3601011212250001", &NikContext::new(t));
        assert_eq!(december.status, IdStatus::Valid);
        assert_eq!(december.birth_date, Some(date(1925, 12, 12)));
        let may = parse_nik("3601011205250001", &NikContext::new(t));
        assert_eq!(may.birth_date, Some(date(2025, 5, 12)));
        // A woman (day 52 = the 12th) born 12-07-25: the +40 is removed before comparing.
        let july = parse_nik("3601015207250001", &NikContext::new(t));
        assert_eq!(july.birth_date, Some(date(1925, 7, 12)));
    }

    #[test]
    fn two_digit_year_resolved_against_the_record() {
        // 15-03-05, male, Sumur.
        let raw = "3601011503050001";
        let with = |birth: Option<NaiveDate>| {
            parse_nik(
                raw,
                &NikContext {
                    birth_date: birth,
                    ..NikContext::new(today())
                },
            )
        };
        let old = with(Some(date(1905, 3, 15)));
        assert_eq!(old.birth_date, Some(date(1905, 3, 15)));
        assert!(old.flags.is_empty());
        let young = with(Some(date(2005, 3, 15)));
        assert_eq!(young.birth_date, Some(date(2005, 3, 15)));
        assert!(young.flags.is_empty());
        assert_eq!(with(None).birth_date, Some(date(2005, 3, 15)));
        // Record 1950-07-01: 1905 is nearer, and the dates disagree.
        let near = with(Some(date(1950, 7, 1)));
        assert_eq!(near.birth_date, Some(date(1905, 3, 15)));
        assert_eq!(near.status, IdStatus::Valid);
        assert_eq!(near.flags.iter().collect::<Vec<_>>(), vec![NikDateMismatch]);
    }

    #[test]
    fn region_prefix_current_retired_unknown() {
        run_nik_cases(&[
            // Merauke 91.01.01: retired by the 2022 Papua split, still valid in old NIKs.
            NikCase {
                raw: "9101011205850001",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("9101011205850001"),
                prefix: None,
                flags: &[NikRetiredRegion],
                birth: Some((1985, 5, 12)),
            },
            // 36.99.01: no such district in Banten, current or retired.
            NikCase {
                raw: "3699011205850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3699011205850001"),
                prefix: None,
                flags: &[NikUnknownRegion],
                birth: Some((1985, 5, 12)),
            },
            // Province 00 does not exist.
            NikCase {
                raw: "0001011205850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("0001011205850001"),
                prefix: None,
                flags: &[NikUnknownRegion],
                birth: Some((1985, 5, 12)),
            },
        ]);
    }

    #[test]
    fn impossible_dates_and_serial_zero() {
        run_nik_cases(&[
            // 29-02-1984: leap year.
            NikCase {
                raw: "3601012902840001",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601012902840001"),
                prefix: None,
                flags: &[],
                birth: Some((1984, 2, 29)),
            },
            // Woman born 29-02-1984: day 69.
            NikCase {
                raw: "3601016902840003",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601016902840003"),
                prefix: None,
                flags: &[],
                birth: Some((1984, 2, 29)),
            },
            // 29-02-1985: not a leap year.
            NikCase {
                raw: "3601012902850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601012902850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // 29-02-00 without a record date: 2000, a leap year.
            NikCase {
                raw: "3601012902000001",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601012902000001"),
                prefix: None,
                flags: &[],
                birth: Some((2000, 2, 29)),
            },
            // Day 32.
            NikCase {
                raw: "3601013205850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601013205850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // Day 72 = a woman's 32nd.
            NikCase {
                raw: "3601017205850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601017205850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // Day 40 (neither a man's day nor a woman's).
            NikCase {
                raw: "3601014005850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601014005850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // Day 00.
            NikCase {
                raw: "3601010005850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601010005850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // Month 13.
            NikCase {
                raw: "3601011213850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601011213850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // Month 00.
            NikCase {
                raw: "3601011200850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601011200850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // 31 April.
            NikCase {
                raw: "3601013104850001",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601013104850001"),
                prefix: None,
                flags: &[NikBadDate],
                birth: None,
            },
            // Serial 0000: the date is fine and kept.
            NikCase {
                raw: "3601011205850000",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3601011205850000"),
                prefix: None,
                flags: &[NikSerialZero],
                birth: Some((1985, 5, 12)),
            },
            // Everything wrong at once.
            NikCase {
                raw: "3699017213850000",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: Some("3699017213850000"),
                prefix: None,
                flags: &[NikUnknownRegion, NikBadDate, NikSerialZero],
                birth: None,
            },
        ]);
        let day72 = parse_nik("3601017205850001", &NikContext::new(today()));
        assert_eq!(day72.parts.map(|p| (p.sex, p.day)), Some((Sex::Female, 32)));
    }

    #[test]
    fn feb_29_checked_in_the_year_the_record_resolves() {
        // yy 00 with a record born in 1900: the NIK's 29-02 would be 1900, not a leap year.
        let ctx = NikContext {
            birth_date: Some(date(1900, 3, 1)),
            ..NikContext::new(today())
        };
        let parsed = parse_nik("3601012902000001", &ctx);
        assert_eq!(parsed.status, IdStatus::Invalid);
        assert_eq!(parsed.flags.iter().collect::<Vec<_>>(), vec![NikBadDate]);
        assert_eq!(parsed.birth_date, None);
    }

    #[test]
    fn typing_and_spreadsheet_cleaning() {
        let cleaned = |raw: &'static str| NikCase {
            raw,
            numeric_cell: false,
            status: IdStatus::Valid,
            nik: Some("3601015205850001"),
            prefix: None,
            flags: &[NikCleaned],
            birth: Some((1985, 5, 12)),
        };
        run_nik_cases(&[
            cleaned("'3601015205850001"),
            cleaned("`3601015205850001"),
            cleaned("\"3601015205850001\""),
            cleaned("\u{201C}3601015205850001\u{201D}"),
            cleaned("3601 0152 0585 0001"),
            cleaned("3601\u{00A0}0152\u{00A0}0585\u{00A0}0001"),
            cleaned("36.01.01.520585.0001"),
            cleaned("3601-0152-0585-0001"),
            cleaned("  '3601 0152 0585 0001  "),
            // A float written out, last digit not 0: all digits survived.
            cleaned("3601015205850001.0"),
            cleaned("3.601015205850001E+15"),
            // Thousands separators (a formatted number), last digit not 0.
            cleaned("3.601.015.205.850.001"),
            // Only surrounding whitespace: nothing worth a flag.
            NikCase {
                raw: " 3601015205850001\t",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601015205850001"),
                prefix: None,
                flags: &[],
                birth: Some((1985, 5, 12)),
            },
        ]);
    }

    #[test]
    fn missing_values() {
        for raw in [
            "",
            "   ",
            "-",
            "--",
            "0",
            "0000000000000000",
            "'",
            "NULL",
            "null",
            "N/A",
            "n/a",
            "TIDAK ADA",
            "Tidak  Ada",
            "\u{00A0}",
        ] {
            let parsed = parse_nik(raw, &NikContext::new(today()));
            assert_eq!(parsed.status, IdStatus::Missing, "{raw:?}");
            assert_eq!(
                parsed.flags.iter().collect::<Vec<_>>(),
                vec![NikMissing],
                "{raw:?}"
            );
            assert_eq!(parsed.nik, None, "{raw:?}");
            assert_eq!(parsed.parts, None, "{raw:?}");
        }
    }

    #[test]
    fn spreadsheet_damage() {
        run_nik_cases(&[
            // The last mantissa digit is rounded: 3601015205850001 shows as 3.60102E+15, so
            // only 36010 is certain.
            NikCase {
                raw: "3.60102E+15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("36010"),
                flags: &[NikScientific],
                birth: None,
            },
            NikCase {
                raw: "3.60101E+15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("36010"),
                flags: &[NikScientific],
                birth: None,
            },
            // Indonesian locale: decimal comma.
            NikCase {
                raw: "3,60101E+15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("36010"),
                flags: &[NikScientific],
                birth: None,
            },
            NikCase {
                raw: "3.60101e15",
                numeric_cell: true,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("36010"),
                flags: &[NikScientific],
                birth: None,
            },
            // A shown last 0 may be a rounded-up ...9 (3601011201899.7 shows as
            // 3601011201900): the zeros before it and the digit they follow are not certain.
            NikCase {
                raw: "3.601011201900E15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("3601011201"),
                flags: &[NikScientific],
                birth: None,
            },
            // 15 digits shown (a 16-digit number): the 15th is rounded.
            NikCase {
                raw: "3.60101520585001E+15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("36010152058500"),
                flags: &[NikScientific],
                birth: None,
            },
            // One digit shown: none is certain, but the damage is still reported.
            NikCase {
                raw: "4E+15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: None,
                flags: &[NikScientific],
                birth: None,
            },
            // All 16 digits written, but the 16th is Excel's 0.
            NikCase {
                raw: "3.601011201900000e15",
                numeric_cell: true,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("360101120190000"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            NikCase {
                raw: "3601011201900000.0",
                numeric_cell: true,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("360101120190000"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            // The `.0` shows a float even when the caller did not know.
            NikCase {
                raw: "3601011201900000.0",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("360101120190000"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            NikCase {
                raw: "3.601.011.201.900.000",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("360101120190000"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            // 15 digits: the last one is gone.
            NikCase {
                raw: "360101520585000",
                numeric_cell: false,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("360101520585000"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            // Numeric cell ending in 0: the 16th digit is Excel's.
            NikCase {
                raw: "3601015205850010",
                numeric_cell: true,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("360101520585001"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            // The same digits typed into a text cell: serial 0010 is fine.
            NikCase {
                raw: "3601015205850010",
                numeric_cell: false,
                status: IdStatus::Valid,
                nik: Some("3601015205850010"),
                prefix: None,
                flags: &[],
                birth: Some((1985, 5, 12)),
            },
            // Numeric cell whose last digit is not 0: it survived (and nothing was cleaned).
            NikCase {
                raw: "3601015205850011",
                numeric_cell: true,
                status: IdStatus::Valid,
                nik: Some("3601015205850011"),
                prefix: None,
                flags: &[],
                birth: Some((1985, 5, 12)),
            },
            // Above 2^53 a float cannot hold every integer: a Merauke NIK from a numeric cell.
            NikCase {
                raw: "9101011205850001",
                numeric_cell: true,
                status: IdStatus::Damaged,
                nik: None,
                prefix: Some("910101120585000"),
                flags: &[NikLastDigitLost],
                birth: None,
            },
            // Scientific notation of a number of the wrong size.
            NikCase {
                raw: "3.60101E+11",
                numeric_cell: false,
                status: IdStatus::Invalid,
                nik: None,
                prefix: None,
                flags: &[NikWrongLength, NikScientific],
                birth: None,
            },
        ]);
    }

    #[test]
    fn letters_and_wrong_lengths() {
        let invalid = |raw: &'static str, flag: &'static [QualityFlag]| NikCase {
            raw,
            numeric_cell: false,
            status: IdStatus::Invalid,
            nik: None,
            prefix: None,
            flags: flag,
            birth: None,
        };
        run_nik_cases(&[
            // Letter O for zero.
            invalid("3601O15205850001", &[NikNonDigit]),
            invalid("NIK 3601015205850001", &[NikNonDigit]),
            invalid("3601/0152/0585/0001", &[NikNonDigit]),
            invalid("-3.60101E+15", &[NikNonDigit]),
            invalid("36010152058500011", &[NikWrongLength]),
            invalid("360101520585", &[NikWrongLength]),
            invalid("3601 0152 0585", &[NikWrongLength]),
        ]);
    }

    /// Record birth date, record sex, record KK, expected flags.
    type CrossCase = (
        Option<NaiveDate>,
        Option<Sex>,
        Option<&'static str>,
        &'static [QualityFlag],
    );

    #[test]
    fn cross_checks_add_flags_but_keep_the_status() {
        let nik = "3601015205850001"; // woman, 12-05-1985
        let cases: &[CrossCase] = &[
            (Some(date(1985, 5, 12)), Some(Sex::Female), None, &[]),
            (
                Some(date(1985, 5, 13)),
                Some(Sex::Female),
                None,
                &[NikDateMismatch],
            ),
            // A corrected birth year: the NIK keeps the old one (record 1986 -> 1985 nearer).
            (Some(date(1986, 5, 12)), None, None, &[NikDateMismatch]),
            (None, Some(Sex::Male), None, &[NikSexMismatch]),
            (
                Some(date(1985, 12, 5)),
                Some(Sex::Male),
                None,
                &[NikDateMismatch, NikSexMismatch],
            ),
            (None, None, Some("3601010101100003"), &[]),
        ];
        for &(birth, sex, no_kk, want) in cases {
            let ctx = NikContext {
                birth_date: birth,
                sex,
                no_kk,
                ..NikContext::new(today())
            };
            let parsed = parse_nik(nik, &ctx);
            assert_eq!(parsed.status, IdStatus::Valid, "{birth:?} {sex:?}");
            assert_eq!(parsed.birth_date, Some(date(1985, 5, 12)));
            assert_eq!(
                parsed.flags.iter().collect::<Vec<_>>(),
                flags(want),
                "{birth:?} {sex:?}"
            );
        }
    }

    #[test]
    fn kk_typed_into_the_nik_field() {
        // KK issued 20-03-2015 in Sumur: as a NIK it reads as a boy born 20-03-2015.
        let kk = "3601012003150007";
        let ctx = NikContext {
            no_kk: Some(kk),
            ..NikContext::new(today())
        };
        let parsed = parse_nik("'3601 0120 0315 0007", &ctx);
        assert_eq!(parsed.status, IdStatus::Valid);
        assert_eq!(parsed.nik.as_deref(), Some(kk));
        assert_eq!(parsed.birth_date, Some(date(2015, 3, 20)));
        assert_eq!(
            parsed.flags.iter().collect::<Vec<_>>(),
            vec![NikCleaned, NikEqualsKk]
        );
    }

    #[test]
    fn sex_is_not_checked_on_an_unreadable_day() {
        // Day 72 (a woman's 32nd): impossible, so no sex verdict either.
        let ctx = NikContext {
            sex: Some(Sex::Male),
            ..NikContext::new(today())
        };
        let parsed = parse_nik("3601017205850001", &ctx);
        assert_eq!(parsed.flags.iter().collect::<Vec<_>>(), vec![NikBadDate]);
    }

    /// One KK case: input, expected outcome, computed by hand.
    struct KkCase {
        raw: &'static str,
        numeric_cell: bool,
        status: IdStatus,
        kk: Option<&'static str>,
        prefix: Option<&'static str>,
        flags: &'static [QualityFlag],
    }

    #[test]
    fn kk_numbers() {
        let cases = [
            // Sumur, issued 20-03-2015, serial 0007.
            KkCase {
                raw: "3601012003150007",
                numeric_cell: false,
                status: IdStatus::Valid,
                kk: Some("3601012003150007"),
                prefix: None,
                flags: &[],
            },
            // Cleaning adds no flag for a KK (there is no KK "cleaned" flag).
            KkCase {
                raw: "'3601-0120-0315-0007",
                numeric_cell: false,
                status: IdStatus::Valid,
                kk: Some("3601012003150007"),
                prefix: None,
                flags: &[],
            },
            // Retired Merauke code: still valid.
            KkCase {
                raw: "9101011506100002",
                numeric_cell: false,
                status: IdStatus::Valid,
                kk: Some("9101011506100002"),
                prefix: None,
                flags: &[],
            },
            // 29-02-2016: leap year.
            KkCase {
                raw: "3671012902160001",
                numeric_cell: false,
                status: IdStatus::Valid,
                kk: Some("3671012902160001"),
                prefix: None,
                flags: &[],
            },
            KkCase {
                raw: "",
                numeric_cell: false,
                status: IdStatus::Missing,
                kk: None,
                prefix: None,
                flags: &[KkMissing],
            },
            KkCase {
                raw: "TIDAK ADA",
                numeric_cell: false,
                status: IdStatus::Missing,
                kk: None,
                prefix: None,
                flags: &[KkMissing],
            },
            KkCase {
                raw: "3.60101E+15",
                numeric_cell: false,
                status: IdStatus::Damaged,
                kk: None,
                prefix: Some("36010"),
                flags: &[KkDamaged],
            },
            KkCase {
                raw: "360101200315000",
                numeric_cell: false,
                status: IdStatus::Damaged,
                kk: None,
                prefix: Some("360101200315000"),
                flags: &[KkDamaged],
            },
            KkCase {
                raw: "3601012003150010",
                numeric_cell: true,
                status: IdStatus::Damaged,
                kk: None,
                prefix: Some("360101200315001"),
                flags: &[KkDamaged],
            },
            // No +40 in a KK: day 60 is impossible.
            KkCase {
                raw: "3601016003150007",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: Some("3601016003150007"),
                prefix: None,
                flags: &[KkInvalid],
            },
            // Month 13.
            KkCase {
                raw: "3601012013150007",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: Some("3601012013150007"),
                prefix: None,
                flags: &[KkInvalid],
            },
            // 29-02-2015: not a leap year.
            KkCase {
                raw: "3601012902150007",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: Some("3601012902150007"),
                prefix: None,
                flags: &[KkInvalid],
            },
            // Serial 0000.
            KkCase {
                raw: "3601012003150000",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: Some("3601012003150000"),
                prefix: None,
                flags: &[KkInvalid],
            },
            // Unknown district.
            KkCase {
                raw: "3699012003150007",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: Some("3699012003150007"),
                prefix: None,
                flags: &[KkInvalid],
            },
            // Letters and wrong length: no digits kept.
            KkCase {
                raw: "36010120031500O7",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: None,
                prefix: None,
                flags: &[KkInvalid],
            },
            KkCase {
                raw: "36010120031500071",
                numeric_cell: false,
                status: IdStatus::Invalid,
                kk: None,
                prefix: None,
                flags: &[KkInvalid],
            },
        ];
        for case in &cases {
            let got = parse_kk(case.raw, case.numeric_cell);
            let raw = case.raw;
            assert_eq!(got.status, case.status, "status of {raw:?}");
            assert_eq!(got.kk.as_deref(), case.kk, "kk of {raw:?}");
            assert_eq!(
                got.known_prefix.as_deref(),
                case.prefix,
                "prefix of {raw:?}"
            );
            assert_eq!(
                got.flags.iter().collect::<Vec<_>>(),
                flags(case.flags),
                "flags of {raw:?}"
            );
        }
    }

    #[test]
    fn clean_digits_shapes() {
        let digits = |d: &str, cleaned: bool, numeric: bool| Cleaned::Digits {
            digits: d.to_string(),
            cleaned,
            numeric,
        };
        let cases = [
            ("3601015205850001", digits("3601015205850001", false, false)),
            ("'3601015205850001", digits("3601015205850001", true, false)),
            (
                "3601.0152.0585.0001",
                digits("3601015205850001", true, false),
            ),
            (
                "3601015205850001,00",
                digits("3601015205850001", true, true),
            ),
            (
                "3,601,015,205,850,001",
                digits("3601015205850001", true, true),
            ),
            (
                "3 601 015 205 850 001",
                digits("3601015205850001", true, true),
            ),
            (
                "3.601015205850001E+15",
                digits("3601015205850001", true, true),
            ),
            // Trailing zeros after the integer digits are only the float's padding.
            (
                "3.6010152058500010E15",
                digits("3601015205850001", true, true),
            ),
            (
                "3.60101E+15",
                Cleaned::Scientific {
                    mantissa: "360101".into(),
                    digit_count: 16,
                },
            ),
            (
                "3.60101 E +15",
                Cleaned::Scientific {
                    mantissa: "360101".into(),
                    digit_count: 16,
                },
            ),
            // A fraction that is not zero is no identifier.
            ("3.6010152058500015E15", Cleaned::NonDigit),
            ("3.60101E-05", Cleaned::NonDigit),
            ("NONE", Cleaned::Missing),
            ("#N/A", Cleaned::Missing),
            ("0.0", Cleaned::Missing),
            ("0E+00", Cleaned::Missing),
            ("3601O15205850001", Cleaned::NonDigit),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_digits(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn status_codes() {
        assert_eq!(IdStatus::Valid.code(), "valid");
        assert_eq!(IdStatus::Missing.code(), "missing");
        assert_eq!(IdStatus::Damaged.code(), "damaged");
        assert_eq!(IdStatus::Invalid.code(), "invalid");
    }

    #[test]
    fn masking() {
        let cases = [
            ("3601015205850001", "3601********0001"),
            ("3601012003150007", "3601********0007"),
            ("360101520585000", "36*************"),
            ("3.60101E+15", "3.*********"),
            ("ABC", "AB*"),
            ("AB", "AB"),
            ("A", "A"),
            ("", ""),
        ];
        for (id, want) in cases {
            assert_eq!(mask_id(id), want, "{id:?}");
        }
    }
}
