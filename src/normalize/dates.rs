//! Birth and death dates: parsing with a layout's formats, placeholders and plausibility.
//!
//! Agencies write dates every way (`12-05-1985`, `1985-05-12`, `12/05/1985`, Excel date cells,
//! which readers hand over as ISO `1985-05-12`). A layout lists the formats of each date column
//! (chrono `strftime` patterns); ISO is always tried last because spreadsheet date cells arrive
//! that way. Every format is tried on the whole value first; only when none reads it is a
//! trailing time (`1985-05-12 00:00:00`, `12/05/1985T10:30`) cut off and the formats tried
//! again, so formats with spaces (`%d %B %Y`) work. Formats with month names (`%b`, `%B`) also
//! read Indonesian names and abbreviations (`12 Oktober 1985`, `12-AGS-1985`). A two-digit year
//! (`%y`) that would put the date after the run date is read in the previous century.
//!
//! Unknown birth dates are registered as placeholders (31 Dec before 2004, 1 Jul since, 1 Jan in
//! practice) and surveys write `98` for an unknown day or month. Such dates are kept but flagged
//! [`QualityFlag::BirthDatePlaceholder`] so that matching weighs them weakly.

use std::borrow::Cow;

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate};

use super::{QualityFlag, QualityFlags};

/// The implicit last format: ISO dates, which is how spreadsheet date cells are handed over.
pub const ISO_FORMAT: &str = "%Y-%m-%d";

/// Survey code for an unknown day or month.
const UNKNOWN_COMPONENT: &str = "98";

/// The year placeholders changed: 31 Dec before it, 1 Jul from it on.
const PLACEHOLDER_RULE_CHANGE: i32 = 2004;

/// Indonesian month names and abbreviations that differ from the English ones chrono reads,
/// matched as whole words, case-insensitive: `(indonesian, english)`.
const INDONESIAN_MONTHS: &[(&str, &str)] = &[
    ("JANUARI", "January"),
    ("FEBRUARI", "February"),
    ("MARET", "March"),
    ("MEI", "May"),
    ("JUNI", "June"),
    ("JULI", "July"),
    ("AGUSTUS", "August"),
    ("OKTOBER", "October"),
    ("DESEMBER", "December"),
    ("AGS", "Aug"),
    ("AGT", "Aug"),
    ("OKT", "Oct"),
    ("DES", "Dec"),
];

/// Checks a chrono format string; returns a readable problem when it cannot parse dates.
pub fn check_format(format: &str) -> Result<(), String> {
    let items: Vec<Item> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "'{format}' is not a valid date pattern (use chrono strftime syntax such as %d-%m-%Y)"
        ));
    }
    let has = |spec: &[&str]| spec.iter().any(|s| format.contains(s));
    if !has(&["%Y", "%y"]) || !has(&["%m", "%b", "%B"]) || !has(&["%d", "%e"]) {
        return Err(format!(
            "'{format}' must contain a day (%d), a month (%m or %b) and a year (%Y or %y)"
        ));
    }
    Ok(())
}

/// A parsed date and what was noticed while parsing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedDate {
    /// The date, when one could be read.
    pub date: Option<NaiveDate>,
    /// True when the value was a placeholder or carried a `98` (unknown) component.
    pub placeholder: bool,
    /// True when a value was present but no format read it.
    pub unparsed: bool,
}

/// Parses `raw` with each format in turn, then ISO. Blank input gives no date and no problem.
///
/// The whole trimmed value is tried first; only when no format reads it is a trailing time
/// (a space or `T` followed by `HH:MM...`) removed and the formats tried again. Formats with
/// `%b`/`%B` also read Indonesian month names. A date read with `%y` that lies after `today`
/// is moved back a century (chrono reads `50` as 2050). A survey `98` for an unknown day or
/// month is read as the 15th / July and flagged as a placeholder.
pub fn parse_date(raw: &str, formats: &[String], today: NaiveDate) -> ParsedDate {
    let value = raw.trim();
    if value.is_empty() || value == "-" || value.eq_ignore_ascii_case("null") {
        return ParsedDate {
            date: None,
            placeholder: false,
            unparsed: false,
        };
    }
    let formats: Vec<&str> = formats
        .iter()
        .map(String::as_str)
        .chain([ISO_FORMAT])
        .collect();
    // The whole value first, then without a trailing time ("1985-05-12 00:00:00").
    let candidates: Vec<&str> = [Some(value), strip_time(value)]
        .into_iter()
        .flatten()
        .collect();
    for candidate in &candidates {
        if let Some(date) = parse_with_formats(candidate, &formats, today) {
            return ParsedDate {
                date: Some(date),
                placeholder: is_placeholder(date),
                unparsed: false,
            };
        }
    }
    // A survey's 98 for an unknown day or month: read it as the 15th / July and flag it.
    for candidate in candidates.iter().filter(|c| c.contains(UNKNOWN_COMPONENT)) {
        for format in &formats {
            if let Some(repaired) = replace_unknown_components(candidate, format)
                && let Some(date) = parse_one(&repaired, format, today)
            {
                return ParsedDate {
                    date: Some(date),
                    placeholder: true,
                    unparsed: false,
                };
            }
        }
    }
    ParsedDate {
        date: None,
        placeholder: false,
        unparsed: true,
    }
}

/// The first format that reads `value`, in order.
fn parse_with_formats(value: &str, formats: &[&str], today: NaiveDate) -> Option<NaiveDate> {
    formats
        .iter()
        .find_map(|format| parse_one(value, format, today))
}

/// Parses with one format: Indonesian month names translated when the format has month
/// names, and a `%y` year after `today` moved back a century.
fn parse_one(value: &str, format: &str, today: NaiveDate) -> Option<NaiveDate> {
    let value = if ["%b", "%B", "%h"].iter().any(|m| format.contains(m)) {
        english_months(value)
    } else {
        Cow::Borrowed(value)
    };
    let date = NaiveDate::parse_from_str(&value, format).ok()?;
    if format.contains("%y") && date > today {
        // 2001-2068 and 1901-1968 have the same leap years, so this cannot fail in practice.
        return date.with_year(date.year() - 100).or(Some(date));
    }
    Some(date)
}

/// Replaces whole-word Indonesian month names and abbreviations (case-insensitive) by the
/// English ones chrono reads: `12 Oktober 1985` -> `12 October 1985`, `12-AGS-85` -> `12-Aug-85`.
fn english_months(value: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut word_start = None;
    // A sentinel position after the end closes the last word.
    let ends = value
        .char_indices()
        .map(|(i, c)| (i, Some(c)))
        .chain([(value.len(), None)]);
    for (i, c) in ends {
        let letter = c.is_some_and(char::is_alphabetic);
        match (letter, word_start) {
            (true, None) => word_start = Some(i),
            (false, Some(start)) => {
                word_start = None;
                let word = value.get(start..i).unwrap_or_default();
                if let Some((_, english)) = INDONESIAN_MONTHS
                    .iter()
                    .find(|(indonesian, _)| word.eq_ignore_ascii_case(indonesian))
                {
                    out.push_str(value.get(copied..start).unwrap_or_default());
                    out.push_str(english);
                    copied = i;
                }
            }
            _ => {}
        }
    }
    if copied == 0 {
        return Cow::Borrowed(value);
    }
    out.push_str(value.get(copied..).unwrap_or_default());
    Cow::Owned(out)
}

/// The value without a trailing time: the part before the first space or `T` that is followed
/// by `H:MM` or `HH:MM` (also `HH.MM`) and anything after it. `None` when there is none.
fn strip_time(value: &str) -> Option<&str> {
    value.char_indices().find_map(|(i, c)| {
        let rest = value.get(i + c.len_utf8()..)?;
        let rest = match c {
            ' ' => rest.trim_start(),
            'T' | 't' => rest,
            _ => return None,
        };
        let date = value.get(..i)?.trim_end();
        (!date.is_empty() && looks_like_time(rest)).then_some(date)
    })
}

/// `H:MM` or `HH:MM` (or with a dot) at the start of `s`.
fn looks_like_time(s: &str) -> bool {
    let bytes = s.as_bytes();
    let hour_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=2).contains(&hour_len) {
        return false;
    }
    let minutes = bytes.get(hour_len + 1..hour_len + 3);
    matches!(bytes.get(hour_len), Some(b':' | b'.'))
        && minutes.is_some_and(|m| m.iter().all(u8::is_ascii_digit))
        && !bytes.get(hour_len + 3).is_some_and(u8::is_ascii_digit)
}

/// Replaces a `98` day with `15` and a `98` month with `07`, using the format's field order.
fn replace_unknown_components(value: &str, format: &str) -> Option<String> {
    let order: Vec<char> = format
        .split('%')
        .skip(1)
        .filter_map(|s| s.chars().next())
        .filter(|c| matches!(c, 'd' | 'm' | 'Y' | 'y'))
        .collect();
    let parts: Vec<&str> = value
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() != order.len() || order.len() != 3 {
        return None;
    }
    let mut changed = false;
    // Rebuild from parts in order, keeping the original separators.
    let mut rebuilt = String::with_capacity(value.len());
    let mut rest = value;
    for (part, field) in parts.iter().zip(order.iter()) {
        let pos = rest.find(part)?;
        rebuilt.push_str(&rest[..pos]);
        let replacement = match (*field, *part) {
            ('d', UNKNOWN_COMPONENT) => Some("15"),
            ('m', UNKNOWN_COMPONENT) => Some("07"),
            _ => None,
        };
        match replacement {
            Some(r) => {
                rebuilt.push_str(r);
                changed = true;
            }
            None => rebuilt.push_str(part),
        }
        rest = &rest[pos + part.len()..];
    }
    rebuilt.push_str(rest);
    changed.then_some(rebuilt)
}

/// True for the dates registries use when the real one is unknown: 31 Dec for years before
/// 2004, 1 Jul for 2004 and later, and 1 Jan in any year (common in practice).
pub fn is_placeholder(date: NaiveDate) -> bool {
    match (date.day(), date.month()) {
        (1, 1) => true,
        (31, 12) => date.year() < PLACEHOLDER_RULE_CHANGE,
        (1, 7) => date.year() >= PLACEHOLDER_RULE_CHANGE,
        _ => false,
    }
}

/// Quality flags of a birth date, given the run's reference date.
pub fn birth_date_flags(parsed: &ParsedDate, raw_present: bool, today: NaiveDate) -> QualityFlags {
    let mut flags = QualityFlags::EMPTY;
    if !raw_present {
        flags.insert(QualityFlag::BirthDateMissing);
        return flags;
    }
    if parsed.unparsed {
        flags.insert(QualityFlag::BirthDateUnparsed);
    }
    if parsed.placeholder {
        flags.insert(QualityFlag::BirthDatePlaceholder);
    }
    if let Some(date) = parsed.date {
        if date > today {
            flags.insert(QualityFlag::BirthDateFuture);
        } else if date.year() < 1900 || today.year() - date.year() > 120 {
            flags.insert(QualityFlag::BirthDateImplausible);
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn formats(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Run date used by the tests: 31 October 2025.
    fn today() -> NaiveDate {
        d(2025, 10, 31)
    }

    fn parse(raw: &str, f: &[String]) -> ParsedDate {
        parse_date(raw, f, today())
    }

    #[test]
    fn each_declared_format_is_tried_then_iso() {
        let f = formats(&["%d-%m-%Y", "%d/%m/%Y"]);
        assert_eq!(parse("12-05-1985", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(parse("12/05/1985", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(parse("1985-05-12", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(parse(" 1985-05-12 00:00:00", &f).date, Some(d(1985, 5, 12)));
        let bad = parse("12.05.85", &f);
        assert!(bad.unparsed && bad.date.is_none());
        let blank = parse("  ", &f);
        assert!(!blank.unparsed && blank.date.is_none());
    }

    #[test]
    fn a_trailing_time_is_removed_only_when_nothing_reads_the_whole_value() {
        let f = formats(&["%d/%m/%Y", "%d %m %Y"]);
        for raw in [
            "1985-05-12T00:00:00",
            "1985-05-12T00:00:00Z",
            "1985-05-12 00:00:00.000",
            "12/05/1985 0:00",
            "12/05/1985  10:30:15",
            "12/05/1985 10.30",
            "12 05 1985",
            "12 05 1985 10:30",
        ] {
            let p = parse(raw, &f);
            assert_eq!(p.date, Some(d(1985, 5, 12)), "{raw}");
            assert!(!p.unparsed && !p.placeholder, "{raw}");
        }
        // A format that reads the time itself wins on the whole value.
        let with_time = formats(&["%d/%m/%Y %H:%M"]);
        assert_eq!(
            parse("12/05/1985 10:30", &with_time).date,
            Some(d(1985, 5, 12))
        );
        // Text after the date that is no time is not cut off.
        assert!(parse("12/05/1985 kira-kira", &f).unparsed);
        assert_eq!(strip_time("12 05 1985 10:30"), Some("12 05 1985"));
        assert_eq!(strip_time("1985-05-12T10:30"), Some("1985-05-12"));
        assert_eq!(strip_time("12 OKT 1985"), None);
        assert_eq!(strip_time("12 05 1985"), None);
        assert_eq!(strip_time("12:30"), None);
    }

    #[test]
    fn formats_with_spaces_and_english_month_names() {
        let f = formats(&["%d %B %Y", "%d-%b-%Y"]);
        assert_eq!(parse("12 October 1985", &f).date, Some(d(1985, 10, 12)));
        assert_eq!(parse("12-OCT-1985", &f).date, Some(d(1985, 10, 12)));
        assert_eq!(parse("12-oct-1985", &f).date, Some(d(1985, 10, 12)));
        assert_eq!(
            parse("12 October 1985 00:00:00", &f).date,
            Some(d(1985, 10, 12))
        );
    }

    #[test]
    fn indonesian_month_names_with_b_formats() {
        let long = formats(&["%d %B %Y"]);
        for (name, month) in [
            ("Januari", 1),
            ("FEBRUARI", 2),
            ("maret", 3),
            ("April", 4),
            ("Mei", 5),
            ("JUNI", 6),
            ("Juli", 7),
            ("Agustus", 8),
            ("September", 9),
            ("OKTOBER", 10),
            ("November", 11),
            ("desember", 12),
        ] {
            let raw = format!("12 {name} 1985");
            assert_eq!(parse(&raw, &long).date, Some(d(1985, month, 12)), "{raw}");
        }
        let short = formats(&["%d-%b-%Y"]);
        for (abbr, month) in [
            ("JAN", 1),
            ("MEI", 5),
            ("AGS", 8),
            ("Agt", 8),
            ("OKT", 10),
            ("okt", 10),
            ("DES", 12),
        ] {
            let raw = format!("12-{abbr}-1985");
            assert_eq!(parse(&raw, &short).date, Some(d(1985, month, 12)), "{raw}");
        }
        assert_eq!(
            parse("12 Oktober 1985 10:30", &long).date,
            Some(d(1985, 10, 12))
        );
        // Month names are translated only for formats with month names.
        assert!(parse("12 Mei 1985", &formats(&["%d %m %Y"])).unparsed);
        // Whole words only.
        assert_eq!(english_months("12 Mei 1985"), "12 May 1985");
        assert_eq!(english_months("12-ags-85"), "12-Aug-85");
        assert_eq!(english_months("DESEMBERAN MEIRA"), "DESEMBERAN MEIRA");
        assert!(matches!(english_months("12 May 1985"), Cow::Borrowed(_)));
    }

    #[test]
    fn two_digit_years_are_not_put_in_the_future() {
        let f = formats(&["%d-%m-%y"]);
        assert_eq!(parse("12-05-50", &f).date, Some(d(1950, 5, 12)));
        assert_eq!(parse("12-05-85", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(parse("12-05-05", &f).date, Some(d(2005, 5, 12)));
        // On or before the run date: this century.
        assert_eq!(parse("31-10-25", &f).date, Some(d(2025, 10, 31)));
        // After it, even in the same year: the previous century.
        assert_eq!(parse("12-11-25", &f).date, Some(d(1925, 11, 12)));
        assert_eq!(parse("29-02-48", &f).date, Some(d(1948, 2, 29)));
        // A survey 98 with a two-digit year.
        let unknown_day = parse("98-05-50", &f);
        assert_eq!(unknown_day.date, Some(d(1950, 5, 15)));
        assert!(unknown_day.placeholder);
        // %Y years are taken as written (and flagged as future later).
        assert_eq!(
            parse("12-05-2050", &formats(&["%d-%m-%Y"])).date,
            Some(d(2050, 5, 12))
        );
    }

    #[test]
    fn survey_98_means_unknown_day_or_month() {
        let f = formats(&["%d-%m-%Y"]);
        let day = parse("98-05-1970", &f);
        assert_eq!(day.date, Some(d(1970, 5, 15)));
        assert!(day.placeholder);
        let month = parse("12-98-1970", &f);
        assert_eq!(month.date, Some(d(1970, 7, 12)));
        let with_time = parse("98-05-1970 00:00:00", &f);
        assert_eq!(with_time.date, Some(d(1970, 5, 15)));
        assert!(with_time.placeholder);
        // 1998 is a year, not an unknown component.
        let year = parse("12-05-1998", &f);
        assert_eq!(year.date, Some(d(1998, 5, 12)));
        assert!(!year.placeholder);
    }

    #[test]
    fn placeholders_follow_the_2004_rule() {
        for date in [
            d(1960, 12, 31),
            d(2003, 12, 31),
            d(2004, 7, 1),
            d(2010, 7, 1),
            d(1975, 1, 1),
            d(2010, 1, 1),
        ] {
            assert!(is_placeholder(date), "{date}");
            let p = ParsedDate {
                date: Some(date),
                placeholder: is_placeholder(date),
                unparsed: false,
            };
            assert!(
                birth_date_flags(&p, true, today()).contains(QualityFlag::BirthDatePlaceholder)
            );
        }
        for date in [
            d(1985, 5, 12),
            d(1980, 7, 1),
            d(2003, 7, 1),
            d(2004, 12, 31),
            d(2010, 12, 31),
        ] {
            assert!(!is_placeholder(date), "{date}");
        }
        let f = formats(&["%d-%m-%Y"]);
        assert!(parse("31-12-1960", &f).placeholder);
        assert!(!parse("01-07-1980", &f).placeholder);
    }

    #[test]
    fn future_and_implausible_dates_are_flagged() {
        let f = formats(&["%d-%m-%Y"]);
        let future = parse("01-02-2030", &f);
        assert!(birth_date_flags(&future, true, today()).contains(QualityFlag::BirthDateFuture));
        let old = parse("03-02-1890", &f);
        assert!(birth_date_flags(&old, true, today()).contains(QualityFlag::BirthDateImplausible));
        let missing = parse("", &f);
        assert!(birth_date_flags(&missing, false, today()).contains(QualityFlag::BirthDateMissing));
    }

    #[test]
    fn format_check_names_the_problem() {
        assert!(check_format("%d-%m-%Y").is_ok());
        assert!(check_format("%d %B %Y").is_ok());
        assert!(check_format("%d-%m").is_err());
        assert!(check_format("%Q-%m-%Y").is_err());
    }
}
