//! Comparison levels: how two values of one field agree, as one of a few discrete levels.
//!
//! Probabilistic linkage (Fellegi-Sunter, as in Splink) does not ask "are these names equal?"
//! but "how well do they agree?", and learns how often each answer happens among true matches
//! (m) and among non-matches (u). This module gives the answers: one level enum per kind of
//! field, and a pure function from two values to a level.
//!
//! | field | function | levels, strongest first |
//! |---|---|---|
//! | NIK | [`compare_nik`] | [`NikLevel`] |
//! | name key | [`compare_names`] | [`NameLevel`] |
//! | birth date | [`compare_dates`] | [`DateLevel`] |
//! | sex, KK number | [`compare_exact`] | [`ExactLevel`] |
//! | region codes | [`compare_region`] | [`RegionLevel`] |
//!
//! **Levels are data.** Each enum lists its levels in `ALL`, from the strongest evidence of a
//! match to the weakest, `Missing` last; `code()` is the snake_case name stored in model files
//! and reports, `label()` the sentence a program manager reads. The [`Level`] trait gives the
//! same to generic code (EM tables are indexed by [`Level::index`]). In every function **the
//! first level whose rule holds wins**, in the order of `ALL` unless a function documents
//! otherwise (`Missing` is checked first everywhere; NIKs check the serial trap before the
//! typo levels; dates check placeholders before `Exact`).
//!
//! **Domain traps built in** (see the domain brief, "Traps for matching"):
//! - Two NIKs that differ only in the four-digit serial are, as a rule, two people born the
//!   same day and first registered in the same kecamatan (twins, neighbours). They get their
//!   own level, [`NikLevel::SameRegionDateOtherSerial`], never a "one typo" level, even when
//!   the serials differ by one digit or by a swap. Opposite-sex twins are the same trap in
//!   another place: their NIKs differ only in the day's tens digit (a woman's day has 40
//!   added), so that pattern goes to the same level.
//! - Placeholder birth dates (31 Dec, 1 Jul, 1 Jan) agree weakly:
//!   [`DateLevel::PlaceholderEither`].
//! - Name comparison works on normalised keys (titles, old spelling and `MOCH`/`MUHAMMAD`
//!   variants already unified by [`normalize_name`](crate::normalize::names::normalize_name)),
//!   so `HJ. SITI AMINAH` and `SITI AMINAH` are [`NameLevel::Exact`]. Common tokens (SITI, SRI,
//!   MUHAMMAD) still collide: [`rarest_token`] prepares term-frequency adjustment.

use chrono::{Datelike, NaiveDate};

use crate::normalize::dates::is_placeholder;
use crate::normalize::names::{name_tokens, token_key};
use crate::normalize::nik::{DISTRICT_LEN, ID_LEN, ParsedNik};
use crate::normalize::region::RegionLevel as AdminLevel;

/// What every level enum offers, for code that handles any comparison (EM, reports).
pub trait Level: Copy + Eq + 'static {
    /// Every level, from the strongest evidence of a match to the weakest, `Missing` last.
    fn all() -> &'static [Self];
    /// The snake_case code stored in model files and reports, e.g. `one_substitution`.
    fn code(self) -> &'static str;
    /// A sentence a program manager understands.
    fn label(self) -> &'static str;
    /// Position in [`Level::all`] (0 = strongest), for m and u tables.
    fn index(self) -> usize;
}

/// Declares a level enum with its `ALL`, `code`, `label` and [`Level`] implementation; the
/// variants are declared (and listed in `ALL`) in the order given.
macro_rules! levels {
    (
        $(#[$meta:meta])*
        $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident => $code:literal, $label:literal;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )+
        }

        impl $name {
            /// Every level, from the strongest evidence of a match to the weakest,
            /// `Missing` last.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case code stored in model files and reports.
            pub fn code(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            /// A sentence a program manager understands.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }

        impl Level for $name {
            fn all() -> &'static [Self] {
                $name::ALL
            }
            fn code(self) -> &'static str {
                $name::code(self)
            }
            fn label(self) -> &'static str {
                $name::label(self)
            }
            fn index(self) -> usize {
                // Variants are declared in the order of `ALL`, without explicit discriminants.
                self as usize
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// NIK
// ---------------------------------------------------------------------------------------------

/// Digits of a NIK before the serial: district (6) and birth date `DDMMYY` (6).
pub const REGION_DATE_LEN: usize = DISTRICT_LEN + 6;

/// Fewest digits that must agree for a spreadsheet-damaged NIK to count as
/// [`NikLevel::SpreadsheetCompatible`]: the district code. A shorter agreeing prefix (the five
/// digits left by `3.60102E+15`) says nothing blocking does not, and gives
/// [`NikLevel::Missing`].
pub const MIN_COMPATIBLE_PREFIX: usize = DISTRICT_LEN;

/// Where the day of birth sits in a NIK (digits 7-8), and what is added to it for women.
const DAY_POS: usize = DISTRICT_LEN;
const WOMEN_DAY_OFFSET: u32 = 40;

levels! {
    /// How two NIKs agree. Order of the checks: `Missing`, `Exact`, then
    /// `SameRegionDateOtherSerial` *before* the typo levels (a one-digit serial difference is
    /// another person), `OneSubstitution`, `AdjacentTransposition`, `SpreadsheetCompatible`
    /// (only reachable when a side is damaged), `Different`.
    NikLevel {
        /// The same sixteen digits.
        Exact => "exact",
            "Same NIK";
        /// Sixteen digits each, one digit differs, in the region or birth-date part.
        OneSubstitution => "one_substitution",
            "NIK differs in one digit of the region or birth-date part: probably a typing error";
        /// Sixteen digits each, two neighbouring digits swapped, the first of them in the
        /// region or birth-date part (a swap across the date and the serial counts here).
        AdjacentTransposition => "adjacent_transposition",
            "NIK has two neighbouring digits swapped in the region or birth-date part: probably a typing error";
        /// One side lost digits in a spreadsheet ([`ParsedNik::known_prefix`]); the digits
        /// known on both sides agree, at least [`MIN_COMPATIBLE_PREFIX`] of them. Mostly 15
        /// known digits (numeric cells), where only the serial's last digit is unknown; a
        /// short prefix is much weaker, and the m/u estimation weighs the mix.
        SpreadsheetCompatible => "spreadsheet_compatible",
            "NIK damaged by a spreadsheet on one side; the digits that survived agree";
        /// The first twelve digits agree and the serial differs, or only the women's +40 on
        /// the day differs: two people born the same day and first registered in the same
        /// kecamatan, such as twins. Also when a damaged NIK's known serial digits differ.
        SameRegionDateOtherSerial => "same_region_date_other_serial",
            "NIK differs only in the serial (or the +40 that marks women): usually a different person born the same day in the same kecamatan, such as a twin";
        /// Anything else: the NIKs disagree.
        Different => "different",
            "Different NIK";
        /// A side has no usable NIK, or the known digits are too few to compare.
        Missing => "missing",
            "NIK missing on one side, or too damaged to compare";
    }
}

/// One side of a NIK comparison: what [`ParsedNik`] knows about the number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NikValue<'a> {
    /// The sixteen clean digits ([`ParsedNik::nik`]). A value that is not sixteen ASCII
    /// digits is ignored (as if absent).
    pub nik: Option<&'a str>,
    /// For a spreadsheet-damaged NIK, the leading digits known to be right
    /// ([`ParsedNik::known_prefix`]). Used only when `nik` is absent; ignored unless it is
    /// one to sixteen ASCII digits.
    pub known_prefix: Option<&'a str>,
}

impl<'a> NikValue<'a> {
    /// The comparable parts of a parsed NIK.
    pub fn from_parsed(parsed: &'a ParsedNik) -> Self {
        NikValue {
            nik: parsed.nik.as_deref(),
            known_prefix: parsed.known_prefix.as_deref(),
        }
    }
}

/// The digits a side contributes: all sixteen, or only a prefix.
#[derive(Debug, Clone, Copy)]
enum KnownDigits<'a> {
    Full(&'a [u8]),
    Prefix(&'a [u8]),
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn known_digits<'a>(v: &NikValue<'a>) -> Option<KnownDigits<'a>> {
    if let Some(nik) = v.nik
        && nik.len() == ID_LEN
        && all_digits(nik)
    {
        return Some(KnownDigits::Full(nik.as_bytes()));
    }
    if let Some(prefix) = v.known_prefix
        && (1..=ID_LEN).contains(&prefix.len())
        && all_digits(prefix)
    {
        return Some(KnownDigits::Prefix(prefix.as_bytes()));
    }
    None
}

/// Compares two NIKs. (KK numbers are compared whole, with [`compare_exact`]: a KK changes
/// when a family moves or splits, so near-misses mean little.)
///
/// Rules, the first that holds wins:
/// 1. `Missing`: a side has neither a sixteen-digit `nik` nor a usable `known_prefix`.
/// 2. Both sides complete:
///    `Exact` (equal); `SameRegionDateOtherSerial` (first twelve digits equal, or equal but for
///    the day's +40); `OneSubstitution` (one digit differs, necessarily in the first twelve
///    once the previous rule failed); `AdjacentTransposition` (two neighbouring digits
///    swapped, the first in the first twelve); otherwise `Different`.
/// 3. A side damaged: compare the digits both sides know (the shorter length). Equal:
///    `SpreadsheetCompatible` with at least [`MIN_COMPATIBLE_PREFIX`] of them, else
///    `Missing`. Unequal: `SameRegionDateOtherSerial` when at least twelve are known and they
///    agree as in rule 2, else `Different` (no typo levels on partial numbers).
pub fn compare_nik(a: &NikValue, b: &NikValue) -> NikLevel {
    let (Some(a), Some(b)) = (known_digits(a), known_digits(b)) else {
        return NikLevel::Missing;
    };
    match (a, b) {
        (KnownDigits::Full(x), KnownDigits::Full(y)) => compare_full_niks(x, y),
        (KnownDigits::Full(x), KnownDigits::Prefix(y))
        | (KnownDigits::Prefix(x), KnownDigits::Full(y))
        | (KnownDigits::Prefix(x), KnownDigits::Prefix(y)) => compare_partial_niks(x, y),
    }
}

fn compare_full_niks(x: &[u8], y: &[u8]) -> NikLevel {
    if x == y {
        return NikLevel::Exact;
    }
    if same_region_and_date(x, y) {
        return NikLevel::SameRegionDateOtherSerial;
    }
    let mut diffs = x
        .iter()
        .zip(y)
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| i);
    match (diffs.next(), diffs.next(), diffs.next()) {
        (Some(i), None, None) if i < REGION_DATE_LEN => NikLevel::OneSubstitution,
        (Some(i), Some(j), None)
            if j == i + 1
                && i < REGION_DATE_LEN
                && x.get(i) == y.get(j)
                && x.get(j) == y.get(i) =>
        {
            NikLevel::AdjacentTransposition
        }
        _ => NikLevel::Different,
    }
}

fn compare_partial_niks(x: &[u8], y: &[u8]) -> NikLevel {
    let common = x.len().min(y.len());
    let (Some(xs), Some(ys)) = (x.get(..common), y.get(..common)) else {
        return NikLevel::Missing;
    };
    if xs == ys {
        if common >= MIN_COMPATIBLE_PREFIX {
            NikLevel::SpreadsheetCompatible
        } else {
            NikLevel::Missing
        }
    } else if common >= REGION_DATE_LEN && same_region_and_date(xs, ys) {
        NikLevel::SameRegionDateOtherSerial
    } else {
        NikLevel::Different
    }
}

/// True when two digit strings of at least twelve digits have the same district and the same
/// birth date: the first twelve digits are equal, or equal but for the women's +40 on the day
/// (opposite-sex twins).
fn same_region_and_date(x: &[u8], y: &[u8]) -> bool {
    let (Some(px), Some(py)) = (x.get(..REGION_DATE_LEN), y.get(..REGION_DATE_LEN)) else {
        return false;
    };
    if px == py {
        return true;
    }
    let day_end = DAY_POS + 2;
    let (Some(dx), Some(dy)) = (two_digits(px, DAY_POS), two_digits(py, DAY_POS)) else {
        return false;
    };
    px.get(..DAY_POS) == py.get(..DAY_POS)
        && px.get(day_end..) == py.get(day_end..)
        && dx.abs_diff(dy) == WOMEN_DAY_OFFSET
        && (1..=31).contains(&dx.min(dy))
}

fn two_digits(s: &[u8], at: usize) -> Option<u32> {
    let tens = s.get(at).filter(|b| b.is_ascii_digit())?;
    let ones = s.get(at + 1).filter(|b| b.is_ascii_digit())?;
    Some(u32::from(tens - b'0') * 10 + u32::from(ones - b'0'))
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// Jaro-Winkler similarity of the whole keys from which names are [`NameLevel::JaroWinklerHigh`].
pub const NAME_JW_HIGH: f64 = 0.95;

/// Jaro-Winkler similarity of the whole keys from which names are
/// [`NameLevel::JaroWinklerMedium`].
pub const NAME_JW_MEDIUM: f64 = 0.88;

/// Jaro-Winkler similarity from which two tokens match in the token-set levels, when both
/// have at least [`TOKEN_JW_MIN_CHARS`] letters.
pub const TOKEN_JW: f64 = 0.92;

/// Shortest tokens compared by Jaro-Winkler in the token-set levels (`SRI` and `SITI` are too
/// short for it to mean anything).
pub const TOKEN_JW_MIN_CHARS: usize = 4;

/// The token-set levels need a token of at least this many letters to agree: initials and a
/// two-letter token alone prove nothing.
pub const ANCHOR_MIN_CHARS: usize = 3;

levels! {
    /// How two normalised name keys agree. Order of the checks: `Missing`, then as listed.
    /// Whole-key similarity comes before the token-set levels so that each level keeps one
    /// meaning: `TokenSet` and `Initials` are names that are *not* similar as strings but
    /// agree once tokens are reordered, dropped or abbreviated.
    NameLevel {
        /// The same tokens in the same order.
        Exact => "exact",
            "Same name";
        /// Jaro-Winkler of the keys at least [`NAME_JW_HIGH`]: one letter off (`AMINAH` /
        /// `AMINA`).
        JaroWinklerHigh => "jaro_winkler_high",
            "Names almost identical: a letter or two differ";
        /// Jaro-Winkler of the keys at least [`NAME_JW_MEDIUM`].
        JaroWinklerMedium => "jaro_winkler_medium",
            "Names similar in spelling, but several letters differ";
        /// Every token of the name with fewer tokens matches its own token of the other name
        /// (equal, Jaro-Winkler at least [`TOKEN_JW`] for tokens of four letters or more, or
        /// the same [`token_key`]), and one of them has at least [`ANCHOR_MIN_CHARS`]
        /// letters: `BUDI SANTOSO` / `SANTOSO BUDI`, `SITI AMINAH` / `AMINAH`.
        TokenSet => "token_set",
            "Same name parts, in another order or with a part left out";
        /// As `TokenSet`, but a single letter also matches a token that starts with it
        /// (`S AMINAH` / `SITI AMINAH`); at least one matched pair is two tokens of three
        /// letters or more agreeing without initials.
        Initials => "initials",
            "Names agree if initials are read as the full name parts";
        /// None of the above.
        Different => "different",
            "Different name";
        /// A name is empty.
        Missing => "missing",
            "Name missing on one side";
    }
}

/// Compares two name keys, as produced by
/// [`normalize_name`](crate::normalize::names::normalize_name) (its `name` field). The keys
/// are not normalised again: pass keys, not raw names. Tokens are split on spaces.
///
/// Rules, the first that holds wins: `Missing` (a key without tokens), `Exact`,
/// `JaroWinklerHigh`, `JaroWinklerMedium`, `TokenSet`, `Initials`, `Different` (see
/// [`NameLevel`] for each rule).
pub fn compare_names(a: &str, b: &str) -> NameLevel {
    let ta: Vec<&str> = name_tokens(a).collect();
    let tb: Vec<&str> = name_tokens(b).collect();
    if ta.is_empty() || tb.is_empty() {
        return NameLevel::Missing;
    }
    if ta == tb {
        return NameLevel::Exact;
    }
    let jw = strsim::jaro_winkler(&ta.join(" "), &tb.join(" "));
    if jw >= NAME_JW_HIGH {
        return NameLevel::JaroWinklerHigh;
    }
    if jw >= NAME_JW_MEDIUM {
        return NameLevel::JaroWinklerMedium;
    }
    let (short, long) = if ta.len() <= tb.len() {
        (&ta, &tb)
    } else {
        (&tb, &ta)
    };
    let pairs = TokenPairs::new(short, long);
    if pairs.token_set() {
        NameLevel::TokenSet
    } else if pairs.initials() {
        NameLevel::Initials
    } else {
        NameLevel::Different
    }
}

/// One token with what the token-set levels need of it.
struct Token<'a> {
    text: &'a str,
    chars: usize,
    key: String,
}

impl<'a> Token<'a> {
    fn new(text: &'a str) -> Self {
        Token {
            text,
            chars: text.chars().count(),
            key: token_key(text),
        }
    }
}

/// How each token of the shorter name (rows) matches each token of the longer (columns).
struct TokenPairs {
    rows: usize,
    cols: usize,
    /// Row-major: does the pair match without initials?
    strict: Vec<bool>,
    /// Row-major: does the pair match when a single letter matches a token starting with it?
    loose: Vec<bool>,
    /// Row-major: a strict match of two tokens of at least [`ANCHOR_MIN_CHARS`] letters.
    anchor: Vec<bool>,
    /// The shorter name has a token of at least [`ANCHOR_MIN_CHARS`] letters.
    short_has_long_token: bool,
}

impl TokenPairs {
    fn new(short: &[&str], long: &[&str]) -> Self {
        let short: Vec<Token> = short.iter().map(|t| Token::new(t)).collect();
        let long: Vec<Token> = long.iter().map(|t| Token::new(t)).collect();
        let mut strict = Vec::with_capacity(short.len() * long.len());
        let mut loose = Vec::with_capacity(strict.capacity());
        let mut anchor = Vec::with_capacity(strict.capacity());
        for s in &short {
            for l in &long {
                let exact = tokens_match(s, l);
                let initial = (s.chars == 1 && l.text.starts_with(s.text))
                    || (l.chars == 1 && s.text.starts_with(l.text));
                strict.push(exact);
                loose.push(exact || initial);
                anchor.push(exact && s.chars.min(l.chars) >= ANCHOR_MIN_CHARS);
            }
        }
        TokenPairs {
            rows: short.len(),
            cols: long.len(),
            strict,
            loose,
            anchor,
            short_has_long_token: short.iter().any(|t| t.chars >= ANCHOR_MIN_CHARS),
        }
    }

    fn token_set(&self) -> bool {
        self.short_has_long_token && covers_rows(&self.strict, self.rows, self.cols, None)
    }

    fn initials(&self) -> bool {
        if !self.short_has_long_token {
            return false;
        }
        // Some anchor pair must belong to the matching: try each one as a fixed pair.
        self.anchor
            .iter()
            .enumerate()
            .filter(|(_, is_anchor)| **is_anchor)
            .any(|(at, _)| {
                let fixed = (at / self.cols, at % self.cols);
                covers_rows(&self.loose, self.rows, self.cols, Some(fixed))
            })
    }
}

/// Two tokens match without initials: equal, Jaro-Winkler at least [`TOKEN_JW`] (both of at
/// least [`TOKEN_JW_MIN_CHARS`] letters), or the same [`token_key`] (both of two letters or
/// more).
fn tokens_match(a: &Token, b: &Token) -> bool {
    a.text == b.text
        || (a.chars >= TOKEN_JW_MIN_CHARS
            && b.chars >= TOKEN_JW_MIN_CHARS
            && strsim::jaro_winkler(a.text, b.text) >= TOKEN_JW)
        || (a.chars >= 2 && b.chars >= 2 && !a.key.is_empty() && a.key == b.key)
}

/// True when every row can be matched to its own column along `edges` (row-major
/// `rows` x `cols`), with `fixed` (row, column) imposed if given. Augmenting paths
/// (Kuhn's algorithm): names have a handful of tokens.
fn covers_rows(edges: &[bool], rows: usize, cols: usize, fixed: Option<(usize, usize)>) -> bool {
    let mut owner: Vec<Option<usize>> = vec![None; cols];
    if let Some((row, col)) = fixed
        && let Some(slot) = owner.get_mut(col)
    {
        *slot = Some(row);
    }
    for row in 0..rows {
        if fixed.is_some_and(|(r, _)| r == row) {
            continue;
        }
        let mut seen = vec![false; cols];
        if !augment(row, edges, cols, fixed, &mut owner, &mut seen) {
            return false;
        }
    }
    true
}

fn augment(
    row: usize,
    edges: &[bool],
    cols: usize,
    fixed: Option<(usize, usize)>,
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for col in 0..cols {
        let usable = edges.get(row * cols + col).copied().unwrap_or(false)
            && fixed.is_none_or(|(_, c)| c != col);
        let Some(visited) = seen.get_mut(col) else {
            return false;
        };
        if !usable || *visited {
            continue;
        }
        *visited = true;
        let current = owner.get(col).copied().flatten();
        let free = match current {
            None => true,
            Some(other) => augment(other, edges, cols, fixed, owner, seen),
        };
        if free {
            if let Some(slot) = owner.get_mut(col) {
                *slot = Some(row);
            }
            return true;
        }
    }
    false
}

/// The token of a name key with the lowest frequency according to `freq` (the first one on a
/// tie), for term-frequency adjustment: agreeing on `SITI` says little, on `KOMARUDIN` a lot.
/// `None` for an empty key. Frequencies are compared with `f64::total_cmp`, so a NaN
/// frequency counts as the highest.
pub fn rarest_token<'a>(name: &'a str, freq: &impl Fn(&str) -> f64) -> Option<&'a str> {
    name_tokens(name).min_by(|x, y| freq(x).total_cmp(&freq(y)))
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

levels! {
    /// How two birth dates agree. Order of the checks: `Missing`, `PlaceholderEither` (before
    /// `Exact`: a placeholder only agrees exactly with the same placeholder), then as listed.
    DateLevel {
        /// The same date (also the same placeholder on both sides: term frequency will weigh
        /// a common date down).
        Exact => "exact",
            "Same birth date";
        /// Day and month swapped, same year (`1985-05-12` / `1985-12-05`).
        DayMonthSwapped => "day_month_swapped",
            "Same birth date with day and month swapped";
        /// Exactly one of day, month and year differs, by any amount (`12` / `13` May, or a
        /// year typed `1958` for `1985`).
        OneComponentOff => "one_component_off",
            "Birth dates differ in only one of day, month or year";
        /// A side is a registration placeholder ([`is_placeholder`]: 31 Dec before 2004,
        /// 1 Jul since, 1 Jan) and the dates are not equal: the real date is unknown.
        PlaceholderEither => "placeholder_either",
            "A birth date is a placeholder for an unknown date (31 Dec, 1 Jul or 1 Jan)";
        /// Years at most one apart, day and month not both equal.
        YearWithinOne => "year_within_one",
            "Birth dates differ, but within a year of each other";
        /// None of the above.
        Different => "different",
            "Different birth date";
        /// A date is missing.
        Missing => "missing",
            "Birth date missing on one side";
    }
}

/// Compares two birth dates.
///
/// Rules, the first that holds wins: `Missing` (a side is `None`); `PlaceholderEither` (a
/// side is a placeholder and the dates differ); `Exact`; `DayMonthSwapped` (day and month
/// exchanged, same year, day not equal to month); `OneComponentOff` (exactly one of day,
/// month, year differs); `YearWithinOne` (years at most one apart); `Different`.
pub fn compare_dates(a: Option<NaiveDate>, b: Option<NaiveDate>) -> DateLevel {
    let (Some(a), Some(b)) = (a, b) else {
        return DateLevel::Missing;
    };
    if a != b && (is_placeholder(a) || is_placeholder(b)) {
        return DateLevel::PlaceholderEither;
    }
    if a == b {
        return DateLevel::Exact;
    }
    let same_year = a.year() == b.year();
    if same_year && a.day() == b.month() && a.month() == b.day() && a.day() != a.month() {
        return DateLevel::DayMonthSwapped;
    }
    let differing = [a.day() != b.day(), a.month() != b.month(), !same_year]
        .iter()
        .filter(|d| **d)
        .count();
    if differing == 1 {
        DateLevel::OneComponentOff
    } else if a.year().abs_diff(b.year()) <= 1 {
        DateLevel::YearWithinOne
    } else {
        DateLevel::Different
    }
}

// ---------------------------------------------------------------------------------------------
// Exact fields and regions
// ---------------------------------------------------------------------------------------------

levels! {
    /// Agreement of a field compared as a whole: sex (`M`/`F`), KK number, relationship code.
    ExactLevel {
        /// Equal values.
        Exact => "exact",
            "Same value";
        /// Different values.
        Different => "different",
            "Different value";
        /// A value is missing or blank.
        Missing => "missing",
            "Value missing on one side";
    }
}

/// Compares two values as wholes: `Missing` when a side is `None` or blank, else `Exact` when
/// equal (byte for byte), else `Different`. Callers pass canonical values (sex code, cleaned
/// KK digits); nothing is trimmed or case-folded.
pub fn compare_exact(a: Option<&str>, b: Option<&str>) -> ExactLevel {
    fn present(v: Option<&str>) -> Option<&str> {
        v.filter(|s| !s.trim().is_empty())
    }
    match (present(a), present(b)) {
        (Some(a), Some(b)) if a == b => ExactLevel::Exact,
        (Some(_), Some(_)) => ExactLevel::Different,
        _ => ExactLevel::Missing,
    }
}

levels! {
    /// How two places of residence agree, by Kemendagri code.
    RegionLevel {
        /// Same village (desa/kelurahan).
        SameVillage => "same_village",
            "Same village";
        /// Same district (kecamatan), different or unknown village.
        SameDistrict => "same_district",
            "Same kecamatan, not the same village";
        /// Same regency or city (kabupaten/kota), different or unknown district.
        SameRegency => "same_regency",
            "Same kabupaten or kota, not the same kecamatan";
        /// Same province only.
        SameProvince => "same_province",
            "Same province, not the same kabupaten or kota";
        /// Codes known at a common level on both sides, and none agrees.
        Different => "different",
            "Different province, or no common code agrees";
        /// No level has a code on both sides, or the region is not counted because the two
        /// records share a KK (a family card has one address: counting both would count the
        /// same evidence twice, and family members would look like one person).
        Missing => "missing",
            "Region missing on one side, or not counted because the KK agrees (one family card, one address)";
    }
}

/// Administrative levels, most precise last, in the order of the arrays that
/// [`compare_region`] takes.
const ADMIN_LEVELS: [AdminLevel; 4] = [
    AdminLevel::Province,
    AdminLevel::Regency,
    AdminLevel::District,
    AdminLevel::Village,
];

/// Compares two places given as `[province, regency, district, village]` undotted
/// Kemendagri codes (`36`, `3601`, `360101`, `3601012001`, as staged).
///
/// A level without a code takes it from a more precise code of the same side, since
/// Kemendagri codes nest (`3601012001` gives district `360101`). From the village up to the
/// province, the first level where both sides have a code and the codes are equal wins
/// (`SameVillage` ... `SameProvince`); if both sides had a code at some level but none agreed,
/// `Different`; if no level had a code on both sides, `Missing`. Blank codes count as absent.
pub fn compare_region(a: [Option<&str>; 4], b: [Option<&str>; 4]) -> RegionLevel {
    const SAME: [RegionLevel; 4] = [
        RegionLevel::SameProvince,
        RegionLevel::SameRegency,
        RegionLevel::SameDistrict,
        RegionLevel::SameVillage,
    ];
    let mut compared = false;
    for (at, same) in SAME.iter().enumerate().rev() {
        if let (Some(x), Some(y)) = (code_at(&a, at), code_at(&b, at)) {
            if x == y {
                return *same;
            }
            compared = true;
        }
    }
    if compared {
        RegionLevel::Different
    } else {
        RegionLevel::Missing
    }
}

/// The code of one side at administrative level `at` (index into [`ADMIN_LEVELS`]): its own,
/// or the prefix of a more precise digit code.
fn code_at<'a>(codes: &[Option<&'a str>; 4], at: usize) -> Option<&'a str> {
    let present = |c: &Option<&'a str>| c.map(str::trim).filter(|s| !s.is_empty());
    if let Some(own) = codes.get(at).and_then(present) {
        return Some(own);
    }
    let len = ADMIN_LEVELS.get(at)?.code_len();
    codes
        .iter()
        .skip(at + 1)
        .filter_map(present)
        .find(|c| c.len() > len && all_digits(c))
        .and_then(|c| c.get(..len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::names::normalize_name;

    // ---- level metadata ------------------------------------------------------------------

    fn check_levels<L: Level + std::fmt::Debug>() {
        let all = L::all();
        let mut codes: Vec<&str> = all.iter().map(|l| l.code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')),
            "{codes:?}"
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are unique");
        for (i, level) in all.iter().enumerate() {
            assert_eq!(level.index(), i, "{level:?}");
            assert!(level.label().len() > 5, "{level:?}");
        }
        assert_eq!(all.last().map(|l| l.code()), Some("missing"));
    }

    #[test]
    fn levels_are_data() {
        check_levels::<NikLevel>();
        check_levels::<NameLevel>();
        check_levels::<DateLevel>();
        check_levels::<ExactLevel>();
        check_levels::<RegionLevel>();
        assert_eq!(NikLevel::ALL.len(), 7);
        assert_eq!(NameLevel::ALL.len(), 7);
        assert_eq!(DateLevel::ALL.len(), 7);
        assert_eq!(RegionLevel::ALL.len(), 6);
        assert_eq!(
            NikLevel::SameRegionDateOtherSerial.code(),
            "same_region_date_other_serial"
        );
        assert!(
            NikLevel::SameRegionDateOtherSerial
                .label()
                .contains("different person")
        );
        assert_eq!(NameLevel::JaroWinklerHigh.code(), "jaro_winkler_high");
        assert_eq!(DateLevel::PlaceholderEither.code(), "placeholder_either");
    }

    // ---- NIK -----------------------------------------------------------------------------

    fn full(nik: &str) -> NikValue<'_> {
        NikValue {
            nik: Some(nik),
            known_prefix: None,
        }
    }

    fn damaged(prefix: &str) -> NikValue<'_> {
        NikValue {
            nik: None,
            known_prefix: Some(prefix),
        }
    }

    const NONE: NikValue<'static> = NikValue {
        nik: None,
        known_prefix: None,
    };

    /// A woman born 12-05-1985, first registered in Sumur (360101), serial 0001.
    const SITI: &str = "3601015205850001";

    #[test]
    fn niks_with_both_sides_complete() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, NikLevel, &str)] = &[
            (SITI, SITI, NikLevel::Exact, "same number"),
            // Typos in the region or date part.
            (SITI, "3601015205860001", NikLevel::OneSubstitution, "year 85 -> 86"),
            (SITI, "3601015206850001", NikLevel::OneSubstitution, "month 05 -> 06"),
            (SITI, "3601025205850001", NikLevel::OneSubstitution, "district 01 -> 02"),
            (SITI, "3601015208550001", NikLevel::AdjacentTransposition, "05 85 -> 08 55"),
            (SITI, "3610015205850001", NikLevel::AdjacentTransposition, "regency 01 -> 10"),
            (SITI, "3601012505850001", NikLevel::AdjacentTransposition, "day 52 -> 25"),
            // Last year digit swapped with the first serial digit: the date changed.
            (SITI, "3601015205805001", NikLevel::AdjacentTransposition, "5|0 -> 0|5"),
            // The trap: same region and date, other serial -> another person.
            (SITI, "3601015205850002", NikLevel::SameRegionDateOtherSerial, "0001 / 0002"),
            ("3601015205850012", "3601015205850021", NikLevel::SameRegionDateOtherSerial, "serial swap"),
            (SITI, "3601015205854321", NikLevel::SameRegionDateOtherSerial, "far serials"),
            // Opposite-sex twins: day 12 (boy) and 52 (girl), both serial 0001.
            ("3601011205850001", SITI, NikLevel::SameRegionDateOtherSerial, "+40 only"),
            ("3601011205850002", SITI, NikLevel::SameRegionDateOtherSerial, "+40 and serial"),
            // Day 52 -> 62 is an ordinary typo, not the +40.
            (SITI, "3601016205850001", NikLevel::OneSubstitution, "day 52 -> 62"),
            (SITI, "3201015205850001", NikLevel::OneSubstitution, "province 36 -> 32"),
            // Two typos, or a typo plus another serial.
            (SITI, "3601015206860001", NikLevel::Different, "two substitutions"),
            (SITI, "3601015205860002", NikLevel::Different, "date typo and serial"),
            (SITI, "3201021201900003", NikLevel::Different, "another person"),
            // Not an adjacent swap: positions 6 and 8.
            (SITI, "3601010225850001", NikLevel::Different, "52 05 -> 02 25"),
        ];
        for &(a, b, want, why) in cases {
            assert_eq!(compare_nik(&full(a), &full(b)), want, "{why}: {a} {b}");
            assert_eq!(compare_nik(&full(b), &full(a)), want, "{why} (swapped)");
        }
    }

    #[test]
    fn niks_damaged_by_spreadsheets() {
        #[rustfmt::skip]
        let cases: &[(NikValue, NikValue, NikLevel, &str)] = &[
            // 15 digits kept by a numeric cell: only the last serial digit is unknown.
            (damaged("360101520585000"), full(SITI), NikLevel::SpreadsheetCompatible, "15-digit prefix"),
            (damaged("360101520585000"), damaged("360101520585000"), NikLevel::SpreadsheetCompatible, "both damaged"),
            (damaged("36010152058"), full(SITI), NikLevel::SpreadsheetCompatible, "11 digits"),
            (damaged("36010152058"), damaged("360101520585000"), NikLevel::SpreadsheetCompatible, "prefix extends prefix"),
            (damaged("360101"), full(SITI), NikLevel::SpreadsheetCompatible, "district only"),
            // Known serial digits differ: another person of the same day and kecamatan.
            (damaged("360101520585001"), full(SITI), NikLevel::SameRegionDateOtherSerial, "serial 001x / 0001"),
            // Known digits contradict in the date part.
            (damaged("360101520586000"), full(SITI), NikLevel::Different, "year differs"),
            (damaged("36020"), full(SITI), NikLevel::Different, "regency differs"),
            // `3.60101E+15` leaves five sure digits: too few to say anything.
            (damaged("36010"), full(SITI), NikLevel::Missing, "five digits agree"),
            (damaged("36010"), damaged("360101520585000"), NikLevel::Missing, "five digits, both damaged"),
        ];
        for (a, b, want, why) in cases {
            assert_eq!(compare_nik(a, b), *want, "{why}");
            assert_eq!(compare_nik(b, a), *want, "{why} (swapped)");
        }
    }

    #[test]
    fn niks_missing_or_unusable() {
        assert_eq!(compare_nik(&NONE, &full(SITI)), NikLevel::Missing);
        assert_eq!(compare_nik(&full(SITI), &NONE), NikLevel::Missing);
        assert_eq!(compare_nik(&NONE, &NONE), NikLevel::Missing);
        // Not sixteen digits: ignored.
        assert_eq!(
            compare_nik(&full("3601O15205850001"), &full(SITI)),
            NikLevel::Missing
        );
        assert_eq!(
            compare_nik(&full("360101520585"), &full(SITI)),
            NikLevel::Missing
        );
        assert_eq!(compare_nik(&damaged(""), &full(SITI)), NikLevel::Missing);
        assert_eq!(
            compare_nik(&damaged("3.60101"), &full(SITI)),
            NikLevel::Missing
        );
        // The full number wins over a prefix on the same side.
        let both = NikValue {
            nik: Some(SITI),
            known_prefix: Some("3201"),
        };
        assert_eq!(compare_nik(&both, &full(SITI)), NikLevel::Exact);
    }

    #[test]
    fn nik_values_come_from_parsed_numbers() {
        use crate::normalize::nik::{NikContext, parse_nik};
        let today = NaiveDate::from_ymd_opt(2025, 10, 31).expect("valid date");
        let ctx = NikContext::new(today);
        let typed = parse_nik("'3601 0152 0585 0001", &ctx);
        let cell = parse_nik("360101520585000", &ctx);
        let twin = parse_nik("3601015205850002", &ctx);
        let blank = parse_nik("-", &ctx);
        let v = NikValue::from_parsed;
        assert_eq!(compare_nik(&v(&typed), &full(SITI)), NikLevel::Exact);
        assert_eq!(
            compare_nik(&v(&cell), &v(&typed)),
            NikLevel::SpreadsheetCompatible
        );
        assert_eq!(
            compare_nik(&v(&twin), &v(&typed)),
            NikLevel::SameRegionDateOtherSerial
        );
        assert_eq!(compare_nik(&v(&blank), &v(&typed)), NikLevel::Missing);
    }

    // ---- names ---------------------------------------------------------------------------

    fn key(raw: &str) -> String {
        normalize_name(raw).name
    }

    #[test]
    fn names_compared_after_normalisation() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, NameLevel)] = &[
            // Titles, variants and old spelling are gone before comparing.
            ("HJ. SITI AMINAH", "SITI AMINAH", NameLevel::Exact),
            ("MOCH. RIDWAN", "MUHAMMAD RIDWAN", NameLevel::Exact),
            ("SOEKARNO", "SUKARNO", NameLevel::Exact),
            ("Drs. H. Abd. Manaf, M.M", "ABDUL MANAF", NameLevel::Exact),
            ("SOEMIJATI BINTI ABD. MANAF", "SUMIYATI", NameLevel::Exact),
            // One letter.
            ("AMINAH", "AMINA", NameLevel::JaroWinklerHigh),
            ("SITI AMINAH", "SITI AMINA", NameLevel::JaroWinklerHigh),
            // Similar, but not that similar: often two different people (SUMARNI is a woman).
            ("SUMARNI", "SUMARNO", NameLevel::JaroWinklerMedium),
            // Tokens reordered or dropped.
            ("BUDI SANTOSO", "SANTOSO BUDI", NameLevel::TokenSet),
            ("SITI AMINAH", "AMINAH", NameLevel::TokenSet),
            ("NUR HAYATI", "HAYATI NUR", NameLevel::TokenSet),
            // Same token key, reordered: ZAINAL / JAINAL.
            ("JAINAL ABIDIN", "ABIDIN ZAINAL", NameLevel::TokenSet),
            // Initials.
            ("S. AMINAH", "SITI AMINAH", NameLevel::Initials),
            ("AMINAH S", "SITI AMINAH", NameLevel::Initials),
            ("B. SANTOSO", "SANTOSO BUDI", NameLevel::Initials),
            // Common short names are not close...
            ("SITI", "SRI", NameLevel::Different),
            // ...except when one letter is all they have: DEWI and DWI are different names,
            // but Jaro-Winkler puts them at 0.925. Term frequency and the other fields decide.
            ("DEWI", "DWI", NameLevel::JaroWinklerMedium),
            ("AGUS SALIM", "BUDI SANTOSO", NameLevel::Different),
            // Initials alone prove nothing.
            ("S. A.", "SITI AMINAH", NameLevel::Different),
            ("S. AMINAH", "SRI WAHYUNI", NameLevel::Different),
            // Missing.
            ("", "SITI AMINAH", NameLevel::Missing),
            ("-", "-", NameLevel::Missing),
        ];
        for &(a, b, want) in cases {
            let (ka, kb) = (key(a), key(b));
            assert_eq!(
                compare_names(&ka, &kb),
                want,
                "{a:?} / {b:?} ({ka:?} / {kb:?})"
            );
            assert_eq!(compare_names(&kb, &ka), want, "{b:?} / {a:?} (swapped)");
        }
    }

    #[test]
    fn names_are_not_normalised_again() {
        // Raw names with titles are not equal keys: the caller must normalise.
        assert_ne!(
            compare_names("HJ SITI AMINAH", "SITI AMINAH"),
            NameLevel::Exact
        );
        // Spaces only separate tokens.
        assert_eq!(
            compare_names("SITI  AMINAH ", "SITI AMINAH"),
            NameLevel::Exact
        );
        assert_eq!(compare_names("   ", "SITI"), NameLevel::Missing);
    }

    #[test]
    fn token_matching_needs_distinct_tokens() {
        // Both SITI tokens of the shorter name would need the one SITI of the longer.
        assert_ne!(
            compare_names("SITI SITI", "SITI AMINAH RAHMAN"),
            NameLevel::TokenSet
        );
        // A single letter matches only with initials.
        assert_eq!(compare_names("S SANTI", "SANTI SITI"), NameLevel::Initials);
        // Augmenting paths find the assignment a greedy one misses: row 0 could take column 0
        // or 1, row 1 only column 0.
        let edges = [true, true, true, false];
        assert!(covers_rows(&edges, 2, 2, None));
        assert!(covers_rows(&edges, 2, 2, Some((1, 0))));
        assert!(!covers_rows(&edges, 2, 2, Some((0, 0))));
        assert!(!covers_rows(&[true, false, true, false], 2, 2, None));
        let pairs = TokenPairs::new(&["S", "SITI"], &["SITI", "SARI"]);
        assert!(!pairs.token_set());
        assert!(pairs.initials());
    }

    #[test]
    fn rarest_token_for_term_frequency() {
        let freq = |t: &str| match t {
            "SITI" => 0.05,
            "MUHAMMAD" => 0.04,
            "AMINAH" => 0.002,
            _ => 0.0001,
        };
        assert_eq!(rarest_token("SITI AMINAH", &freq), Some("AMINAH"));
        assert_eq!(rarest_token("MUHAMMAD KOMARUDIN", &freq), Some("KOMARUDIN"));
        assert_eq!(rarest_token("SITI", &freq), Some("SITI"));
        assert_eq!(rarest_token("", &freq), None);
        // Ties: the first token.
        assert_eq!(rarest_token("ALPHA BETA", &|_| 1.0), Some("ALPHA"));
    }

    // ---- dates ---------------------------------------------------------------------------

    fn d(y: i32, m: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, day)
    }

    #[test]
    fn birth_dates() {
        let cases: &[(Option<NaiveDate>, Option<NaiveDate>, DateLevel)] = &[
            (d(1985, 5, 12), d(1985, 5, 12), DateLevel::Exact),
            (d(1985, 5, 12), d(1985, 12, 5), DateLevel::DayMonthSwapped),
            (d(1985, 5, 12), d(1985, 5, 13), DateLevel::OneComponentOff),
            (d(1985, 5, 12), d(1985, 6, 12), DateLevel::OneComponentOff),
            (d(1985, 5, 12), d(1958, 5, 12), DateLevel::OneComponentOff),
            (d(1985, 5, 12), d(1986, 5, 12), DateLevel::OneComponentOff),
            // Placeholders: 31 Dec before 2004, 1 Jul since, 1 Jan any year.
            (d(1960, 12, 31), d(1960, 3, 4), DateLevel::PlaceholderEither),
            (d(1985, 5, 12), d(1985, 1, 1), DateLevel::PlaceholderEither),
            (d(2010, 7, 1), d(2010, 7, 2), DateLevel::PlaceholderEither),
            (d(1960, 12, 31), d(1960, 12, 31), DateLevel::Exact),
            // 1 Jul before 2004 is a real date.
            (d(1980, 7, 1), d(1980, 7, 2), DateLevel::OneComponentOff),
            // Two components differ, year within one.
            (d(1985, 5, 12), d(1986, 6, 20), DateLevel::YearWithinOne),
            (d(1985, 5, 12), d(1986, 12, 5), DateLevel::YearWithinOne),
            (d(1985, 5, 12), d(1985, 6, 13), DateLevel::YearWithinOne),
            (d(1985, 5, 12), d(1990, 2, 3), DateLevel::Different),
            (d(1985, 5, 12), d(1987, 6, 12), DateLevel::Different),
            (None, d(1985, 5, 12), DateLevel::Missing),
            (None, None, DateLevel::Missing),
            (None, d(1960, 12, 31), DateLevel::Missing),
        ];
        for &(a, b, want) in cases {
            assert_eq!(compare_dates(a, b), want, "{a:?} / {b:?}");
            assert_eq!(compare_dates(b, a), want, "{b:?} / {a:?} (swapped)");
        }
    }

    // ---- exact fields and regions --------------------------------------------------------

    #[test]
    fn exact_fields() {
        #[rustfmt::skip]
        let cases: &[(Option<&str>, Option<&str>, ExactLevel)] = &[
            (Some("F"), Some("F"), ExactLevel::Exact),
            (Some("M"), Some("F"), ExactLevel::Different),
            (Some("3601012003150007"), Some("3601012003150007"), ExactLevel::Exact),
            (Some("3601012003150007"), Some("3601012003150008"), ExactLevel::Different),
            (None, Some("F"), ExactLevel::Missing),
            (Some(" "), Some("F"), ExactLevel::Missing),
            (None, None, ExactLevel::Missing),
        ];
        for &(a, b, want) in cases {
            assert_eq!(compare_exact(a, b), want, "{a:?} / {b:?}");
            assert_eq!(compare_exact(b, a), want, "{b:?} / {a:?}");
        }
    }

    #[test]
    fn regions() {
        // Sumur (360101) in Pandeglang (3601), Banten (36); Cimanggu (360102); Lebak (3602);
        // Bogor (3201) in West Java (32).
        let kertajaya = [Some("36"), Some("3601"), Some("360101"), Some("3601012001")];
        let tamanjaya = [Some("36"), Some("3601"), Some("360101"), Some("3601012002")];
        let cimanggu = [Some("36"), Some("3601"), Some("360102"), Some("3601022001")];
        let lebak = [Some("36"), Some("3602"), Some("360201"), None];
        let bogor = [Some("32"), Some("3201"), Some("320101"), Some("3201012001")];
        let village_only = [None, None, None, Some("3601012002")];
        let district_only = [None, None, Some("360101"), None];
        let province_only = [Some("36"), None, None, None];
        let blank = [Some(""), Some(" "), None, None];
        let nothing = [None; 4];
        type Codes = [Option<&'static str>; 4];
        let cases: &[(Codes, Codes, RegionLevel)] = &[
            (kertajaya, kertajaya, RegionLevel::SameVillage),
            (kertajaya, tamanjaya, RegionLevel::SameDistrict),
            (kertajaya, cimanggu, RegionLevel::SameRegency),
            (kertajaya, lebak, RegionLevel::SameProvince),
            (kertajaya, bogor, RegionLevel::Different),
            // Coarser codes come from finer ones.
            (village_only, tamanjaya, RegionLevel::SameVillage),
            (village_only, district_only, RegionLevel::SameDistrict),
            (village_only, kertajaya, RegionLevel::SameDistrict),
            (village_only, lebak, RegionLevel::SameProvince),
            (province_only, kertajaya, RegionLevel::SameProvince),
            (province_only, bogor, RegionLevel::Different),
            (district_only, cimanggu, RegionLevel::SameRegency),
            // Nothing in common to compare.
            (blank, kertajaya, RegionLevel::Missing),
            (nothing, kertajaya, RegionLevel::Missing),
            (nothing, nothing, RegionLevel::Missing),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_region(*a, *b), *want, "{a:?} / {b:?}");
            assert_eq!(compare_region(*b, *a), *want, "{b:?} / {a:?}");
        }
    }
}
