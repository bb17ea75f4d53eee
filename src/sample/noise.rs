//! Record-level noise for the sample's program lists: the rate tables, the noise tags written
//! to `truth.csv`, and the functions that damage names, NIKs, KK numbers and birth dates the
//! way agency data entry and spreadsheets do.
//!
//! Every rate lives in a [`Rates`] constant, so the defaults are data, not code. Each kind of
//! damage is drawn independently and, when it changes the record, recorded as a [`Tag`].

use super::calendar::{Ymd, civil_from_days};
use super::names::{self, Name};
use super::rng::Rng;

/// One kind of damage or planted fact, as named in `truth.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    NameTypo,
    NameVariant,
    OldSpelling,
    NikMissing,
    NikTypo,
    NikTransposed,
    NikScientific,
    Nik15,
    NikFormatted,
    NikNumericCell,
    KkAsNik,
    NikKkSwapped,
    NikOfHead,
    NikOfMother,
    DateSwap,
    DatePlaceholder,
    DateYearOff,
    BirthMissing,
    KkOld,
    RecipientDead,
    DupPayeeDiffers,
    DupSamePayee,
    BreachPkh,
    NotDtks,
    ExclusionError,
    NikDuplicated,
    BirthPlaceholder,
}

/// Tag names in `Tag` order, as written in `truth.csv`.
#[rustfmt::skip]
pub(crate) const TAG_NAMES: [&str; 27] = [
    "name_typo", "name_variant", "old_spelling", "nik_missing", "nik_typo", "nik_transposed",
    "nik_scientific", "nik_15", "nik_formatted", "nik_numeric_cell", "kk_as_nik", "nik_kk_swapped",
    "nik_of_head", "nik_of_mother", "date_swap", "date_placeholder", "date_year_off",
    "birth_missing", "kk_old", "recipient_dead", "dup_payee_differs", "dup_same_payee",
    "breach_pkh", "not_dtks", "exclusion_error", "nik_duplicated", "birth_placeholder",
];

/// The set of tags of one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tags(u32);

impl Tags {
    /// Adds a tag.
    pub(crate) fn add(&mut self, tag: Tag) {
        self.0 |= 1 << (tag as u8);
    }

    /// True when `tag` is set.
    #[cfg(test)]
    pub(crate) fn has(self, tag: Tag) -> bool {
        self.0 & (1 << (tag as u8)) != 0
    }

    /// Appends the tags, `;`-separated in `Tag` order.
    pub(crate) fn write_to(self, out: &mut String) {
        let mut first = true;
        for (bit, name) in TAG_NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                if !first {
                    out.push(';');
                }
                out.push_str(name);
                first = false;
            }
        }
    }
}

/// Noise rates for one kind of source (probability per record, drawn independently).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rates {
    pub name_typo: f64,
    pub name_variant: f64,
    /// Spelling flipped (old <-> modern), among people born before 1972 whose name differs.
    pub old_spelling: f64,
    pub nik_missing: f64,
    pub nik_typo: f64,
    pub nik_transposed: f64,
    pub nik_scientific: f64,
    pub nik_15: f64,
    pub nik_formatted: f64,
    pub kk_as_nik: f64,
    /// Only where the file has both a NIK and a KK column.
    pub nik_kk_swapped: f64,
    /// Family-level rows: the head's NIK beside the payee's name.
    pub nik_of_head: f64,
    /// Individual rows of children: the mother's NIK.
    pub nik_of_mother: f64,
    pub date_swap: f64,
    pub date_placeholder: f64,
    pub date_year_off: f64,
    /// Birth date left empty (complaint lists).
    pub birth_missing: f64,
    /// Family-level rows listed a second time.
    pub duplicate_row: f64,
}

/// Defaults for beneficiary lists (PKH, BPNT, PBI).
pub(crate) const PROGRAM: Rates = Rates {
    name_typo: 0.04,
    name_variant: 0.05,
    old_spelling: 0.30,
    nik_missing: 0.03,
    nik_typo: 0.01,
    nik_transposed: 0.005,
    nik_scientific: 0.007,
    nik_15: 0.005,
    nik_formatted: 0.02,
    kk_as_nik: 0.003,
    nik_kk_swapped: 0.003,
    nik_of_head: 0.005,
    nik_of_mother: 0.003,
    date_swap: 0.01,
    date_placeholder: 0.01,
    date_year_off: 0.01,
    birth_missing: 0.0,
    duplicate_row: 0.015,
};

/// The welfare registry (DTKS): fewer kinds of damage.
pub(crate) const DTKS: Rates = Rates {
    name_typo: 0.03,
    name_variant: 0.0,
    old_spelling: 0.0,
    nik_missing: 0.05,
    nik_typo: 0.01,
    nik_transposed: 0.0,
    nik_scientific: 0.0,
    nik_15: 0.0,
    nik_formatted: 0.0,
    kk_as_nik: 0.0,
    nik_kk_swapped: 0.0,
    nik_of_head: 0.0,
    nik_of_mother: 0.0,
    date_swap: 0.01,
    date_placeholder: 0.0,
    date_year_off: 0.0,
    birth_missing: 0.0,
    duplicate_row: 0.0,
};

/// The provincial spreadsheet: ~10% paid on address alone (no NIK).
pub(crate) const JAMSOSRATU: Rates = Rates {
    nik_missing: 0.10,
    ..PROGRAM
};

/// Share of Jamsosratu NIKs stored as a number cell (last digit lost).
pub(crate) const JAMSOSRATU_NUMERIC_CELL: f64 = 0.20;

/// Share of Jamsosratu birth dates stored as real date cells (the rest as text).
pub(crate) const JAMSOSRATU_DATE_CELL: f64 = 0.70;

/// The local complaint list: typed by village staff, often without NIK or birth date.
pub(crate) const PENGADUAN: Rates = Rates {
    nik_missing: 0.15,
    birth_missing: 0.10,
    nik_kk_swapped: 0.0,
    duplicate_row: 0.0,
    ..PROGRAM
};

/// A noised name: registry spelling (old for people born before 1955), maybe flipped, then a
/// variant and a typo.
pub(crate) fn name(
    rng: &mut Rng,
    person: &Name,
    birth_year: i32,
    female: bool,
    adult: bool,
    r: &Rates,
    tags: &mut Tags,
) -> String {
    let mut old = birth_year < 1955;
    if birth_year < 1972 && person.has_old_form() && rng.chance(r.old_spelling) {
        old = !old;
        tags.add(Tag::OldSpelling);
    }
    let mut s = String::with_capacity(32);
    person.render(old, &mut s);
    if rng.chance(r.name_variant)
        && let Some(v) = names::variant(rng, &s, female, adult)
    {
        s = v;
        tags.add(Tag::NameVariant);
    }
    if rng.chance(r.name_typo) {
        s = names::typo(rng, &s);
        tags.add(Tag::NameTypo);
    }
    s
}

/// The text a list writes in its NIK and KK columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ids {
    /// NIK column (empty when missing).
    pub nik: String,
    /// KK column.
    pub kk: String,
}

/// Noised NIK and KK columns. `has_kk` says whether the file has a KK column (only then can
/// the two be swapped).
pub(crate) fn ids(
    rng: &mut Rng,
    nik: u64,
    kk: u64,
    has_kk: bool,
    r: &Rates,
    tags: &mut Tags,
) -> Ids {
    let kk_text = format!("{kk:016}");
    let nik_text = if rng.chance(r.nik_missing) {
        tags.add(Tag::NikMissing);
        String::new()
    } else if rng.chance(r.kk_as_nik) {
        tags.add(Tag::KkAsNik);
        kk_text.clone()
    } else {
        let mut digits = format!("{nik:016}").into_bytes();
        if rng.chance(r.nik_typo) {
            let i = rng.index(digits.len());
            let old = digits[i];
            digits[i] = b'0' + ((old - b'0') + 1 + rng.below(9) as u8) % 10;
            tags.add(Tag::NikTypo);
        }
        if rng.chance(r.nik_transposed) {
            let candidates: Vec<usize> = (0..digits.len() - 1)
                .filter(|&i| digits[i] != digits[i + 1])
                .collect();
            if !candidates.is_empty() {
                let i = *rng.pick(&candidates);
                digits.swap(i, i + 1);
                tags.add(Tag::NikTransposed);
            }
        }
        let plain: String = digits.iter().map(|&b| char::from(b)).collect();
        if rng.chance(r.nik_scientific) {
            tags.add(Tag::NikScientific);
            scientific(&plain)
        } else if rng.chance(r.nik_15) {
            tags.add(Tag::Nik15);
            plain[..15].to_string()
        } else if rng.chance(r.nik_formatted) {
            tags.add(Tag::NikFormatted);
            formatted(rng, &plain)
        } else {
            plain
        }
    };
    if has_kk && !nik_text.is_empty() && rng.chance(r.nik_kk_swapped) {
        tags.add(Tag::NikKkSwapped);
        return Ids {
            nik: kk_text,
            kk: nik_text,
        };
    }
    Ids {
        nik: nik_text,
        kk: kk_text,
    }
}

/// A 16-digit number as Excel displays it in a General cell: `3.60101E+15`.
pub(crate) fn scientific(digits: &str) -> String {
    let value = digits.parse::<u64>().unwrap_or(0) as f64 / 1e15;
    let mut s = format!("{value:.5}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push_str("E+15");
    s
}

/// Recoverable formatting: a leading apostrophe, spaces every four digits, or dots.
fn formatted(rng: &mut Rng, digits: &str) -> String {
    match rng.below(3) {
        0 => format!("'{digits}"),
        k => {
            let sep = if k == 1 { ' ' } else { '.' };
            let mut out = String::with_capacity(20);
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && i % 4 == 0 {
                    out.push(sep);
                }
                out.push(c);
            }
            out
        }
    }
}

/// A noised birth date: day and month swapped, replaced by a placeholder, or a year off.
pub(crate) fn date(rng: &mut Rng, day: i32, r: &Rates, tags: &mut Tags) -> Ymd {
    let mut d = civil_from_days(day);
    if rng.chance(r.date_swap) && d.d <= 12 && d.m <= 12 && d.d != d.m {
        (d.d, d.m) = (d.m, d.d);
        tags.add(Tag::DateSwap);
    }
    if rng.chance(r.date_placeholder) {
        let (dd, mm) = if rng.chance(0.5) { (1, 1) } else { (31, 12) };
        if (d.d, d.m) != (dd, mm) {
            (d.d, d.m) = (dd, mm);
            tags.add(Tag::DatePlaceholder);
        }
    }
    if rng.chance(r.date_year_off) {
        d.y += if rng.chance(0.5) { 1 } else { -1 };
        if d.m == 2 && d.d == 29 {
            d.d = 28;
        }
        tags.add(Tag::DateYearOff);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::calendar::days_from_civil;

    const ALL: Rates = Rates {
        name_typo: 1.0,
        name_variant: 1.0,
        old_spelling: 1.0,
        nik_missing: 0.0,
        nik_typo: 0.0,
        nik_transposed: 0.0,
        nik_scientific: 0.0,
        nik_15: 0.0,
        nik_formatted: 0.0,
        kk_as_nik: 0.0,
        nik_kk_swapped: 0.0,
        nik_of_head: 0.0,
        nik_of_mother: 0.0,
        date_swap: 0.0,
        date_placeholder: 0.0,
        date_year_off: 0.0,
        birth_missing: 0.0,
        duplicate_row: 0.0,
    };

    #[test]
    fn scientific_notation_keeps_six_significant_digits() {
        assert_eq!(scientific("3601014507890001"), "3.60101E+15");
        assert_eq!(scientific("3600000000000000"), "3.6E+15");
    }

    #[test]
    fn nik_damage_is_tagged_and_shaped() {
        let mut rng = Rng::new(11);
        let nik = 3601_0145_0789_0001u64;
        let kk = 3601_0112_0315_0002u64;
        let mut tags = Tags::default();
        let typo = ids(
            &mut rng,
            nik,
            kk,
            true,
            &Rates {
                nik_typo: 1.0,
                ..ALL
            },
            &mut tags,
        );
        assert!(tags.has(Tag::NikTypo));
        assert_eq!(typo.nik.len(), 16);
        let differing = typo
            .nik
            .bytes()
            .zip(format!("{nik}").bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 1);

        let mut tags = Tags::default();
        let swapped = ids(
            &mut rng,
            nik,
            kk,
            true,
            &Rates {
                nik_kk_swapped: 1.0,
                ..ALL
            },
            &mut tags,
        );
        assert_eq!(
            (swapped.nik.as_str(), swapped.kk.as_str()),
            ("3601011203150002", "3601014507890001")
        );

        let mut tags = Tags::default();
        let cut = ids(
            &mut rng,
            nik,
            kk,
            false,
            &Rates { nik_15: 1.0, ..ALL },
            &mut tags,
        );
        assert_eq!(cut.nik, "360101450789000");
        let mut s = String::new();
        tags.write_to(&mut s);
        assert_eq!(s, "nik_15");

        let mut tags = Tags::default();
        let f = ids(
            &mut rng,
            nik,
            kk,
            false,
            &Rates {
                nik_formatted: 1.0,
                ..ALL
            },
            &mut tags,
        );
        let digits: String = f.nik.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(digits, format!("{nik}"));
    }

    #[test]
    fn date_swap_only_when_both_fit_a_month() {
        let mut rng = Rng::new(2);
        let r = Rates {
            date_swap: 1.0,
            ..ALL
        };
        let mut tags = Tags::default();
        let d = date(&mut rng, days_from_civil(1990, 3, 7), &r, &mut tags);
        assert_eq!((d.d, d.m), (3, 7));
        assert!(tags.has(Tag::DateSwap));
        let mut tags = Tags::default();
        let d = date(&mut rng, days_from_civil(1990, 3, 27), &r, &mut tags);
        assert_eq!((d.d, d.m), (27, 3));
        assert_eq!(tags, Tags::default());
    }

    #[test]
    fn old_people_get_their_spelling_flipped() {
        let generator = names::NameGen::new();
        let mut rng = Rng::new(4);
        let person = loop {
            let n = generator.generate(&mut rng, true, 1950, false);
            if n.has_old_form() {
                break n;
            }
        };
        let mut registry = String::new();
        person.render(true, &mut registry);
        let mut tags = Tags::default();
        let r = Rates {
            old_spelling: 1.0,
            ..ALL
        };
        let r = Rates {
            name_typo: 0.0,
            name_variant: 0.0,
            ..r
        };
        let listed = name(&mut rng, &person, 1950, true, true, &r, &mut tags);
        assert_ne!(listed, registry);
        assert!(tags.has(Tag::OldSpelling));
    }

    #[test]
    fn tag_names_match_tags() {
        assert_eq!(
            TAG_NAMES[Tag::BirthPlaceholder as usize],
            "birth_placeholder"
        );
        assert_eq!(TAG_NAMES[Tag::KkOld as usize], "kk_old");
        assert_eq!(TAG_NAMES[Tag::NikOfMother as usize], "nik_of_mother");
    }
}
