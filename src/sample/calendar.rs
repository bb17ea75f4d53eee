//! Day-number calendar arithmetic for the generator, and the fixed reference date.
//!
//! Dates are `i32` day numbers (days since 1970-01-01, proleptic Gregorian), converted with
//! Howard Hinnant's civil-date algorithms: pure integer code, no time zone, no clock. Every
//! age and "within the last three years" in the sample is measured against [`REF_DAY`]
//! (2025-10-31), never today's date, so output does not depend on when it is generated.

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ymd {
    /// Year.
    pub y: i32,
    /// Month, 1-12.
    pub m: u32,
    /// Day, 1-31.
    pub d: u32,
}

/// Day number of a civil date.
pub(crate) const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// Civil date of a day number.
pub(crate) const fn civil_from_days(z: i32) -> Ymd {
    let z = z + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    Ymd {
        y: if m <= 2 { y + 1 } else { y },
        m,
        d,
    }
}

/// The fixed reference date of every sample: 2025-10-31.
pub(crate) const REF_DAY: i32 = days_from_civil(2025, 10, 31);

/// The reference date as written in `generator.json`.
pub(crate) const REF_DATE_ISO: &str = "2025-10-31";

/// Average days per year, for turning ages into day offsets.
pub(crate) const YEAR_DAYS: i32 = 365;

/// Completed years between `birth` and `at` (both day numbers).
pub(crate) fn age_at(birth: i32, at: i32) -> i32 {
    let b = civil_from_days(birth);
    let a = civil_from_days(at);
    let mut age = a.y - b.y;
    if (a.m, a.d) < (b.m, b.d) {
        age -= 1;
    }
    age
}

/// Age at the reference date.
pub(crate) fn age(birth: i32) -> i32 {
    age_at(birth, REF_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            civil_from_days(REF_DAY),
            Ymd {
                y: 2025,
                m: 10,
                d: 31
            }
        );
        for z in (-40_000..30_000).step_by(17) {
            let d = civil_from_days(z);
            assert_eq!(days_from_civil(d.y, d.m, d.d), z);
        }
        assert_eq!(
            civil_from_days(days_from_civil(2024, 2, 29) + 1),
            Ymd {
                y: 2024,
                m: 3,
                d: 1
            }
        );
    }

    #[test]
    fn ages_count_completed_years() {
        let birth = days_from_civil(1980, 11, 1);
        assert_eq!(age(birth), 44);
        assert_eq!(age(days_from_civil(1980, 10, 31)), 45);
    }
}
