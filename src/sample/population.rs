//! The synthetic population behind every sample file: Banten's regions, families (KK) and
//! persons with their true identities, NIK and KK numbers, deaths, welfare deciles and
//! program membership.
//!
//! Everything here is truth; the writers derive each agency's (noisy) view from it. Persons
//! of a family are contiguous in [`Population::persons`]; `person_id` and `family_id` in
//! `truth.csv` are positions in these vectors (plus one). All draws come from seeded streams
//! and all iteration is over vectors, so a seed always yields the same population.

use std::collections::HashMap;

use crate::normalize::region::region_index;

use super::SampleError;
use super::calendar::{REF_DAY, YEAR_DAYS, Ymd, age, civil_from_days, days_from_civil};
use super::names::{Name, NameGen};
use super::rng::{Rng, Weighted};

/// Population-level rates (probabilities), kept together as data.
pub(crate) struct PopulationRates {
    /// Families of two or more headed by a widowed or divorced parent without spouse.
    pub single_parent: f64,
    /// Families that also house a parent (or parent-in-law) of the head.
    pub parent_of_head: f64,
    /// Chance that a child is the twin of the previous one.
    pub twins: f64,
    /// Chance that a son carries his father's full name.
    pub son_named_after_father: f64,
    /// Birth dates registered as a placeholder (31-12, 01-07 or 01-01).
    pub placeholder_birth: f64,
    /// Persons who died within three years before the reference date.
    pub dead: f64,
    /// Dead persons still on the rosters that program lists are built from.
    pub dead_in_roster: f64,
    /// Families that moved and got a new KK (programs keep the old one).
    pub moved_family: f64,
    /// Persons whose NIK was first issued in another Banten district.
    pub nik_other_district: f64,
    /// Persons given another person's NIK in the civil registry.
    pub duplicated_nik: f64,
    /// Wives aged 18-42 who are pregnant.
    pub pregnant: f64,
    /// Persons with a disability (under 60; the elderly have 2.5 times this).
    pub disability: f64,
}

/// Default population rates.
pub(crate) const POPULATION: PopulationRates = PopulationRates {
    single_parent: 0.08,
    parent_of_head: 0.08,
    twins: 0.015,
    son_named_after_father: 0.02,
    placeholder_birth: 0.03,
    dead: 0.02,
    dead_in_roster: 0.70,
    moved_family: 0.03,
    nik_other_district: 0.10,
    duplicated_nik: 0.0005,
    pregnant: 0.06,
    disability: 0.02,
};

/// Who each program reaches, and how completely.
pub(crate) struct ProgramRules {
    pub pkh_max_decile: u8,
    pub pkh_cover: f64,
    pub bpnt_max_decile: u8,
    pub bpnt_cover: f64,
    pub pbi_family_cover: f64,
    pub pbi_member_cover: f64,
    pub jamsos_max_decile: u8,
    pub jamsos_cover: f64,
    /// Non-DTKS families added to PKH and BPNT, as a share of the covered families.
    pub inclusion_error: f64,
    /// Share of Jamsosratu rows that are PKH families (exclusivity breach).
    pub jamsos_breach: f64,
    /// Families that file a complaint.
    pub complaint: f64,
    /// Share of complaints coming from eligible DTKS families receiving nothing.
    pub complaint_excluded_share: f64,
}

/// Default program rules.
pub(crate) const PROGRAMS: ProgramRules = ProgramRules {
    pkh_max_decile: 3,
    pkh_cover: 0.85,
    bpnt_max_decile: 4,
    bpnt_cover: 0.80,
    pbi_family_cover: 0.90,
    pbi_member_cover: 0.97,
    jamsos_max_decile: 2,
    jamsos_cover: 0.70,
    inclusion_error: 0.02,
    jamsos_breach: 0.08,
    complaint: 0.005,
    complaint_excluded_share: 0.8,
};

const FAMILY_SIZE_WEIGHTS: [u32; 7] = [12, 17, 21, 23, 14, 8, 5];
/// Religion names (AGAMA) and weights.
#[rustfmt::skip]
pub(crate) const RELIGIONS: [(&str, u32); 5] = [
    ("ISLAM", 940), ("KRISTEN", 30), ("KATHOLIK", 15), ("BUDHA", 10), ("HINDU", 5),
];
/// Occupations (JENIS_PKRJN); the first four are non-work categories.
#[rustfmt::skip]
pub(crate) const JOBS: [&str; 15] = [
    "BELUM/TIDAK BEKERJA", "MENGURUS RUMAH TANGGA", "PELAJAR/MAHASISWA", "PENSIUNAN",
    "PETANI/PEKEBUN", "BURUH HARIAN LEPAS", "WIRASWASTA", "KARYAWAN SWASTA", "NELAYAN/PERIKANAN",
    "PEDAGANG", "BURUH TANI/PERKEBUNAN", "SOPIR", "TUKANG BATU", "GURU", "PEGAWAI NEGERI SIPIL",
];
#[rustfmt::skip]
const OTHER_PLACES: [&str; 18] = [
    "JAKARTA", "BOGOR", "BANDUNG", "SUKABUMI", "CIANJUR", "GARUT", "TASIKMALAYA", "CIREBON",
    "KUNINGAN", "BREBES", "TEGAL", "SEMARANG", "YOGYAKARTA", "SURABAYA", "LAMPUNG", "PALEMBANG",
    "KARAWANG", "INDRAMAYU",
];
#[rustfmt::skip]
const KAMPUNG: [&str; 30] = [
    "SUKAMAJU", "SUKARAME", "CIBADAK", "CIKONENG", "PASIRGEDE", "CITEREUP", "BABAKAN", "PARUNG",
    "CILAME", "SINDANGSARI", "MEKARSARI", "SUKADAMAI", "KADUPANDAK", "KRAJAN", "BOJONG", "CIHERANG",
    "TANJUNGSARI", "CISALAK", "PEUSAR", "SUMUR BATU", "KEBON KALAPA", "GUNUNG SARI", "CIPANAS",
    "PASANGGRAHAN", "SAWAH LUHUR", "KALANG ANYAR", "KARANG TENGAH", "CIGADUNG", "PABUARAN",
    "LEBAK SARI",
];
#[rustfmt::skip]
const STREETS: [&str; 20] = [
    "RAYA SERANG", "MERDEKA", "SUDIRMAN", "AHMAD YANI", "DIPONEGORO", "PAHLAWAN",
    "SULTAN AGENG TIRTAYASA", "MAULANA HASANUDIN", "VETERAN", "CEMPAKA", "MELATI", "MAWAR",
    "KENANGA", "DAMAI", "BHAYANGKARA", "PERMATA", "INDUSTRI", "MASJID", "PASAR BARU", "KAMBOJA",
];

/// A regency or city of Banten.
pub(crate) struct Regency {
    /// Kemendagri code, `3601`.
    pub code: String,
    /// Official name, `Kabupaten Pandeglang`.
    pub title: String,
    /// Agency style, `KAB. PANDEGLANG` or `KOTA SERANG`.
    pub short: String,
    /// Long agency style, `KABUPATEN PANDEGLANG` or `KOTA SERANG`.
    pub long: String,
    /// Plain upper-case name as a birthplace, `PANDEGLANG`.
    pub plain: String,
    /// A kota (code 71-99) rather than a kabupaten.
    pub is_city: bool,
}

/// A district (kecamatan).
pub(crate) struct District {
    /// Kemendagri code, `360101`.
    pub code: String,
    /// The code as a number (NIK and KK prefix).
    pub number: u64,
    /// Index into [`Geo::regencies`].
    pub regency: usize,
    /// Official name, `Sumur`.
    pub title: String,
    /// Upper-case name.
    pub upper: String,
}

/// A village (desa or kelurahan).
pub(crate) struct Village {
    /// Kemendagri code, `3601012001`.
    pub code: String,
    /// Index into [`Geo::districts`].
    pub district: usize,
    /// Official name.
    pub title: String,
    /// Upper-case name.
    pub upper: String,
}

/// Banten's regions, sorted by code.
pub(crate) struct Geo {
    pub regencies: Vec<Regency>,
    pub districts: Vec<District>,
    pub villages: Vec<Village>,
}

impl Geo {
    /// Banten (36) from the embedded Kemendagri tables.
    pub(crate) fn banten() -> Result<Geo, SampleError> {
        let index = region_index();
        let mut geo = Geo {
            regencies: Vec::new(),
            districts: Vec::new(),
            villages: Vec::new(),
        };
        for regency in index.children("36", false) {
            let plain = regency
                .name
                .trim_start_matches("Kabupaten ")
                .trim_start_matches("Kota ")
                .to_uppercase();
            let is_city = regency.code[2..].parse::<u8>().is_ok_and(|n| n >= 71);
            let (short, long) = if is_city {
                (format!("KOTA {plain}"), format!("KOTA {plain}"))
            } else {
                (format!("KAB. {plain}"), format!("KABUPATEN {plain}"))
            };
            let regency_idx = geo.regencies.len();
            geo.regencies.push(Regency {
                code: regency.code.clone(),
                title: regency.name.clone(),
                short,
                long,
                plain,
                is_city,
            });
            for district in index.children(&regency.code, false) {
                let Ok(number) = district.code.parse::<u64>() else {
                    return Err(SampleError::Settings(format!(
                        "bad district code {}",
                        district.code
                    )));
                };
                let district_idx = geo.districts.len();
                geo.districts.push(District {
                    code: district.code.clone(),
                    number,
                    regency: regency_idx,
                    title: district.name.clone(),
                    upper: district.name.to_uppercase(),
                });
                for village in index.children(&district.code, false) {
                    geo.villages.push(Village {
                        code: village.code.clone(),
                        district: district_idx,
                        title: village.name.clone(),
                        upper: village.name.to_uppercase(),
                    });
                }
            }
        }
        if geo.villages.is_empty() || geo.districts.len() < 2 {
            return Err(SampleError::Settings(
                "the region table has no Banten villages".into(),
            ));
        }
        Ok(geo)
    }
}

/// Bits of [`Person::flags`].
pub(crate) mod flag {
    pub const PREGNANT: u8 = 1;
    pub const DISABLED: u8 = 2;
    pub const SCHOOL: u8 = 4;
    /// Dead, but still on the rosters program lists are built from.
    pub const IN_ROSTER: u8 = 8;
    /// Birth date registered as a placeholder.
    pub const PLACEHOLDER: u8 = 16;
    /// Registered under another person's NIK.
    pub const NIK_DUPLICATED: u8 = 32;
    /// Covered by PBI-JKN.
    pub const IN_PBI: u8 = 64;
}

/// Bits of [`Family::programs`].
pub(crate) mod program {
    pub const PKH: u8 = 1;
    pub const BPNT: u8 = 2;
    pub const JAMSOS: u8 = 4;
    pub const COMPLAINT: u8 = 8;
}

/// Bits of [`Population::components`] (PKH components plus school age).
pub(crate) mod component {
    pub const PREGNANT: u8 = 1;
    pub const BALITA: u8 = 2;
    pub const SD: u8 = 4;
    pub const SMP: u8 = 8;
    pub const SMA: u8 = 16;
    pub const LANSIA: u8 = 32;
    pub const DISABLED: u8 = 64;
    pub const SCHOOL_AGE: u8 = 128;
    /// PKH component names, in list order.
    pub const NAMES: [(u8, &str); 7] = [
        (PREGNANT, "Ibu Hamil"),
        (BALITA, "Balita"),
        (SD, "Anak SD"),
        (SMP, "Anak SMP"),
        (SMA, "Anak SMA"),
        (LANSIA, "Lansia"),
        (DISABLED, "Disabilitas"),
    ];
    /// What makes a family eligible for PKH (and Jamsosratu).
    pub const MOTHER_CHILD: u8 = PREGNANT | BALITA | SCHOOL_AGE;
}

/// One person: true identity and registry facts.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Registered birth date (a placeholder for some), day number.
    pub birth: i32,
    /// Death date, day number.
    pub death: Option<i32>,
    /// NIK as registered.
    pub nik: u64,
    pub name: Name,
    pub female: bool,
    /// Relationship to the head, civil-registry code (STAT_HBKEL 1-11).
    pub rel: u8,
    /// Marital status (STAT_KWN 1-4).
    pub marital: u8,
    /// Index into [`JOBS`].
    pub job: u8,
    /// Birthplace: regency index, 1000 + district index, or 5000 + other place index.
    pub birthplace: u16,
    /// Bits from [`flag`].
    pub flags: u8,
}

impl Person {
    /// Year of the registered birth date.
    pub(crate) fn birth_year(&self) -> i32 {
        civil_from_days(self.birth).y
    }

    /// True when alive, or dead but still on program rosters.
    pub(crate) fn on_roster(&self) -> bool {
        self.death.is_none() || self.flags & flag::IN_ROSTER != 0
    }
}

/// One family (KK).
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// Index of the head in [`Population::persons`]; members follow.
    pub first: u32,
    pub size: u8,
    /// Index into [`Geo::villages`].
    pub village: u16,
    /// Index into [`RELIGIONS`].
    pub religion: u8,
    /// Current KK number (civil registry).
    pub kk: u64,
    /// Pre-move KK number that programs still carry.
    pub kk_old: Option<u64>,
    /// Index into [`KAMPUNG`] or [`STREETS`].
    pub street: u8,
    pub house_no: u16,
    pub rt: u8,
    pub rw: u8,
    /// Welfare decile, 1 (poorest) to 10; 1-4 are in the DTKS.
    pub decile: u8,
    /// Bits from [`program`].
    pub programs: u8,
}

impl Family {
    /// Person indices of the members.
    pub(crate) fn members(&self) -> std::ops::Range<usize> {
        self.first as usize..self.first as usize + usize::from(self.size)
    }

    /// In the welfare registry.
    pub(crate) fn in_dtks(&self) -> bool {
        self.decile <= 4
    }

    /// The KK number program lists carry (the old one for moved families).
    pub(crate) fn program_kk(&self) -> u64 {
        self.kk_old.unwrap_or(self.kk)
    }
}

/// The whole synthetic population.
pub(crate) struct Population {
    pub geo: Geo,
    pub families: Vec<Family>,
    pub persons: Vec<Person>,
    /// Family indices sorted by village: the order agency files list families in.
    pub order: Vec<u32>,
}

/// Stream numbers of the seeded generators.
pub(crate) mod stream {
    pub const PEOPLE: u64 = 1;
    pub const IDS: u64 = 2;
    pub const WELFARE: u64 = 3;
}

/// Weight tables drawn from for every family.
struct Tables {
    names: NameGen,
    religions: Weighted,
    sizes: Weighted,
}

struct FamilyCtx<'a> {
    names: &'a NameGen,
    christian: bool,
    regency: u16,
    district: u16,
}

impl FamilyCtx<'_> {
    fn person(&self, rng: &mut Rng, female: bool, birth: i32, rel: u8, marital: u8) -> Person {
        let years = age(birth);
        let name = self
            .names
            .generate(rng, female, civil_from_days(birth).y, self.christian);
        let mut flags = 0;
        let school = match years {
            6..=15 => 0.95,
            16..=18 => 0.75,
            _ => 0.0,
        };
        if rng.chance(school) {
            flags |= flag::SCHOOL;
        }
        let disability = if years >= 60 {
            POPULATION.disability * 2.5
        } else {
            POPULATION.disability
        };
        if rng.chance(disability) {
            flags |= flag::DISABLED;
        }
        if rel == 3 && (18..=42).contains(&years) && rng.chance(POPULATION.pregnant) {
            flags |= flag::PREGNANT;
        }
        let job = if years < 5 {
            0
        } else if years <= 18 {
            if flags & flag::SCHOOL != 0 { 2 } else { 0 }
        } else if years >= 65 {
            if rng.chance(0.15) { 3 } else { 0 }
        } else if female && rng.chance(0.6) {
            1
        } else {
            4 + rng.below(JOBS.len() as u64 - 4) as u8
        };
        let birthplace = match rng.below(10) {
            0..=6 => self.regency,
            7 => 1000 + self.district,
            _ => 5000 + rng.index(OTHER_PLACES.len()) as u16,
        };
        Person {
            birth,
            death: None,
            nik: 0,
            name,
            female,
            rel,
            marital,
            job,
            birthplace,
            flags,
        }
    }
}

/// A birth date for someone `years` old at the reference date.
fn birth_for_age(rng: &mut Rng, years: i64) -> i32 {
    REF_DAY - (years * 36_525 / 100) as i32 - rng.below(365) as i32
}

impl Population {
    /// Builds exactly `persons` persons with the given seed.
    pub(crate) fn build(persons: usize, seed: u64) -> Result<Population, SampleError> {
        let geo = Geo::banten()?;
        let mut pop = Population {
            geo,
            families: Vec::with_capacity(persons / 3 + 1),
            persons: Vec::with_capacity(persons),
            order: Vec::new(),
        };
        let tables = Tables {
            names: NameGen::new(),
            religions: Weighted::new(RELIGIONS.iter().map(|r| r.1)),
            sizes: Weighted::new(FAMILY_SIZE_WEIGHTS),
        };
        let mut rng = Rng::stream(seed, stream::PEOPLE);
        while pop.persons.len() < persons {
            pop.add_family(&mut rng, &tables, persons - pop.persons.len());
        }
        pop.assign_ids(&mut Rng::stream(seed, stream::IDS));
        let mut rng = Rng::stream(seed, stream::WELFARE);
        pop.assign_welfare(&mut rng);
        pop.assign_programs(&mut rng);
        let mut order: Vec<u32> = (0..pop.families.len() as u32).collect();
        order.sort_by_key(|&f| (pop.families[f as usize].village, f));
        pop.order = order;
        Ok(pop)
    }

    fn add_family(&mut self, rng: &mut Rng, tables: &Tables, remaining: usize) {
        let village = rng.index(self.geo.villages.len());
        let district = self.geo.villages[village].district;
        let religion = tables.religions.draw(rng);
        let ctx = FamilyCtx {
            names: &tables.names,
            christian: religion == 1 || religion == 2,
            regency: self.geo.districts[district].regency as u16,
            district: district as u16,
        };
        let target = (1 + tables.sizes.draw(rng)).min(remaining);
        let first = self.persons.len();
        let is_city = self.geo.regencies[usize::from(ctx.regency)].is_city;
        self.families.push(Family {
            first: first as u32,
            size: 0,
            village: village as u16,
            religion: religion as u8,
            kk: 0,
            kk_old: None,
            street: rng.index(if is_city {
                STREETS.len()
            } else {
                KAMPUNG.len()
            }) as u8,
            house_no: rng.range(1, 120) as u16,
            rt: rng.range(1, 12) as u8,
            rw: rng.range(1, 8) as u8,
            decile: 10,
            programs: 0,
        });
        if target == 1 {
            let (years, female, marital) = if rng.chance(0.5) {
                (rng.range(60, 89), rng.chance(0.65), 4)
            } else {
                (
                    rng.range(19, 35),
                    rng.chance(0.4),
                    if rng.chance(0.85) { 1 } else { 3 },
                )
            };
            let birth = birth_for_age(rng, years);
            let head = ctx.person(rng, female, birth, 1, marital);
            self.persons.push(head);
        } else {
            self.add_household(rng, &ctx, target);
        }
        let size = self.persons.len() - first;
        if let Some(family) = self.families.last_mut() {
            family.size = size as u8;
        }
    }

    fn add_household(&mut self, rng: &mut Rng, ctx: &FamilyCtx<'_>, target: usize) {
        let first = self.persons.len();
        let head_years = 20 + rng.range(0, 24) + rng.range(0, 29);
        let single_parent = rng.chance(POPULATION.single_parent);
        let head_female = single_parent && rng.chance(0.8);
        let head_birth = birth_for_age(rng, head_years);
        let marital = if single_parent {
            rng.range(3, 4) as u8
        } else {
            2
        };
        let head = ctx.person(rng, head_female, head_birth, 1, marital);
        let head_name = head.name;
        self.persons.push(head);
        let mut mother_birth = if head_female {
            head_birth
        } else {
            head_birth + 3 * YEAR_DAYS
        };
        let mut has_wife = false;
        if !single_parent {
            let wife_birth = (head_birth + rng.below(8 * 365) as i32).min(REF_DAY - 18 * YEAR_DAYS);
            let wife = ctx.person(rng, true, wife_birth, 3, 2);
            self.persons.push(wife);
            mother_birth = wife_birth;
            has_wife = true;
        }
        if target - (self.persons.len() - first) >= 2
            && head_years < 62
            && rng.chance(POPULATION.parent_of_head)
        {
            let birth = head_birth - (rng.range(20, 35) as i32 * YEAR_DAYS + rng.below(365) as i32);
            if age(birth) <= 95 {
                let rel = if has_wife && rng.chance(0.4) { 8 } else { 7 };
                let female = rng.chance(0.65);
                let parent = ctx.person(rng, female, birth, rel, 4);
                self.persons.push(parent);
            }
        }
        let mut next = mother_birth + rng.range(18, 30) as i32 * YEAR_DAYS + rng.below(365) as i32;
        let mut previous: Option<i32> = None;
        while self.persons.len() - first < target {
            let twin = previous.is_some() && rng.chance(POPULATION.twins);
            let birth = match previous {
                Some(p) if twin => p,
                _ => next,
            };
            if birth >= REF_DAY {
                break;
            }
            if !twin {
                next = birth + rng.range(1, 5) as i32 * YEAR_DAYS + rng.below(200) as i32;
            }
            if age(birth) > 32 {
                continue; // grown children have their own KK
            }
            let female = rng.chance(0.49);
            let mut child = ctx.person(rng, female, birth, 4, 1);
            if !female && !head_female && rng.chance(POPULATION.son_named_after_father) {
                child.name = head_name;
            }
            self.persons.push(child);
            previous = Some(birth);
        }
    }

    /// Placeholder birth dates, NIK and KK numbers, deaths and duplicated NIKs.
    fn assign_ids(&mut self, rng: &mut Rng) {
        let rates = &POPULATION;
        for person in &mut self.persons {
            if rng.chance(rates.placeholder_birth) {
                let y = civil_from_days(person.birth).y;
                let (m, d) = match (y < 2004, rng.chance(0.75)) {
                    (true, true) => (12, 31),
                    (false, true) => (7, 1),
                    _ => (1, 1),
                };
                let day = days_from_civil(y, m, d);
                if day < REF_DAY {
                    person.birth = day;
                    person.flags |= flag::PLACEHOLDER;
                }
            }
        }
        let n_districts = self.geo.districts.len();
        let other_district = |rng: &mut Rng, home: usize| {
            let d = rng.index(n_districts);
            if d == home { (d + 1) % n_districts } else { d }
        };
        let mut nik_serials: HashMap<u64, u16> = HashMap::with_capacity(self.persons.len());
        let mut kk_serials: HashMap<u64, u16> = HashMap::with_capacity(self.families.len());
        for family in &mut self.families {
            let district = self.geo.villages[usize::from(family.village)].district;
            let head_birth = self.persons[family.first as usize].birth;
            let earliest = (head_birth + 17 * YEAR_DAYS).max(days_from_civil(2000, 1, 1));
            let moved = rng.chance(rates.moved_family);
            let issued = if moved {
                REF_DAY - 30 - rng.below(3 * 365) as i32
            } else {
                earliest + rng.below((REF_DAY - 30 - earliest).max(1) as u64) as i32
            };
            family.kk = next_number(
                &mut kk_serials,
                self.geo.districts[district].number,
                issued,
                false,
            );
            let mut home = district;
            if moved {
                let old_district = if rng.chance(0.6) {
                    other_district(rng, district)
                } else {
                    district
                };
                let old_issued = earliest.min(issued - 365) + rng.below(365) as i32;
                let old_issued = old_issued.min(issued - 1);
                family.kk_old = Some(next_number(
                    &mut kk_serials,
                    self.geo.districts[old_district].number,
                    old_issued,
                    false,
                ));
                home = old_district;
            }
            for person in &mut self.persons[family.members()] {
                // Children born after the move are first registered where the family lives.
                let home = if person.birth >= issued {
                    district
                } else {
                    home
                };
                let d = if rng.chance(rates.nik_other_district) {
                    other_district(rng, home)
                } else {
                    home
                };
                person.nik = next_number(
                    &mut nik_serials,
                    self.geo.districts[d].number,
                    person.birth,
                    person.female,
                );
            }
        }
        self.assign_deaths(rng);
        let n = self.persons.len();
        let duplicates = (n as f64 * rates.duplicated_nik).round() as usize;
        for _ in 0..duplicates {
            let (a, b) = (rng.index(n), rng.index(n));
            if a != b && (self.persons[a].flags | self.persons[b].flags) & flag::NIK_DUPLICATED == 0
            {
                self.persons[b].nik = self.persons[a].nik;
                self.persons[b].flags |= flag::NIK_DUPLICATED;
            }
        }
    }

    /// About 2% of persons die within three years before the reference date, mostly the old.
    fn assign_deaths(&mut self, rng: &mut Rng) {
        let weight = |p: &Person| match age(p.birth) {
            0..=49 => 1.0,
            50..=69 => 6.0,
            _ => 20.0,
        };
        let total: f64 = self.persons.iter().map(weight).sum();
        let scale = POPULATION.dead * self.persons.len() as f64 / total.max(1.0);
        for person in &mut self.persons {
            if rng.chance((weight(person) * scale).min(0.9)) {
                let day = REF_DAY - 1 - rng.below(3 * 365) as i32;
                person.death = Some(day.max(person.birth + 1).min(REF_DAY - 1));
                if rng.chance(POPULATION.dead_in_roster) {
                    person.flags |= flag::IN_ROSTER;
                }
            }
        }
    }

    /// Welfare deciles: Pandeglang and Lebak poorer, cities richer.
    fn assign_welfare(&mut self, rng: &mut Rng) {
        for family in &mut self.families {
            let district = self.geo.villages[usize::from(family.village)].district;
            let regency = &self.geo.regencies[self.geo.districts[district].regency];
            let u = rng.unit();
            let u = if regency.is_city {
                u.powf(0.75)
            } else if regency.code == "3601" || regency.code == "3602" {
                u.powf(1.4)
            } else {
                u
            };
            family.decile = (1 + (u * 10.0) as u8).min(10);
        }
    }

    /// PKH components and school age among the living members of family `f`.
    pub(crate) fn components(&self, f: usize) -> u8 {
        let mut bits = 0;
        for p in &self.persons[self.families[f].members()] {
            if p.death.is_some() {
                continue;
            }
            let years = age(p.birth);
            if p.flags & flag::PREGNANT != 0 {
                bits |= component::PREGNANT;
            }
            if p.flags & flag::DISABLED != 0 {
                bits |= component::DISABLED;
            }
            match years {
                0..=5 => bits |= component::BALITA,
                6..=18 => {
                    bits |= component::SCHOOL_AGE;
                    if p.flags & flag::SCHOOL != 0 {
                        bits |= match years {
                            6..=12 => component::SD,
                            13..=15 => component::SMP,
                            _ => component::SMA,
                        };
                    }
                }
                70.. => bits |= component::LANSIA,
                _ => {}
            }
        }
        bits
    }

    fn receives_anything(&self, f: usize) -> bool {
        let family = &self.families[f];
        family.programs & (program::PKH | program::BPNT | program::JAMSOS) != 0
            || self.persons[family.members()]
                .iter()
                .any(|p| p.flags & flag::IN_PBI != 0)
    }

    /// Program membership, inclusion errors, exclusivity breaches and complaints.
    fn assign_programs(&mut self, rng: &mut Rng) {
        let rules = &PROGRAMS;
        let n = self.families.len();
        let comps: Vec<u8> = (0..n).map(|f| self.components(f)).collect();
        let (mut pkh, mut bpnt) = (0usize, 0usize);
        for (family, &bits) in self.families.iter_mut().zip(&comps) {
            if family.decile <= rules.pkh_max_decile
                && bits & component::MOTHER_CHILD != 0
                && rng.chance(rules.pkh_cover)
            {
                family.programs |= program::PKH;
                pkh += 1;
            }
            if family.decile <= rules.bpnt_max_decile && rng.chance(rules.bpnt_cover) {
                family.programs |= program::BPNT;
                bpnt += 1;
            }
            if family.in_dtks() && rng.chance(rules.pbi_family_cover) {
                let members = family.members();
                for p in &mut self.persons[members] {
                    if p.on_roster() && rng.chance(rules.pbi_member_cover) {
                        p.flags |= flag::IN_PBI;
                    }
                }
            }
        }
        // Inclusion errors: non-DTKS families, about 2% of each program's rows.
        let outside_with_kids = (0..n)
            .filter(|&f| !self.families[f].in_dtks() && comps[f] & component::MOTHER_CHILD != 0)
            .count();
        let outside = (0..n).filter(|&f| !self.families[f].in_dtks()).count();
        let p_pkh = rules.inclusion_error * pkh as f64 / outside_with_kids.max(1) as f64;
        let p_bpnt = rules.inclusion_error * bpnt as f64 / outside.max(1) as f64;
        for (family, &bits) in self.families.iter_mut().zip(&comps) {
            if family.in_dtks() {
                continue;
            }
            if bits & component::MOTHER_CHILD != 0 && rng.chance(p_pkh) {
                family.programs |= program::PKH;
            }
            if rng.chance(p_bpnt) {
                family.programs |= program::BPNT;
            }
        }
        // Jamsosratu: very poor mother-and-child families not in PKH, plus planted breaches.
        let mut jamsos = 0usize;
        for (family, &bits) in self.families.iter_mut().zip(&comps) {
            if family.decile <= rules.jamsos_max_decile
                && bits & component::MOTHER_CHILD != 0
                && family.programs & program::PKH == 0
                && rng.chance(rules.jamsos_cover)
            {
                family.programs |= program::JAMSOS;
                jamsos += 1;
            }
        }
        let pkh_dtks = (0..n)
            .filter(|&f| {
                self.families[f].in_dtks() && self.families[f].programs & program::PKH != 0
            })
            .count();
        let breaches = rules.jamsos_breach / (1.0 - rules.jamsos_breach) * jamsos as f64;
        let p_breach = breaches / pkh_dtks.max(1) as f64;
        for family in &mut self.families {
            if family.in_dtks() && family.programs & program::PKH != 0 && rng.chance(p_breach) {
                family.programs |= program::JAMSOS;
            }
        }
        // Complaints: mostly DTKS families receiving nothing, a few random families.
        let excluded: Vec<bool> = (0..n)
            .map(|f| self.families[f].in_dtks() && !self.receives_anything(f))
            .collect();
        let n_excluded = excluded.iter().filter(|&&e| e).count();
        let target = rules.complaint * n as f64;
        let p_excluded =
            (rules.complaint_excluded_share * target / n_excluded.max(1) as f64).min(1.0);
        let p_random = (1.0 - rules.complaint_excluded_share) * target / n.max(1) as f64;
        for (f, family) in self.families.iter_mut().enumerate() {
            let p = if excluded[f] { p_excluded } else { p_random };
            if rng.chance(p) {
                family.programs |= program::COMPLAINT;
            }
        }
    }

    /// True when family `f` is eligible for some program yet receives nothing.
    pub(crate) fn excluded(&self, f: usize) -> bool {
        self.families[f].in_dtks() && !self.receives_anything(f)
    }

    /// Person indices on the roster of family `f` (the living and the unremoved dead).
    pub(crate) fn roster(&self, f: usize) -> impl Iterator<Item = usize> + '_ {
        self.families[f]
            .members()
            .filter(|&p| self.persons[p].on_roster())
    }

    /// The payee of a family-level program: the wife, else a female head, else the head,
    /// else the first member on the roster.
    pub(crate) fn payee(&self, f: usize) -> Option<usize> {
        let head = self.families[f].first as usize;
        self.roster(f)
            .find(|&p| self.persons[p].rel == 3)
            .or_else(|| self.roster(f).find(|&p| p == head))
            .or_else(|| self.roster(f).next())
    }

    /// The head of family `f` when still on the roster.
    pub(crate) fn roster_head(&self, f: usize) -> Option<usize> {
        let head = self.families[f].first as usize;
        self.persons[head].on_roster().then_some(head)
    }

    /// The mother of the children of family `f`: the wife, else a female head.
    pub(crate) fn mother(&self, f: usize) -> Option<usize> {
        self.families[f].members().find(|&p| {
            self.persons[p].rel == 3 || (self.persons[p].rel == 1 && self.persons[p].female)
        })
    }

    /// Regency, district and village of family `f`.
    pub(crate) fn place(&self, f: usize) -> (&Regency, &District, &Village) {
        let village = &self.geo.villages[usize::from(self.families[f].village)];
        let district = &self.geo.districts[village.district];
        (&self.geo.regencies[district.regency], district, village)
    }

    /// Appends the street address of family `f`; with `rt_rw`, also ` RT 003/RW 002`.
    pub(crate) fn address(&self, f: usize, rt_rw: bool, out: &mut String) {
        use std::fmt::Write as _;
        let family = &self.families[f];
        let (regency, _, _) = self.place(f);
        let street = usize::from(family.street);
        if regency.is_city {
            let _ = write!(
                out,
                "JL. {} NO. {}",
                STREETS[street % STREETS.len()],
                family.house_no
            );
        } else {
            let _ = write!(out, "KP. {}", KAMPUNG[street % KAMPUNG.len()]);
        }
        if rt_rw {
            let _ = write!(out, " RT {:03}/RW {:03}", family.rt, family.rw);
        }
    }

    /// Birthplace text of a person.
    pub(crate) fn birthplace(&self, p: &Person) -> &str {
        let code = usize::from(p.birthplace);
        match code {
            5000.. => OTHER_PLACES.get(code - 5000).copied().unwrap_or(""),
            1000.. => self
                .geo
                .districts
                .get(code - 1000)
                .map_or("", |d| d.upper.as_str()),
            _ => self
                .geo
                .regencies
                .get(code)
                .map_or("", |r| r.plain.as_str()),
        }
    }
}

/// Next NIK or KK number: district (6 digits) + DDMMYY (day + 40 for women) + a serial
/// starting at 0001 within the 12-digit prefix.
pub(crate) fn next_number(
    serials: &mut HashMap<u64, u16>,
    district: u64,
    day: i32,
    female: bool,
) -> u64 {
    let Ymd { y, m, d } = civil_from_days(day);
    let dd = u64::from(d) + if female { 40 } else { 0 };
    let prefix = district * 1_000_000 + dd * 10_000 + u64::from(m) * 100 + y.rem_euclid(100) as u64;
    let serial = serials.entry(prefix).or_insert(0);
    *serial = if *serial >= 9999 { 1 } else { *serial + 1 };
    prefix * 10_000 + u64::from(*serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nik_adds_forty_for_women_and_serials_count_up() {
        let mut serials = HashMap::new();
        let day = days_from_civil(1985, 7, 5);
        let man = next_number(&mut serials, 360_101, day, false);
        let woman = next_number(&mut serials, 360_101, day, true);
        let twin = next_number(&mut serials, 360_101, day, true);
        assert_eq!(format!("{man:016}"), "3601010507850001");
        assert_eq!(format!("{woman:016}"), "3601014507850001");
        assert_eq!(format!("{twin:016}"), "3601014507850002");
    }

    #[test]
    fn population_is_deterministic_and_consistent() {
        let a = Population::build(2_000, 7).expect("population");
        let b = Population::build(2_000, 7).expect("population");
        assert_eq!(a.persons.len(), 2_000);
        let niks = |p: &Population| p.persons.iter().map(|x| x.nik).collect::<Vec<_>>();
        assert_eq!(niks(&a), niks(&b));
        for p in a
            .persons
            .iter()
            .filter(|p| p.flags & flag::NIK_DUPLICATED == 0)
        {
            let s = format!("{:016}", p.nik);
            assert!(s.starts_with("36"), "{s}");
            let day: u32 = s[6..8].parse().expect("day");
            assert_eq!(day > 40, p.female, "{s}");
            assert_ne!(&s[12..], "0000");
        }
        // Serials are unique within a prefix: only the planted duplicates share a NIK.
        let mut distinct: Vec<u64> = a
            .persons
            .iter()
            .filter(|p| p.flags & flag::NIK_DUPLICATED == 0)
            .map(|p| p.nik)
            .collect();
        distinct.sort_unstable();
        let before = distinct.len();
        distinct.dedup();
        assert_eq!(before, distinct.len());
        let mut next = 0;
        for family in &a.families {
            assert!(family.size >= 1);
            assert_eq!(family.first as usize, next, "members are contiguous");
            assert_eq!(a.persons[next].rel, 1);
            next += usize::from(family.size);
        }
        assert_eq!(next, a.persons.len());
    }
}
