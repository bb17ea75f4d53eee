//! The seven agency files of the sample, each derived from the [`Population`] truth with its
//! own layout, coverage rule and noise, and each line recorded in `truth.csv`.
//!
//! Headers here are a contract: ingestion layouts are written against them.

use std::io::Write as _;
use std::path::Path;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};
use serde::Serialize;

use super::calendar::{REF_DAY, age, civil_from_days, days_from_civil};
use super::noise::{self, Rates, Tag, Tags};
use super::population::{JOBS, Population, RELIGIONS, component, flag, program};
use super::rng::Rng;
use super::writers::{CsvOut, Dmy, Iso, Truth, create_file, io_error, other_error};
use super::{GeneratedFile, SampleError};

#[rustfmt::skip]
const DUKCAPIL_HEADER: [&str; 19] = [
    "NIK", "NO_KK", "NAMA_LGKP", "TMPT_LHR", "TGL_LHR", "JENIS_KLMIN", "STAT_KWN", "STAT_HBKEL",
    "AGAMA", "JENIS_PKRJN", "NO_PROP", "NO_KAB", "NO_KEC", "NO_KEL", "ALAMAT", "NO_RT", "NO_RW",
    "STATUS_HIDUP", "TGL_MATI",
];
#[rustfmt::skip]
const DTKS_HEADER: [&str; 21] = [
    "IDBDT", "IDARTBDT", "KDPROP", "KDKAB", "KDKEC", "KDDESA", "Nama", "JnsKel", "TmpLahir",
    "TglLahir", "NIK", "NoKK", "Hub_KRT", "Alamat", "Desil", "Hamil", "Disabilitas", "Sekolah",
    "PKH", "BPNT", "PBI",
];
#[rustfmt::skip]
const KPM_HEADER: [&str; 11] = [
    "NO", "NAMA PENERIMA", "NIK KTP", "NO KK", "TAHAP", "KOMPONEN", "PROVINSI", "KABUPATEN",
    "KECAMATAN", "KELURAHAN", "ALAMAT",
];
#[rustfmt::skip]
const PBI_HEADER: [&str; 11] = [
    "NO_KARTU", "NIK", "NAMA", "TGL_LAHIR", "JENIS_KELAMIN", "HUBUNGAN", "KD_PROP", "KD_KAB",
    "KD_KEC", "KD_DESA", "STATUS",
];
#[rustfmt::skip]
const JAMSOS_HEADER: [&str; 14] = [
    "No.", "Nama Lengkap", "N I K", "No. Kartu Keluarga", "Tempat Lahir", "Tanggal Lahir",
    "Jenis Kelamin", "Kabupaten/Kota", "Kecamatan", "Desa/Kelurahan", "Alamat", "RT", "RW",
    "Keterangan",
];
#[rustfmt::skip]
const KETERANGAN: [&str; 8] = [
    "", "", "Ibu hamil", "Balita", "Anak sekolah", "Verifikasi desa 2025", "Data lama",
    "Penerima baru",
];
const KELUHAN: [&str; 5] = [
    "belum pernah menerima bantuan",
    "belum pernah menerima bantuan",
    "tidak terdaftar PKH padahal ada balita",
    "bantuan BPNT berhenti sejak 2024",
    "lansia di rumah tidak menerima bantuan",
];

/// Seeded stream numbers, one per file.
mod stream {
    pub const DTKS: u64 = 11;
    pub const PKH: u64 = 12;
    pub const BPNT: u64 = 13;
    pub const PBI: u64 = 14;
    pub const JAMSOS: u64 = 15;
    pub const PENGADUAN: u64 = 16;
}

fn sex_digit(female: bool) -> &'static str {
    if female { "2" } else { "1" }
}

fn sex_letter(female: bool) -> &'static str {
    if female { "P" } else { "L" }
}

/// DTKS Hub_KRT from the civil-registry relationship code.
fn hub_krt(rel: u8) -> &'static str {
    match rel {
        1 => "1",
        2 | 3 => "2",
        4 => "3",
        5 => "4",
        6 => "5",
        7 | 8 => "6",
        10 => "7",
        _ => "8",
    }
}

/// PBI-JKN relationship text from the civil-registry relationship code.
fn hubungan(rel: u8) -> &'static str {
    match rel {
        1 => "KEPALA KELUARGA",
        2 => "SUAMI",
        3 => "ISTRI",
        4 => "ANAK",
        _ => "FAMILI LAIN",
    }
}

fn flag01(set: bool) -> &'static str {
    if set { "1" } else { "0" }
}

/// `KP. SUKAMAJU` -> `Kp. Sukamaju`.
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// File 1, the civil registry biodata: every person once, clean, except planted duplicated NIKs.
pub(crate) fn dukcapil(
    pop: &Population,
    dir: &Path,
    truth: &mut Truth,
    progress: &dyn Fn(u64),
) -> Result<GeneratedFile, SampleError> {
    let mut out = CsvOut::create(
        dir,
        "dukcapil/biodata.csv",
        "dukcapil",
        b'|',
        &DUKCAPIL_HEADER,
    )?;
    let (mut name, mut address) = (String::new(), String::new());
    let mut done = 0u64;
    for &f in &pop.order {
        let f = f as usize;
        let family = &pop.families[f];
        let (regency, district, village) = pop.place(f);
        address.clear();
        pop.address(f, false, &mut address);
        for pid in family.members() {
            let p = &pop.persons[pid];
            out.fmt(format_args!("{:016}", p.nik))?;
            out.fmt(format_args!("{:016}", family.kk))?;
            name.clear();
            p.name.render(p.birth_year() < 1955, &mut name);
            out.field(&name)?;
            out.field(pop.birthplace(p))?;
            out.fmt(format_args!("{}", Dmy(civil_from_days(p.birth), '-')))?;
            out.field(sex_digit(p.female))?;
            out.fmt(format_args!("{}", p.marital))?;
            out.fmt(format_args!("{}", p.rel))?;
            out.field(RELIGIONS[usize::from(family.religion)].0)?;
            out.field(JOBS[usize::from(p.job)])?;
            out.field("36")?;
            out.field(regency.code[2..4].trim_start_matches('0'))?;
            out.field(district.code[4..6].trim_start_matches('0'))?;
            out.field(&village.code[6..10])?;
            out.field(&address)?;
            out.fmt(format_args!("{:03}", family.rt))?;
            out.fmt(format_args!("{:03}", family.rw))?;
            match p.death {
                Some(day) => {
                    out.field("MATI")?;
                    out.fmt(format_args!("{}", Dmy(civil_from_days(day), '-')))?;
                }
                None => {
                    out.field("HIDUP")?;
                    out.field("")?;
                }
            }
            let row = out.end()?;
            let mut tags = Tags::default();
            if p.flags & flag::NIK_DUPLICATED != 0 {
                tags.add(Tag::NikDuplicated);
            }
            if p.flags & flag::PLACEHOLDER != 0 {
                tags.add(Tag::BirthPlaceholder);
            }
            truth.record("dukcapil", row, pid, f, tags)?;
            done += 1;
            if done.is_multiple_of(10_000) {
                progress(done);
            }
        }
    }
    out.finish()
}

/// Tags every program row of a person of family `f` carries.
fn fact_tags(pop: &Population, f: usize, pid: usize, tags: &mut Tags) {
    if pop.families[f].kk_old.is_some() {
        tags.add(Tag::KkOld);
    }
    if pop.persons[pid].death.is_some() {
        tags.add(Tag::RecipientDead);
    }
}

/// A noised name of person `pid`.
fn listed_name(
    rng: &mut Rng,
    pop: &Population,
    pid: usize,
    rates: &Rates,
    tags: &mut Tags,
) -> String {
    let p = &pop.persons[pid];
    noise::name(
        rng,
        &p.name,
        p.birth_year(),
        p.female,
        age(p.birth) >= 25, // titles (H., HJ., NY.) and degrees only for grown-ups
        rates,
        tags,
    )
}

/// File 2, the welfare registry (DTKS): every roster member of the families in deciles 1-4.
pub(crate) fn dtks(
    pop: &Population,
    dir: &Path,
    seed: u64,
    truth: &mut Truth,
) -> Result<GeneratedFile, SampleError> {
    let mut out = CsvOut::create(dir, "dtks/dtks_2025_09.csv", "dtks", b';', &DTKS_HEADER)?;
    let mut rng = Rng::stream(seed, stream::DTKS);
    let rates = &noise::DTKS;
    let mut address = String::new();
    let mut household = 0u64;
    for &f in &pop.order {
        let f = f as usize;
        let family = &pop.families[f];
        if !family.in_dtks() {
            continue;
        }
        household += 1;
        let (regency, district, village) = pop.place(f);
        address.clear();
        pop.address(f, true, &mut address);
        for (k, pid) in pop.roster(f).enumerate() {
            let p = &pop.persons[pid];
            let mut tags = Tags::default();
            let name = listed_name(&mut rng, pop, pid, rates, &mut tags);
            let ids = noise::ids(&mut rng, p.nik, family.program_kk(), true, rates, &mut tags);
            let birth = noise::date(&mut rng, p.birth, rates, &mut tags);
            fact_tags(pop, f, pid, &mut tags);
            out.fmt(format_args!("36{household:09}"))?;
            out.fmt(format_args!("36{household:09}{:02}", k + 1))?;
            out.field("36")?;
            out.field(&regency.code[2..4])?;
            out.field(&district.code[4..6])?;
            out.field(&village.code[6..10])?;
            out.field(&name)?;
            out.field(sex_digit(p.female))?;
            out.field(pop.birthplace(p))?;
            out.fmt(format_args!("{}", Iso(birth)))?;
            out.field(&ids.nik)?;
            out.field(&ids.kk)?;
            out.field(hub_krt(p.rel))?;
            out.field(&address)?;
            out.fmt(format_args!("{}", family.decile))?;
            out.field(flag01(p.flags & flag::PREGNANT != 0))?;
            out.field(flag01(p.flags & flag::DISABLED != 0))?;
            out.field(flag01(p.flags & flag::SCHOOL != 0))?;
            out.field(flag01(family.programs & program::PKH != 0))?;
            out.field(flag01(family.programs & program::BPNT != 0))?;
            out.field(flag01(p.flags & flag::IN_PBI != 0))?;
            let row = out.end()?;
            truth.record("dtks", row, pid, f, tags)?;
        }
    }
    out.finish()
}

/// One family-level row to write: the family, its payee, and a duplicate tag if it is the
/// second listing.
struct FamilyRow {
    family: usize,
    payee: usize,
    dup: Option<Tag>,
}

/// Rows of a family-level program in file order, with ~1.5% of families listed a second time
/// a little further down (half naming the head instead of the mother).
fn family_rows(pop: &Population, rng: &mut Rng, bit: u8, rates: &Rates) -> Vec<FamilyRow> {
    let primary: Vec<FamilyRow> = pop
        .order
        .iter()
        .map(|&f| f as usize)
        .filter(|&f| pop.families[f].programs & bit != 0)
        .filter_map(|f| {
            pop.payee(f).map(|payee| FamilyRow {
                family: f,
                payee,
                dup: None,
            })
        })
        .collect();
    let mut extra = Vec::new();
    for (i, row) in primary.iter().enumerate() {
        if !rng.chance(rates.duplicate_row) {
            continue;
        }
        let head = pop.roster_head(row.family).filter(|&h| h != row.payee);
        let (payee, tag) = match head {
            Some(h) if rng.chance(0.5) => (h, Tag::DupPayeeDiffers),
            _ => (row.payee, Tag::DupSamePayee),
        };
        let at = (i + 1 + rng.index(200)).min(primary.len() - 1);
        extra.push((
            2 * at as u64 + 1,
            FamilyRow {
                family: row.family,
                payee,
                dup: Some(tag),
            },
        ));
    }
    let mut keyed: Vec<(u64, FamilyRow)> = primary
        .into_iter()
        .enumerate()
        .map(|(i, r)| (2 * i as u64, r))
        .collect();
    keyed.extend(extra);
    keyed.sort_by_key(|k| k.0);
    keyed.into_iter().map(|k| k.1).collect()
}

/// The NIK a family-level row starts from: the payee's, or now and then the head's.
fn family_row_nik(
    rng: &mut Rng,
    pop: &Population,
    row: &FamilyRow,
    rates: &Rates,
    tags: &mut Tags,
) -> u64 {
    match pop.roster_head(row.family) {
        Some(head) if head != row.payee && rng.chance(rates.nik_of_head) => {
            tags.add(Tag::NikOfHead);
            pop.persons[head].nik
        }
        _ => pop.persons[row.payee].nik,
    }
}

/// Which national family-level list to write.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kpm {
    /// Program Keluarga Harapan (conditional cash transfer).
    Pkh,
    /// Bantuan Pangan Non-Tunai (food aid).
    Bpnt,
}

/// Files 3 and 4, the PKH and BPNT beneficiary lists (KPM): one row per family, naming the payee.
pub(crate) fn kpm(
    pop: &Population,
    dir: &Path,
    seed: u64,
    truth: &mut Truth,
    which: Kpm,
) -> Result<GeneratedFile, SampleError> {
    let (rel, source, bit, stream) = match which {
        Kpm::Pkh => (
            "pkh/kpm_pkh_2025_tahap3.csv",
            "pkh",
            program::PKH,
            stream::PKH,
        ),
        Kpm::Bpnt => (
            "bpnt/kpm_bpnt_2025_tahap3.csv",
            "bpnt",
            program::BPNT,
            stream::BPNT,
        ),
    };
    let rates = &noise::PROGRAM;
    let mut rng = Rng::stream(seed, stream);
    let rows = family_rows(pop, &mut rng, bit, rates);
    let mut out = CsvOut::create(dir, rel, source, b',', &KPM_HEADER)?;
    let (mut address, mut components) = (String::new(), String::new());
    for (i, row) in rows.iter().enumerate() {
        let f = row.family;
        let family = &pop.families[f];
        let mut tags = Tags::default();
        if let Some(tag) = row.dup {
            tags.add(tag);
        }
        let name = listed_name(&mut rng, pop, row.payee, rates, &mut tags);
        let nik = family_row_nik(&mut rng, pop, row, rates, &mut tags);
        let ids = noise::ids(&mut rng, nik, family.program_kk(), true, rates, &mut tags);
        fact_tags(pop, f, row.payee, &mut tags);
        if !family.in_dtks() {
            tags.add(Tag::NotDtks);
        }
        components.clear();
        if matches!(which, Kpm::Pkh) {
            let bits = pop.components(f);
            for (bit, label) in component::NAMES {
                if bits & bit != 0 {
                    if !components.is_empty() {
                        components.push(';');
                    }
                    components.push_str(label);
                }
            }
        }
        let (regency, district, village) = pop.place(f);
        address.clear();
        pop.address(f, true, &mut address);
        out.fmt(format_args!("{}", i + 1))?;
        out.field(&name)?;
        out.field(&ids.nik)?;
        out.field(&ids.kk)?;
        out.field("TAHAP 3 2025")?;
        out.field(&components)?;
        out.field("BANTEN")?;
        out.field(if rng.chance(0.1) {
            &regency.long
        } else {
            &regency.short
        })?;
        out.field(&district.upper)?;
        out.field(&village.upper)?;
        out.field(&address)?;
        let line = out.end()?;
        truth.record(source, line, row.payee, f, tags)?;
    }
    out.finish()
}

/// File 5, PBI-JKN health-insurance members: individuals of DTKS families.
pub(crate) fn pbi(
    pop: &Population,
    dir: &Path,
    seed: u64,
    truth: &mut Truth,
) -> Result<GeneratedFile, SampleError> {
    let mut out = CsvOut::create(dir, "pbi/pbi_jkn_2025_10.csv", "pbi", b',', &PBI_HEADER)?;
    let mut rng = Rng::stream(seed, stream::PBI);
    let rates = &noise::PROGRAM;
    let mut card = 0u64;
    for &f in &pop.order {
        let f = f as usize;
        let family = &pop.families[f];
        let mother = pop.mother(f);
        let (regency, district, village) = pop.place(f);
        for pid in family.members() {
            let p = &pop.persons[pid];
            if p.flags & flag::IN_PBI == 0 {
                continue;
            }
            card += 1;
            let mut tags = Tags::default();
            let name = listed_name(&mut rng, pop, pid, rates, &mut tags);
            let mut nik = p.nik;
            if p.rel == 4
                && let Some(m) = mother
                && rng.chance(rates.nik_of_mother)
            {
                nik = pop.persons[m].nik;
                tags.add(Tag::NikOfMother);
            }
            let ids = noise::ids(&mut rng, nik, family.program_kk(), false, rates, &mut tags);
            let birth = noise::date(&mut rng, p.birth, rates, &mut tags);
            if p.death.is_some() {
                tags.add(Tag::RecipientDead);
            }
            out.fmt(format_args!("0001{card:09}"))?;
            out.field(&ids.nik)?;
            out.field(&name)?;
            out.fmt(format_args!("{}", Dmy(birth, '/')))?;
            out.field(sex_letter(p.female))?;
            out.field(hubungan(p.rel))?;
            out.field("36")?;
            out.field(&regency.code)?;
            out.field(&district.code)?;
            out.field(&village.code)?;
            out.field("AKTIF")?;
            let line = out.end()?;
            truth.record("pbi", line, pid, f, tags)?;
        }
    }
    out.finish()
}

/// File 6, the provincial Jamsosratu spreadsheet: titles, a header on row 4, data from
/// row 5; NIKs as text, number cells or blank; birth dates as date cells or text.
pub(crate) fn jamsosratu(
    pop: &Population,
    dir: &Path,
    seed: u64,
    truth: &mut Truth,
) -> Result<GeneratedFile, SampleError> {
    let rel = "provinsi/jamsosratu_2025.xlsx";
    let (path, file) = create_file(dir, rel)?;
    drop(file); // rust_xlsxwriter writes the file itself; the folder now exists
    let xlsx = |e: XlsxError| SampleError::Xlsx {
        path: path.clone(),
        message: e.to_string(),
    };
    let rates = &noise::JAMSOSRATU;
    let text_rates = Rates {
        nik_missing: 0.0,
        ..*rates
    };
    let mut rng = Rng::stream(seed, stream::JAMSOS);
    let rows = family_rows(pop, &mut rng, program::JAMSOS, rates);

    let mut workbook = Workbook::new();
    let created = ExcelDateTime::from_ymd(2025, 10, 31).map_err(xlsx)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let date_format = Format::new().set_num_format("dd/mm/yyyy");
    let number_format = Format::new().set_num_format("0");
    let sheet = workbook.add_worksheet();
    sheet.set_name("Penerima 2025").map_err(xlsx)?;
    sheet
        .write_string(0, 0, "DAFTAR PENERIMA JAMSOSRATU TAHUN 2025")
        .map_err(xlsx)?;
    sheet
        .write_string(1, 0, "DINAS SOSIAL PROVINSI BANTEN")
        .map_err(xlsx)?;
    for (col, header) in JAMSOS_HEADER.iter().enumerate() {
        sheet.write_string(3, col as u16, *header).map_err(xlsx)?;
    }
    let mut address = String::new();
    for (i, row) in rows.iter().enumerate() {
        let r = 4 + i as u32;
        let f = row.family;
        let family = &pop.families[f];
        let p = &pop.persons[row.payee];
        let mut tags = Tags::default();
        if let Some(tag) = row.dup {
            tags.add(tag);
        }
        sheet.write_number(r, 0, (i + 1) as f64).map_err(xlsx)?;
        let name = listed_name(&mut rng, pop, row.payee, rates, &mut tags);
        sheet.write_string(r, 1, name).map_err(xlsx)?;
        let kk_text = format!("{:016}", family.program_kk());
        if rng.chance(rates.nik_missing) {
            tags.add(Tag::NikMissing); // paid on address alone
            sheet.write_string(r, 3, kk_text).map_err(xlsx)?;
        } else {
            let nik = family_row_nik(&mut rng, pop, row, rates, &mut tags);
            if rng.chance(noise::JAMSOSRATU_NUMERIC_CELL) {
                // Excel keeps 15 significant digits: the last one becomes 0.
                tags.add(Tag::NikNumericCell);
                sheet
                    .write_number_with_format(r, 2, (nik / 10 * 10) as f64, &number_format)
                    .map_err(xlsx)?;
                sheet.write_string(r, 3, kk_text).map_err(xlsx)?;
            } else {
                let ids = noise::ids(
                    &mut rng,
                    nik,
                    family.program_kk(),
                    true,
                    &text_rates,
                    &mut tags,
                );
                sheet.write_string(r, 2, ids.nik).map_err(xlsx)?;
                sheet.write_string(r, 3, ids.kk).map_err(xlsx)?;
            }
        }
        sheet
            .write_string(r, 4, title_case(pop.birthplace(p)))
            .map_err(xlsx)?;
        let birth = noise::date(&mut rng, p.birth, rates, &mut tags);
        if rng.chance(noise::JAMSOSRATU_DATE_CELL) {
            let cell = ExcelDateTime::from_ymd(birth.y as u16, birth.m as u8, birth.d as u8)
                .map_err(xlsx)?;
            sheet
                .write_datetime_with_format(r, 5, &cell, &date_format)
                .map_err(xlsx)?;
        } else {
            sheet
                .write_string(r, 5, Dmy(birth, '/').to_string())
                .map_err(xlsx)?;
        }
        sheet
            .write_string(r, 6, sex_letter(p.female))
            .map_err(xlsx)?;
        let (regency, district, village) = pop.place(f);
        sheet
            .write_string(r, 7, regency.title.as_str())
            .map_err(xlsx)?;
        sheet
            .write_string(r, 8, district.title.as_str())
            .map_err(xlsx)?;
        sheet
            .write_string(r, 9, village.title.as_str())
            .map_err(xlsx)?;
        address.clear();
        pop.address(f, false, &mut address);
        sheet
            .write_string(r, 10, title_case(&address))
            .map_err(xlsx)?;
        sheet
            .write_number(r, 11, f64::from(family.rt))
            .map_err(xlsx)?;
        sheet
            .write_number(r, 12, f64::from(family.rw))
            .map_err(xlsx)?;
        let note = *rng.pick(&KETERANGAN);
        if !note.is_empty() {
            sheet.write_string(r, 13, note).map_err(xlsx)?;
        }
        fact_tags(pop, f, row.payee, &mut tags);
        if family.programs & program::PKH != 0 {
            tags.add(Tag::BreachPkh);
        }
        truth.record("jamsosratu", u64::from(r) + 1, row.payee, f, tags)?;
    }
    workbook.save(&path).map_err(xlsx)?;
    Ok(GeneratedFile {
        source: "jamsosratu".to_string(),
        path,
        rows: rows.len() as u64,
    })
}

#[derive(Serialize)]
struct Complaint<'a> {
    id_laporan: &'a str,
    nama: &'a str,
    nik: Option<&'a str>,
    tanggal_lahir: Option<&'a str>,
    jenis_kelamin: &'a str,
    alamat: ComplaintAddress<'a>,
    keluhan: &'a str,
    tanggal_lapor: &'a str,
}

#[derive(Serialize)]
struct ComplaintAddress<'a> {
    jalan: &'a str,
    rt: &'a str,
    rw: &'a str,
    desa: &'a str,
    kecamatan: &'a str,
    kabupaten: &'a str,
}

/// File 7, the local complaint list (JSON lines): mostly eligible families receiving nothing.
pub(crate) fn pengaduan(
    pop: &Population,
    dir: &Path,
    seed: u64,
    truth: &mut Truth,
) -> Result<GeneratedFile, SampleError> {
    let (path, mut out) = create_file(dir, "pengaduan/pengaduan_2025_10.jsonl")?;
    let mut rng = Rng::stream(seed, stream::PENGADUAN);
    let rates = &noise::PENGADUAN;
    let first_day = days_from_civil(2025, 10, 1);
    let mut address = String::new();
    let mut line = 0u64;
    for &f in &pop.order {
        let f = f as usize;
        let family = &pop.families[f];
        if family.programs & program::COMPLAINT == 0 {
            continue;
        }
        let Some(pid) = pop.payee(f) else { continue };
        let p = &pop.persons[pid];
        line += 1;
        let mut tags = Tags::default();
        let name = listed_name(&mut rng, pop, pid, rates, &mut tags);
        let ids = noise::ids(
            &mut rng,
            p.nik,
            family.program_kk(),
            false,
            rates,
            &mut tags,
        );
        let birth = if rng.chance(rates.birth_missing) {
            tags.add(Tag::BirthMissing);
            None
        } else {
            Some(Iso(noise::date(&mut rng, p.birth, rates, &mut tags)).to_string())
        };
        if p.death.is_some() {
            tags.add(Tag::RecipientDead);
        }
        if pop.excluded(f) {
            tags.add(Tag::ExclusionError);
        }
        let (regency, district, village) = pop.place(f);
        address.clear();
        pop.address(f, false, &mut address);
        let jalan = title_case(&address);
        let (rt, rw) = (format!("{:03}", family.rt), format!("{:03}", family.rw));
        let id = format!("ADU-2025-{line:06}");
        let reported = Iso(civil_from_days(
            rng.range(i64::from(first_day), i64::from(REF_DAY)) as i32,
        ))
        .to_string();
        let complaint = Complaint {
            id_laporan: &id,
            nama: &name,
            nik: Some(ids.nik.as_str()).filter(|n| !n.is_empty()),
            tanggal_lahir: birth.as_deref(),
            jenis_kelamin: sex_letter(p.female),
            alamat: ComplaintAddress {
                jalan: &jalan,
                rt: &rt,
                rw: &rw,
                desa: &village.title,
                kecamatan: &district.title,
                kabupaten: &regency.title,
            },
            keluhan: KELUHAN[rng.index(KELUHAN.len())],
            tanggal_lapor: &reported,
        };
        serde_json::to_writer(&mut out, &complaint).map_err(|e| other_error(&path, e))?;
        out.write_all(b"\n").map_err(|e| io_error(&path, e))?;
        truth.record("pengaduan", line, pid, f, tags)?;
    }
    out.flush().map_err(|e| io_error(&path, e))?;
    Ok(GeneratedFile {
        source: "pengaduan".to_string(),
        path,
        rows: line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_case_helpers() {
        assert_eq!(title_case("KP. SUKA MAJU"), "Kp. Suka Maju");
        assert_eq!(hub_krt(3), "2");
        assert_eq!(hub_krt(8), "6");
        assert_eq!(hubungan(3), "ISTRI");
    }
}
