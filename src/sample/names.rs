//! Indonesian given names for the sample: weighted name lists, name drawing, rendering in
//! modern or pre-1972 spelling, and the name variants and typos that program lists carry.
//!
//! Names are stored compactly as up to three token ids ([`Name`]); a token id packs the list
//! and the position in it. Lists are split by sex and generation (elder, adult, youth) plus
//! Christian given names; common tokens (SITI, SRI, NUR, MUHAMMAD, AHMAD, DEWI, AGUS, BUDI,
//! DWI, TRI) carry large weights so that they collide as often as they do in real registries.

use super::rng::{Rng, Weighted};

type List = &'static [(&'static str, u32)];

#[rustfmt::skip]
const M_COMMON: List = &[
    ("MUHAMMAD", 60), ("AHMAD", 40), ("AGUS", 25), ("BUDI", 20), ("DWI", 15), ("TRI", 12),
    ("NUR", 10), ("ABDUL", 15), ("ADE", 10), ("ASEP", 14), ("ANDI", 8), ("ARIF", 8), ("BAMBANG", 6),
    ("CECEP", 6), ("DEDI", 8), ("DENI", 6), ("EKO", 8), ("FAJAR", 6), ("HADI", 6), ("HENDRA", 8),
    ("IWAN", 8), ("HERMAWAN", 5), ("WAWAN", 6), ("JAJANG", 5), ("RUDI", 8), ("SLAMET", 6),
    ("UJANG", 8), ("WAHYU", 8), ("YUSUF", 6), ("HIDAYAT", 8), ("RAHMAT", 8), ("HASAN", 5),
    ("IMAM", 4), ("ISMAIL", 4), ("NURDIN", 5), ("SAEPUDIN", 5), ("ROHMAN", 5), ("DADANG", 6),
    ("SURYA", 5), ("SAPUTRA", 6), ("PRASETYO", 5), ("KURNIAWAN", 6), ("SETIAWAN", 6), ("FIRMAN", 5),
    ("SOLEH", 4), ("JAENUDIN", 4), ("ENDANG", 5), ("AAN", 4), ("YAYAN", 4), ("JUHANA", 3),
    ("SYAIFUL", 4), ("KHOIRUL", 3), ("SUHENDAR", 4), ("SUPRIYADI", 4), ("MULYADI", 5),
    ("SUNARDI", 4), ("SANUSI", 4), ("MAMAN", 5), ("ENCEP", 4), ("NANANG", 4), ("DIDIN", 4),
    ("ABDULLAH", 6),
];

#[rustfmt::skip]
const F_COMMON: List = &[
    ("SITI", 60), ("SRI", 35), ("NUR", 20), ("DEWI", 20), ("DWI", 12), ("TRI", 10), ("AMINAH", 6),
    ("ANI", 6), ("CUCU", 5), ("ENI", 5), ("ENENG", 6), ("ELIS", 5), ("FITRI", 8), ("IDA", 5),
    ("IIS", 5), ("IMAS", 6), ("INDAH", 6), ("LILIS", 6), ("MULYANI", 6), ("NENENG", 5),
    ("NINGSIH", 5), ("NURHAYATI", 8), ("NURJANAH", 8), ("PUTRI", 6), ("RATNA", 5), ("ROHAYATI", 5),
    ("ROSITA", 4), ("SARI", 8), ("SUSANTI", 6), ("TUTI", 5), ("UMI", 4), ("WATI", 6),
    ("WAHYUNI", 5), ("YULIANA", 4), ("YUYUN", 4), ("LESTARI", 6), ("RAHAYU", 6), ("HANDAYANI", 5),
    ("KURNIASIH", 4), ("EUIS", 5), ("HERAWATI", 4), ("MARYAM", 4), ("AISYAH", 5), ("KHADIJAH", 4),
    ("FATIMAH", 6), ("HALIMAH", 5), ("ROSMIATI", 3), ("YATI", 4), ("ASIH", 4), ("ATIKAH", 3),
];

#[rustfmt::skip]
const M_ELDER: List = &[
    ("SUPARMAN", 8), ("SUKARDI", 8), ("SUKIMAN", 6), ("JOKO", 10), ("CIPTO", 6), ("SUWARNO", 6),
    ("SUTRISNO", 8), ("WAGIMIN", 4), ("PARJO", 4), ("SAYUTI", 4), ("KARTA", 5), ("KASMAN", 5),
    ("SARMAN", 4), ("JAYA", 5), ("UDIN", 6), ("SUHARTO", 5), ("SUGIONO", 4), ("MARDI", 4),
    ("KUSNADI", 5), ("YUSUF", 5), ("SOLIHIN", 4), ("SAPRUDIN", 3), ("JUNAEDI", 4), ("RASIDI", 3),
    ("MURSID", 3), ("UMAR", 5), ("DULLAH", 3), ("MUHAMMAD", 10), ("AHMAD", 6),
];

#[rustfmt::skip]
const F_ELDER: List = &[
    ("SUMIYATI", 8), ("SUKARNI", 6), ("SUPARMI", 6), ("SUYATI", 6), ("KARTINI", 6), ("SUKAESIH", 5),
    ("JUJU", 4), ("ENCUM", 4), ("ICIH", 4), ("ONAH", 4), ("ARSIH", 4), ("WASRIAH", 3),
    ("TARSIH", 4), ("SAIDAH", 4), ("MASITOH", 3), ("JUMINAH", 5), ("PAINEM", 4), ("TUMINAH", 4),
    ("SUKINAH", 4), ("SAMIAH", 4), ("UMAYAH", 3), ("KHOTIJAH", 3), ("YUNINGSIH", 3), ("CUCUM", 3),
    ("ROKAYAH", 4), ("SITI", 12), ("SRI", 6),
];

#[rustfmt::skip]
const M_YOUTH: List = &[
    ("RIZKI", 10), ("FARHAN", 8), ("RAFI", 6), ("ALIF", 6), ("FADIL", 6), ("ILHAM", 6),
    ("DIMAS", 6), ("BAGAS", 5), ("RAMADHAN", 8), ("AKBAR", 6), ("FAUZAN", 5), ("HAIKAL", 5),
    ("GILANG", 5), ("NAUFAL", 5), ("DAFFA", 5), ("ARKAN", 4), ("RAKA", 5), ("ZIDAN", 5),
    ("YOGA", 4), ("ADITYA", 6), ("SYAHRUL", 4), ("REZA", 5), ("AZKA", 4), ("PRATAMA", 6),
    ("MAULANA", 6), ("FIRDAUS", 4), ("MUHAMMAD", 20),
];

#[rustfmt::skip]
const F_YOUTH: List = &[
    ("AULIA", 8), ("NAYLA", 7), ("ZAHRA", 7), ("AZZAHRA", 5), ("PUTRI", 6), ("SALSABILA", 6),
    ("KEISHA", 4), ("NABILA", 7), ("AISYAH", 6), ("DINDA", 5), ("CITRA", 5), ("RAHMA", 5),
    ("ANISA", 7), ("NAJWA", 5), ("SYIFA", 6), ("KHANZA", 4), ("ALYA", 5), ("AMELIA", 5),
    ("INTAN", 4), ("KIRANA", 4), ("ZASKIA", 4), ("NURUL", 6), ("ANGGRAINI", 4), ("NOVITA", 4),
    ("SITI", 8),
];

#[rustfmt::skip]
const M_CHRISTIAN: List = &[
    ("YOHANES", 6), ("PETRUS", 5), ("YOSEF", 5), ("MARKUS", 4), ("PAULUS", 5), ("STEFANUS", 4),
    ("ANDREAS", 5), ("MATIUS", 4), ("DANIEL", 5), ("SAMUEL", 4), ("YOSUA", 4), ("FRANSISKUS", 4),
    ("ANTONIUS", 4), ("MIKAEL", 3), ("LUKAS", 3), ("TIMOTIUS", 3),
];

#[rustfmt::skip]
const F_CHRISTIAN: List = &[
    ("MARIA", 8), ("MAGDALENA", 4), ("THERESIA", 4), ("MARTHA", 4), ("ELISABETH", 4),
    ("KRISTINA", 4), ("ANGELINA", 3), ("YOHANA", 4), ("MARIANA", 4), ("AGNES", 3), ("VERONIKA", 3),
    ("DEBORA", 3), ("LIDIA", 3), ("SUSANA", 3),
];

/// All lists, indexed by the list part of a token id. Male lists at even, female at odd
/// positions; lists from [`CHRISTIAN`] on never take old spelling.
const LISTS: [List; 8] = [
    M_COMMON,
    F_COMMON,
    M_ELDER,
    F_ELDER,
    M_YOUTH,
    F_YOUTH,
    M_CHRISTIAN,
    F_CHRISTIAN,
];
/// Words that open a name and do not follow another word.
const LEADING: [&str; 8] = [
    "SITI", "SRI", "MUHAMMAD", "AHMAD", "ABDUL", "DWI", "TRI", "NUR",
];
const COMMON: usize = 0;
const ELDER: usize = 2;
const YOUTH: usize = 4;
const CHRISTIAN: usize = 6;

/// A person's given names: up to three token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name {
    tokens: [u16; 3],
    len: u8,
}

fn token_id(list: usize, index: usize) -> u16 {
    ((list as u16) << 12) | index as u16
}

fn token(id: u16) -> (&'static str, bool) {
    let list = usize::from(id >> 12);
    (
        LISTS[list]
            .get(usize::from(id & 0x0FFF))
            .map_or("", |t| t.0),
        list < CHRISTIAN,
    )
}

/// Draws names from the weighted lists.
pub(crate) struct NameGen {
    tables: Vec<Weighted>,
}

impl NameGen {
    /// Builds the cumulative weight tables once.
    pub(crate) fn new() -> NameGen {
        NameGen {
            tables: LISTS
                .iter()
                .map(|l| Weighted::new(l.iter().map(|t| t.1)))
                .collect(),
        }
    }

    fn draw(&self, rng: &mut Rng, list: usize) -> u16 {
        token_id(list, self.tables[list].draw(rng))
    }

    /// A name for a person of the given sex born in `birth_year`. Elders more often have one
    /// word and Javanese/Sundanese names; the young have longer, Arabic-style names.
    pub(crate) fn generate(
        &self,
        rng: &mut Rng,
        female: bool,
        birth_year: i32,
        christian: bool,
    ) -> Name {
        let sex = usize::from(female);
        let (era, one_word) = if birth_year < 1960 {
            (ELDER, 0.55)
        } else if birth_year >= 1998 {
            (YOUTH, 0.22)
        } else {
            (COMMON, 0.36)
        };
        let len = if rng.chance(one_word) {
            1
        } else if rng.chance(0.65) {
            2
        } else {
            3
        };
        let mut name = Name {
            tokens: [0; 3],
            len: 0,
        };
        for k in 0..len {
            let group = if k == 0 && christian && rng.chance(0.7) {
                CHRISTIAN
            } else if rng.chance(0.5) {
                era
            } else {
                COMMON
            };
            let list = group + sex;
            // A name does not repeat a word ("SITI SITI") nor put a leading word (SITI, MUHAMMAD)
            // after another: redraw a few times, else stop.
            for _ in 0..4 {
                let id = self.draw(rng, list);
                let text = token(id).0;
                let misplaced = k > 0 && LEADING.contains(&text);
                if !misplaced
                    && !name.tokens[..usize::from(name.len)]
                        .iter()
                        .any(|&t| token(t).0 == text)
                {
                    name.tokens[usize::from(name.len)] = id;
                    name.len += 1;
                    break;
                }
            }
        }
        name
    }
}

impl Name {
    /// Appends the name to `out`, in pre-1972 spelling when `old` is set.
    pub(crate) fn render(&self, old: bool, out: &mut String) {
        for (k, &id) in self.tokens[..usize::from(self.len)].iter().enumerate() {
            if k > 0 {
                out.push(' ');
            }
            let (text, can_be_old) = token(id);
            if old && can_be_old {
                push_old_spelling(text, out);
            } else {
                out.push_str(text);
            }
        }
    }

    /// True when the old and modern spellings of this name differ.
    pub(crate) fn has_old_form(&self) -> bool {
        self.tokens[..usize::from(self.len)].iter().any(|&id| {
            let (text, can_be_old) = token(id);
            can_be_old
                && (text.bytes().any(|b| matches!(b, b'U' | b'J' | b'C' | b'Y'))
                    || text.contains("KH"))
        })
    }
}

/// Appends `modern` in the spelling used before the 1972 reform: U=OE, J=DJ, C=TJ, NY=NJ,
/// SY=SJ, KH=CH, Y=J (SUMIYATI -> SOEMIJATI, JOKO -> DJOKO, CIPTO -> TJIPTO).
pub(crate) fn push_old_spelling(modern: &str, out: &mut String) {
    let bytes = modern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let next = bytes.get(i + 1).copied();
        match (bytes[i], next) {
            (b'N', Some(b'Y')) => {
                out.push_str("NJ");
                i += 1;
            }
            (b'S', Some(b'Y')) => {
                out.push_str("SJ");
                i += 1;
            }
            (b'K', Some(b'H')) => {
                out.push_str("CH");
                i += 1;
            }
            (b'U', _) => out.push_str("OE"),
            (b'J', _) => out.push_str("DJ"),
            (b'C', _) => out.push_str("TJ"),
            (b'Y', _) => out.push('J'),
            (b, _) => out.push(char::from(b)),
        }
        i += 1;
    }
}

/// Short forms of MUHAMMAD as lists write them.
const MUHAMMAD_FORMS: [&str; 6] = ["MOCH.", "M.", "MUH.", "MOH.", "MHD.", "MOCHAMAD"];

/// A recognisable variant of `name` as a program list might write it: MUHAMMAD abbreviated,
/// ABDUL -> ABD., or a title (H., HJ., NY.) or degree (", S.Pd") added for adults.
/// `None` when no variant applies (a child with neither MUHAMMAD nor ABDUL).
pub(crate) fn variant(rng: &mut Rng, name: &str, female: bool, adult: bool) -> Option<String> {
    let words: Vec<&str> = name.split(' ').collect();
    if let Some(pos) = words
        .iter()
        .position(|w| *w == "MUHAMMAD" || *w == "MOEHAMMAD")
    {
        let mut out = words.clone();
        out[pos] = *rng.pick(&MUHAMMAD_FORMS);
        return Some(out.join(" "));
    }
    if let Some(pos) = words.iter().position(|w| *w == "ABDUL" || *w == "ABDOEL") {
        let mut out = words.clone();
        out[pos] = "ABD.";
        return Some(out.join(" "));
    }
    if !adult {
        return None;
    }
    Some(match (female, rng.below(3)) {
        (true, 0) => format!("HJ. {name}"),
        (true, 1) => format!("NY. {name}"),
        (false, 0 | 1) => format!("H. {name}"),
        _ => format!("{name}, S.Pd"),
    })
}

/// `name` with one typing error: a letter substituted, deleted, inserted, or two adjacent
/// letters transposed. The result always differs from the input (unless it has no letters).
pub(crate) fn typo(rng: &mut Rng, name: &str) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphabetic())
        .collect();
    if letters.is_empty() {
        return name.to_string();
    }
    let pos = *rng.pick(&letters);
    let random_letter = |rng: &mut Rng, not: char| loop {
        let c = char::from(b'A' + rng.below(26) as u8);
        if c != not {
            break c;
        }
    };
    match rng.below(4) {
        0 if letters.len() >= 3 => {
            chars.remove(pos);
        }
        1 => {
            let c = random_letter(rng, '\0');
            chars.insert(pos, c);
        }
        2 => {
            let swappable: Vec<usize> = letters
                .iter()
                .copied()
                .filter(|&i| {
                    i + 1 < chars.len()
                        && chars[i + 1].is_ascii_alphabetic()
                        && chars[i] != chars[i + 1]
                })
                .collect();
            if swappable.is_empty() {
                chars[pos] = random_letter(rng, chars[pos]);
            } else {
                let i = *rng.pick(&swappable);
                chars.swap(i, i + 1);
            }
        }
        _ => chars[pos] = random_letter(rng, chars[pos]),
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old(s: &str) -> String {
        let mut out = String::new();
        push_old_spelling(s, &mut out);
        out
    }

    #[test]
    fn old_spelling_follows_the_reform_rules() {
        assert_eq!(old("SUMIYATI"), "SOEMIJATI");
        assert_eq!(old("JOKO"), "DJOKO");
        assert_eq!(old("CIPTO"), "TJIPTO");
        assert_eq!(old("NYOMAN"), "NJOMAN");
        assert_eq!(old("SYAIFUL"), "SJAIFOEL");
        assert_eq!(old("KHADIJAH"), "CHADIDJAH");
        assert_eq!(old("SITI"), "SITI");
    }

    #[test]
    fn names_have_one_to_three_distinct_words_and_common_tokens_dominate() {
        let generator = NameGen::new();
        let mut rng = Rng::new(3);
        let mut one_word = 0;
        let mut siti = 0;
        for _ in 0..5_000 {
            let name = generator.generate(&mut rng, true, 1980, false);
            let mut s = String::new();
            name.render(false, &mut s);
            let words: Vec<&str> = s.split(' ').collect();
            assert!((1..=3).contains(&words.len()), "{s}");
            let mut dedup = words.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(dedup.len(), words.len(), "{s}");
            one_word += usize::from(words.len() == 1);
            siti += usize::from(words.contains(&"SITI"));
        }
        assert!((1_000..2_000).contains(&one_word), "{one_word}");
        assert!(siti > 400, "{siti}");
    }

    #[test]
    fn typos_change_the_name_by_one_edit() {
        let mut rng = Rng::new(9);
        for _ in 0..2_000 {
            let t = typo(&mut rng, "SITI AMINAH");
            assert_ne!(t, "SITI AMINAH");
            let diff = t.len().abs_diff("SITI AMINAH".len());
            assert!(diff <= 1, "{t}");
        }
    }

    #[test]
    fn variants_abbreviate_or_add_titles() {
        let mut rng = Rng::new(5);
        let v = variant(&mut rng, "MUHAMMAD RIZKI", false, true).unwrap_or_default();
        assert!(
            MUHAMMAD_FORMS.iter().any(|f| v == format!("{f} RIZKI")),
            "{v}"
        );
        assert_eq!(
            variant(&mut rng, "ABDUL ROHMAN", false, false).as_deref(),
            Some("ABD. ROHMAN")
        );
        assert_eq!(variant(&mut rng, "RIZKI", false, false), None);
        let titled = variant(&mut rng, "SITI AMINAH", true, true).unwrap_or_default();
        assert!(titled.contains("SITI AMINAH") && titled != "SITI AMINAH");
    }
}
