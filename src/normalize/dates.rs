//! Birth and death dates: parsing with a layout's formats, placeholders and plausibility.
//!
//! Agencies write dates every way (`12-05-1985`, `1985-05-12`, `12/05/1985`, Excel date cells,
//! which readers hand over as ISO `1985-05-12`). A layout lists the formats of each date column
//! (chrono `strftime` patterns); ISO is always tried last because spreadsheet date cells arrive
//! that way.
//!
//! Unknown birth dates are registered as placeholders (31 Dec before 2004, 1 Jul since, 1 Jan in
//! practice) and surveys write `98` for an unknown day or month. Such dates are kept but flagged
//! [`QualityFlag::BirthDatePlaceholder`] so that matching weighs them weakly.

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, NaiveDate};

use super::{QualityFlag, QualityFlags};

/// The implicit last format: ISO dates, which is how spreadsheet date cells are handed over.
pub const ISO_FORMAT: &str = "%Y-%m-%d";

/// Survey code for an unknown day or month.
const UNKNOWN_COMPONENT: &str = "98";

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
pub fn parse_date(raw: &str, formats: &[String]) -> ParsedDate {
    let value = raw.trim();
    if value.is_empty() || value == "-" || value.eq_ignore_ascii_case("null") {
        return ParsedDate {
            date: None,
            placeholder: false,
            unparsed: false,
        };
    }
    // Timestamps such as "1985-05-12 00:00:00" or "1985-05-12T00:00:00": the date part counts.
    let value = value
        .split_once(['T', ' '])
        .map_or(value, |(date, _)| date)
        .trim();
    for format in formats.iter().map(String::as_str).chain([ISO_FORMAT]) {
        if let Ok(date) = NaiveDate::parse_from_str(value, format) {
            return ParsedDate {
                date: Some(date),
                placeholder: is_placeholder(date),
                unparsed: false,
            };
        }
    }
    // A survey's 98 for an unknown day or month: read it as the 15th / July and flag it.
    if value.contains(UNKNOWN_COMPONENT) {
        for format in formats.iter().map(String::as_str).chain([ISO_FORMAT]) {
            if let Some(repaired) = replace_unknown_components(value, format)
                && let Ok(date) = NaiveDate::parse_from_str(&repaired, format)
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

/// True for the dates registries use when the real one is unknown: 31 Dec (registered before
/// 2004), 1 Jul (since 2004) and 1 Jan (common in practice).
pub fn is_placeholder(date: NaiveDate) -> bool {
    matches!((date.day(), date.month()), (31, 12) | (1, 7) | (1, 1))
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

    #[test]
    fn each_declared_format_is_tried_then_iso() {
        let f = formats(&["%d-%m-%Y", "%d/%m/%Y"]);
        assert_eq!(parse_date("12-05-1985", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(parse_date("12/05/1985", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(parse_date("1985-05-12", &f).date, Some(d(1985, 5, 12)));
        assert_eq!(
            parse_date(" 1985-05-12 00:00:00", &f).date,
            Some(d(1985, 5, 12))
        );
        let bad = parse_date("12.05.85", &f);
        assert!(bad.unparsed && bad.date.is_none());
        let blank = parse_date("  ", &f);
        assert!(!blank.unparsed && blank.date.is_none());
    }

    #[test]
    fn survey_98_means_unknown_day_or_month() {
        let f = formats(&["%d-%m-%Y"]);
        let day = parse_date("98-05-1970", &f);
        assert_eq!(day.date, Some(d(1970, 5, 15)));
        assert!(day.placeholder);
        let month = parse_date("12-98-1970", &f);
        assert_eq!(month.date, Some(d(1970, 7, 12)));
        // 1998 is a year, not an unknown component.
        let year = parse_date("12-05-1998", &f);
        assert_eq!(year.date, Some(d(1998, 5, 12)));
        assert!(!year.placeholder);
    }

    #[test]
    fn placeholders_are_flagged() {
        let today = d(2025, 10, 31);
        for date in [d(1960, 12, 31), d(2010, 7, 1), d(1975, 1, 1)] {
            let p = ParsedDate {
                date: Some(date),
                placeholder: is_placeholder(date),
                unparsed: false,
            };
            assert!(birth_date_flags(&p, true, today).contains(QualityFlag::BirthDatePlaceholder));
        }
        assert!(!is_placeholder(d(1985, 5, 12)));
    }

    #[test]
    fn future_and_implausible_dates_are_flagged() {
        let today = d(2025, 10, 31);
        let f = formats(&["%d-%m-%Y"]);
        let future = parse_date("01-02-2030", &f);
        assert!(birth_date_flags(&future, true, today).contains(QualityFlag::BirthDateFuture));
        let old = parse_date("03-02-1890", &f);
        assert!(birth_date_flags(&old, true, today).contains(QualityFlag::BirthDateImplausible));
        let missing = parse_date("", &f);
        assert!(birth_date_flags(&missing, false, today).contains(QualityFlag::BirthDateMissing));
    }

    #[test]
    fn format_check_names_the_problem() {
        assert!(check_format("%d-%m-%Y").is_ok());
        assert!(check_format("%d-%m").is_err());
        assert!(check_format("%Q-%m-%Y").is_err());
    }
}
