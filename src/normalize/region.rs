//! Kemendagri region codes (kode wilayah): the codes that open every NIK and KK number.
//!
//! Indonesia's Ministry of Home Affairs (Kemendagri) numbers every province (2 digits, `36`),
//! regency or city (kabupaten/kota, 4 digits, `3601`; 01-69 kabupaten, 71-99 kota), district
//! (kecamatan, 6 digits, `360101`) and village (desa/kelurahan, 10 digits, `3601012001`).
//! terpadu stores codes as undotted digit strings so that a NIK's first six digits compare
//! directly with a district code. The tables ship inside the binary (see `kemendagri/README.md`
//! for source and licence), so nothing is downloaded at run time.
//!
//! Codes retired by later splits (Papua, 2022) still stand in old NIKs, so prefix checks accept
//! current and retired codes and say which.
//!
//! This module also resolves region *names* (as provincial spreadsheets write them:
//! `KAB. PANDEGLANG`, `Kec. Sumur`, `Desa Kertajaya`) to codes, level by level, within a parent.

use std::collections::HashMap;
use std::sync::OnceLock;

const WILAYAH_TSV: &str = include_str!("kemendagri/wilayah.tsv");
const VILLAGES_TSV: &str = include_str!("kemendagri/villages.tsv");
const RETIRED_TSV: &str = include_str!("kemendagri/retired.tsv");

/// Administrative level of a region code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegionLevel {
    /// Province (provinsi), 2 digits.
    Province,
    /// Regency (kabupaten) or city (kota), 4 digits.
    Regency,
    /// District (kecamatan), 6 digits.
    District,
    /// Village (desa) or urban village (kelurahan), 10 digits.
    Village,
}

impl RegionLevel {
    /// Number of digits of an undotted code at this level.
    pub fn code_len(self) -> usize {
        match self {
            RegionLevel::Province => 2,
            RegionLevel::Regency => 4,
            RegionLevel::District => 6,
            RegionLevel::Village => 10,
        }
    }

    fn from_len(len: usize) -> Option<Self> {
        match len {
            2 => Some(RegionLevel::Province),
            4 => Some(RegionLevel::Regency),
            6 => Some(RegionLevel::District),
            10 => Some(RegionLevel::Village),
            _ => None,
        }
    }
}

/// Whether a code is in the current decree, only in a retired one, or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeStatus {
    /// Listed in the current Kemendagri decree.
    Current,
    /// Listed in a 2018-2023 decree but not the current one (e.g. pre-2022 Papua codes).
    Retired,
    /// Not a Kemendagri code we know.
    Unknown,
}

/// One region: undotted code, level and official name.
#[derive(Debug, Clone)]
pub struct Region {
    /// Undotted Kemendagri code, e.g. `360101`.
    pub code: String,
    /// Administrative level.
    pub level: RegionLevel,
    /// Official name as the decree writes it, e.g. `Kabupaten Pandeglang`.
    pub name: String,
    /// True when the code only appears in retired decrees.
    pub retired: bool,
}

/// In-memory index of all Kemendagri codes, built once from the embedded tables.
pub struct RegionIndex {
    by_code: HashMap<String, Region>,
    /// (parent code or "" for provinces, level, normalised name) -> codes with that name.
    by_name: HashMap<(String, RegionLevel, String), Vec<String>>,
}

/// The process-wide region index (parsed on first use, ~100k rows, a few tens of ms).
pub fn region_index() -> &'static RegionIndex {
    static INDEX: OnceLock<RegionIndex> = OnceLock::new();
    INDEX.get_or_init(RegionIndex::load_embedded)
}

/// Removes the dots of a Kemendagri code (`36.01.01` -> `360101`).
pub fn undot(code: &str) -> String {
    code.chars().filter(|c| *c != '.').collect()
}

impl RegionIndex {
    fn load_embedded() -> Self {
        let mut index = RegionIndex {
            by_code: HashMap::with_capacity(95_000),
            by_name: HashMap::with_capacity(95_000),
        };
        // The embedded files are ours and fixed at build time; a malformed line is skipped
        // (and caught by the unit tests below), never a panic at run time.
        for line in WILAYAH_TSV.lines().skip(1) {
            let mut cols = line.split('\t');
            if let (Some(code), Some(_level), Some(name)) = (cols.next(), cols.next(), cols.next())
            {
                index.insert(undot(code), name, false);
            }
        }
        for line in VILLAGES_TSV.lines().skip(1) {
            let mut cols = line.split('\t');
            if let (Some(code), Some(name)) = (cols.next(), cols.next()) {
                index.insert(undot(code), name, false);
            }
        }
        for line in RETIRED_TSV.lines().skip(1) {
            let mut cols = line.split('\t');
            if let (Some(code), Some(_level), Some(name)) = (cols.next(), cols.next(), cols.next())
            {
                let code = undot(code);
                if !index.by_code.contains_key(&code) {
                    index.insert(code, name, true);
                }
            }
        }
        index
    }

    fn insert(&mut self, code: String, name: &str, retired: bool) {
        let Some(level) = RegionLevel::from_len(code.len()) else {
            return;
        };
        let parent = parent_code(&code).unwrap_or_default().to_string();
        let key = (parent, level, normalize_region_name(name, level));
        let codes = self.by_name.entry(key).or_default();
        // Current codes first, so a name resolves to the current code when both exist.
        if retired {
            codes.push(code.clone());
        } else {
            codes.insert(0, code.clone());
        }
        self.by_code.insert(
            code.clone(),
            Region {
                code,
                level,
                name: name.to_string(),
                retired,
            },
        );
    }

    /// Looks up an undotted code at any level.
    pub fn get(&self, code: &str) -> Option<&Region> {
        self.by_code.get(code)
    }

    /// Current, retired or unknown, for an undotted code at any level.
    pub fn status(&self, code: &str) -> CodeStatus {
        match self.by_code.get(code) {
            Some(region) if region.retired => CodeStatus::Retired,
            Some(_) => CodeStatus::Current,
            None => CodeStatus::Unknown,
        }
    }

    /// All regions directly below `parent` (provinces when `parent` is empty), sorted by code.
    pub fn children(&self, parent: &str, include_retired: bool) -> Vec<&Region> {
        let mut out: Vec<&Region> = self
            .by_code
            .values()
            .filter(|r| {
                (include_retired || !r.retired)
                    && parent_code(&r.code).unwrap_or_default() == parent
            })
            .collect();
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out
    }

    /// Resolves a region name at `level` within `parent` (empty for provinces).
    ///
    /// Names are compared after [`normalize_region_name`], so `KAB. SERANG`, `Kabupaten Serang`
    /// and `serang` all work; when a regency name is ambiguous between a kabupaten and a kota
    /// (Serang, Tangerang), the word KOTA picks the city and anything else the kabupaten.
    pub fn resolve_name(&self, parent: &str, level: RegionLevel, name: &str) -> NameResolution {
        let key_name = normalize_region_name(name, level);
        if key_name.is_empty() {
            return NameResolution::Empty;
        }
        let key = (parent.to_string(), level, key_name);
        match self.by_name.get(&key).map(Vec::as_slice) {
            None | Some([]) => NameResolution::NotFound,
            Some([one]) => NameResolution::Found(one.clone()),
            Some(many) if level == RegionLevel::Regency => {
                let says_city = name.to_uppercase().contains("KOTA");
                let pick = many.iter().find(|code| {
                    let is_city = code[2..4].parse::<u8>().is_ok_and(|n| n >= 71);
                    is_city == says_city
                });
                match pick {
                    Some(code) => NameResolution::Found(code.clone()),
                    None => NameResolution::Ambiguous(many.to_vec()),
                }
            }
            Some(many) => {
                // Current codes were inserted first: prefer the single current one.
                let current: Vec<&String> = many
                    .iter()
                    .filter(|c| self.by_code.get(*c).is_some_and(|r| !r.retired))
                    .collect();
                if current.len() == 1 {
                    NameResolution::Found(current[0].clone())
                } else {
                    NameResolution::Ambiguous(many.to_vec())
                }
            }
        }
    }
}

/// Outcome of resolving a region name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameResolution {
    /// Exactly one code.
    Found(String),
    /// Several regions share the name under this parent.
    Ambiguous(Vec<String>),
    /// No region of that name under this parent.
    NotFound,
    /// The name was blank.
    Empty,
}

/// Parent of an undotted code: `3601012001` -> `360101`, `36` -> none.
pub fn parent_code(code: &str) -> Option<&str> {
    match code.len() {
        4 => Some(&code[..2]),
        6 => Some(&code[..4]),
        10 => Some(&code[..6]),
        _ => None,
    }
}

/// Normalises a region name for lookup: upper case, punctuation removed, and the
/// administrative words that agencies add or drop (KABUPATEN, KAB., KOTA, KEC., DESA, KEL.,
/// PROVINSI, ADM.) removed.
pub fn normalize_region_name(name: &str, level: RegionLevel) -> String {
    let upper: String = name
        .to_uppercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let drop: &[&str] = match level {
        RegionLevel::Province => &["PROVINSI", "PROV", "PROPINSI"],
        RegionLevel::Regency => &["KABUPATEN", "KAB", "KOTA", "ADM", "ADMINISTRASI"],
        RegionLevel::District => &["KECAMATAN", "KEC"],
        RegionLevel::Village => &["DESA", "KELURAHAN", "KEL", "DS", "GAMPONG", "NAGARI"],
    };
    let words: Vec<&str> = upper
        .split_whitespace()
        .filter(|w| !drop.contains(w))
        .collect();
    // Gampong/Nagari are part of some official village names; keep them when nothing else is left.
    if words.is_empty() {
        return upper.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_load_every_level() {
        let idx = region_index();
        assert_eq!(idx.get("36").map(|r| r.name.as_str()), Some("Banten"));
        assert_eq!(
            idx.get("3601").map(|r| r.name.as_str()),
            Some("Kabupaten Pandeglang")
        );
        assert_eq!(
            idx.get("360101").map(|r| r.level),
            Some(RegionLevel::District)
        );
        assert_eq!(
            idx.get("1101012001").map(|r| r.name.as_str()),
            Some("Keude Bakongan")
        );
        // Every line of the embedded files became a region (headers excluded).
        let expected = WILAYAH_TSV.lines().count() - 1 + VILLAGES_TSV.lines().count() - 1;
        let current = idx.by_code.values().filter(|r| !r.retired).count();
        assert_eq!(current, expected);
    }

    #[test]
    fn retired_papua_codes_are_known_but_marked() {
        let idx = region_index();
        assert_eq!(idx.status("910101"), CodeStatus::Retired);
        assert_eq!(idx.status("360101"), CodeStatus::Current);
        assert_eq!(idx.status("999999"), CodeStatus::Unknown);
    }

    #[test]
    fn names_resolve_with_administrative_words_and_case_ignored() {
        let idx = region_index();
        assert_eq!(
            idx.resolve_name("", RegionLevel::Province, "PROV. BANTEN"),
            NameResolution::Found("36".into())
        );
        assert_eq!(
            idx.resolve_name("36", RegionLevel::Regency, "KAB. PANDEGLANG"),
            NameResolution::Found("3601".into())
        );
        assert_eq!(
            idx.resolve_name("3601", RegionLevel::District, "Kec. Sumur"),
            NameResolution::Found("360101".into())
        );
        assert_eq!(
            idx.resolve_name("3601", RegionLevel::District, "Atlantis"),
            NameResolution::NotFound
        );
    }

    #[test]
    fn kota_and_kabupaten_of_one_name_are_told_apart() {
        let idx = region_index();
        let kab = idx.resolve_name("36", RegionLevel::Regency, "Kabupaten Serang");
        let kota = idx.resolve_name("36", RegionLevel::Regency, "KOTA SERANG");
        assert_eq!(kab, NameResolution::Found("3604".into()));
        assert_eq!(kota, NameResolution::Found("3673".into()));
    }
}
