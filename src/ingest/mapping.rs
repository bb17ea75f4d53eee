//! Applies a layout: agency columns (raw text) -> the canonical staged record.
//!
//! Readers hand over [`RawBatch`]es: one string array per column the layout reads, plus row
//! numbers and which cells came from numeric spreadsheet cells. [`ColumnPlan::stage`] turns a
//! raw batch into a staged batch with the schema of [`staged_schema`], cleaning and validating
//! every value with the `normalize` functions and collecting quality flags. It is the one
//! per-row loop of ingestion; everything around it moves whole Arrow batches.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, ListBuilder, StringArray, StringBuilder,
    UInt8Builder, UInt64Array,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};

use super::canonical::{CanonicalField, DEFAULT_FALSE, DEFAULT_TRUE, FieldKind, staged_schema};
use crate::config::layout::{FieldSpec, Layout, header_key};
use crate::config::{ProgramSpec, RegionSpec};
use crate::normalize::dates::{self, ParsedDate};
use crate::normalize::names::normalize_name;
use crate::normalize::nik::{self, NikContext};
use crate::normalize::region::{NameResolution, RegionLevel, region_index};
use crate::normalize::{QualityFlag, QualityFlags, Sex};

/// A column a layout reads, with the headers that may name it.
#[derive(Debug, Clone)]
pub struct NeededColumn {
    /// Header (or JSON path) as the layout writes it.
    pub column: String,
    /// Alternative headers.
    pub aliases: Vec<String>,
    /// Layout keys that read it, for messages.
    pub keys: Vec<String>,
}

impl NeededColumn {
    /// Finds this column in a header row (ignoring case, spaces and punctuation): the
    /// layout's column first, then each alias in order.
    pub fn position_in(&self, header: &[String]) -> Option<usize> {
        let keys: Vec<String> = header.iter().map(|h| header_key(h)).collect();
        std::iter::once(&self.column)
            .chain(&self.aliases)
            .map(|c| header_key(c))
            .find_map(|wanted| keys.iter().position(|k| *k == wanted))
    }

    /// How messages name this column: `NIK KTP (for fields.nik)`.
    pub fn describe(&self) -> String {
        format!("{} (for {})", self.column, self.keys.join(", "))
    }
}

/// Finds every column in `header`: their positions, or the descriptions of those missing.
pub fn resolve_columns(
    columns: &[NeededColumn],
    header: &[String],
) -> Result<Vec<Option<usize>>, Vec<String>> {
    let positions: Vec<Option<usize>> = columns.iter().map(|c| c.position_in(header)).collect();
    let missing: Vec<String> = columns
        .iter()
        .zip(&positions)
        .filter(|(_, p)| p.is_none())
        .map(|(c, _)| c.describe())
        .collect();
    if missing.is_empty() {
        Ok(positions)
    } else {
        Err(missing)
    }
}

/// Raw text of one batch of rows, in [`ColumnPlan::columns`] order.
#[derive(Debug)]
pub struct RawBatch {
    /// The input file these rows came from (as shown to people).
    pub file: Arc<str>,
    /// Row (line) numbers in the file.
    pub rows: UInt64Array,
    /// One array per needed column; null = blank cell.
    pub columns: Vec<StringArray>,
    /// Bit `i` set: column `i` of that row came from a numeric spreadsheet/JSON cell.
    pub numeric: Vec<u64>,
    /// Bit `i` set: column `i` of that row is a spreadsheet formula with no saved result.
    pub formulas: Vec<u64>,
}

/// Per-source counts gathered while staging.
#[derive(Debug, Clone, Default)]
pub struct StageCounts {
    /// Rows per quality flag, indexed by `QualityFlag as usize`.
    pub flags: [u64; QualityFlag::ALL.len()],
    /// Rows per NIK status code.
    pub nik_status: HashMap<&'static str, u64>,
}

impl StageCounts {
    /// Adds another batch's counts.
    pub fn merge(&mut self, other: &StageCounts) {
        for (a, b) in self.flags.iter_mut().zip(other.flags.iter()) {
            *a += b;
        }
        for (k, v) in &other.nik_status {
            *self.nik_status.entry(k).or_default() += v;
        }
    }
}

/// A layout compiled against a source: which raw column feeds which canonical field.
#[derive(Debug)]
pub struct ColumnPlan {
    /// Source name.
    pub source: String,
    /// Distinct columns to read, in order.
    pub columns: Vec<NeededColumn>,
    fields: Vec<(FieldSpec, usize)>,
    region: Option<(RegionSpec, RegionSlots)>,
    keep: Vec<(String, usize)>,
    program: Option<ProgramSpec>,
    default_province: Option<String>,
    today: NaiveDate,
    schema: SchemaRef,
    region_cache: HashMap<[Option<String>; 4], ResolvedRegion>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RegionSlots {
    province: Option<usize>,
    regency: Option<usize>,
    district: Option<usize>,
    village: Option<usize>,
}

#[derive(Debug, Clone, Default)]
struct ResolvedRegion {
    codes: [Option<String>; 4],
    names: [Option<String>; 4],
    flags: QualityFlags,
}

impl ColumnPlan {
    /// Compiles `layout` for one source.
    pub fn new(
        source: &str,
        layout: &Layout,
        program: Option<ProgramSpec>,
        default_province: Option<String>,
        today: NaiveDate,
    ) -> Self {
        let mut columns: Vec<NeededColumn> = Vec::new();
        let mut slot = |column: &str, aliases: &[String], key: String| -> usize {
            let k = header_key(column);
            if let Some(i) = columns.iter().position(|c| header_key(&c.column) == k) {
                columns[i].keys.push(key);
                return i;
            }
            columns.push(NeededColumn {
                column: column.to_string(),
                aliases: aliases.to_vec(),
                keys: vec![key],
            });
            columns.len() - 1
        };
        let fields = layout
            .fields
            .iter()
            .map(|f| {
                let i = slot(&f.column, &f.aliases, format!("fields.{}", f.field.key()));
                (f.clone(), i)
            })
            .collect();
        let region = layout.region.as_ref().map(|spec| {
            let mut slots = RegionSlots::default();
            for (key, column) in spec.columns() {
                let i = Some(slot(column, &[], format!("region.{key}")));
                match key {
                    "province" => slots.province = i,
                    "regency" => slots.regency = i,
                    "district" => slots.district = i,
                    _ => slots.village = i,
                }
            }
            (spec.clone(), slots)
        });
        let keep: Vec<(String, usize)> = layout
            .keep
            .iter()
            .map(|c| (c.clone(), slot(c, &[], "keep".to_string())))
            .collect();
        let extras: Vec<String> = keep.iter().map(|(c, _)| c.clone()).collect();
        ColumnPlan {
            source: source.to_string(),
            columns,
            fields,
            region,
            keep,
            program,
            default_province,
            today,
            schema: staged_schema(&extras),
            region_cache: HashMap::new(),
        }
    }

    /// The staged schema this plan produces.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Slots of the identity columns (NIK, KK, name): a row blank in all of them cannot be
    /// linked to anyone and is quarantined instead of staged.
    pub fn identity_slots(&self) -> Vec<usize> {
        self.fields
            .iter()
            .filter(|(f, _)| {
                matches!(
                    f.field,
                    CanonicalField::Nik | CanonicalField::NoKk | CanonicalField::FullName
                )
            })
            .map(|(_, i)| *i)
            .collect()
    }

    /// Stages one raw batch. Returns the staged batch and its counts.
    pub fn stage(
        &mut self,
        raw: &RawBatch,
    ) -> Result<(RecordBatch, StageCounts), arrow::error::ArrowError> {
        let n = raw.rows.len();
        let mut counts = StageCounts::default();
        let mut b = Builders::new(n, self.keep.len());
        let value = |slot: usize, row: usize| -> Option<&str> {
            let col = &raw.columns[slot];
            if col.is_null(row) {
                return None;
            }
            let v = col.value(row).trim();
            (!v.is_empty()).then_some(v)
        };
        let numeric = |slot: usize, row: usize| raw.numeric[row] & (1u64 << slot.min(63)) != 0;

        // A copy of the field mappings, so the loop can borrow them while updating the
        // region cache on `self`.
        let fields = self.fields.clone();
        let get = |field: CanonicalField| {
            fields
                .iter()
                .find(|(f, _)| f.field == field)
                .map(|(f, i)| (f, *i))
        };
        let nik_slot = get(CanonicalField::Nik).map(|(_, i)| i);
        let kk_slot = get(CanonicalField::NoKk).map(|(_, i)| i);
        let name_slot = get(CanonicalField::FullName).map(|(_, i)| i);
        let birth = get(CanonicalField::BirthDate).map(|(f, i)| (f.formats.clone(), i));
        let death = get(CanonicalField::DeathDate).map(|(f, i)| (f.formats.clone(), i));
        let sex = get(CanonicalField::Sex).map(|(f, i)| (f.clone(), i));

        for row in 0..n {
            let mut flags = QualityFlags::EMPTY;
            b.source.append_value(&self.source);
            b.source_file.append_value(&*raw.file);
            b.source_row.push(raw.rows.value(row));

            // Birth date and sex first: the NIK is checked against them.
            let birth_date = match &birth {
                Some((formats, slot)) => {
                    let raw_value = value(*slot, row);
                    let parsed =
                        parse_date_cell(raw_value, numeric(*slot, row), formats, self.today);
                    flags.extend(dates::birth_date_flags(
                        &parsed,
                        raw_value.is_some(),
                        self.today,
                    ));
                    b.birth_date_raw.append_option(raw_value);
                    parsed.date
                }
                None => {
                    b.birth_date_raw.append_null();
                    None
                }
            };
            b.birth_date.append_option(birth_date.map(date32));
            let sex_value = match &sex {
                Some((spec, slot)) => map_code(spec, value(*slot, row), &mut flags),
                None => None,
            };
            b.sex.append_option(sex_value.as_deref());
            let sex_parsed = sex_value.as_deref().and_then(Sex::from_code);

            // KK, then NIK with its context.
            let kk = match kk_slot {
                Some(slot) => {
                    let raw_value = value(slot, row);
                    b.no_kk_raw.append_option(raw_value);
                    let parsed = nik::parse_kk(raw_value.unwrap_or(""), numeric(slot, row));
                    flags.extend(parsed.flags);
                    b.no_kk.append_option(parsed.kk.as_deref());
                    b.no_kk_status.append_value(parsed.status.code());
                    parsed.kk
                }
                None => {
                    b.no_kk_raw.append_null();
                    b.no_kk.append_null();
                    b.no_kk_status.append_null();
                    None
                }
            };
            match nik_slot {
                Some(slot) => {
                    let raw_value = value(slot, row);
                    b.nik_raw.append_option(raw_value);
                    let ctx = NikContext {
                        birth_date,
                        sex: sex_parsed,
                        no_kk: kk.as_deref(),
                        from_numeric_cell: numeric(slot, row),
                        today: self.today,
                    };
                    let parsed = nik::parse_nik(raw_value.unwrap_or(""), &ctx);
                    flags.extend(parsed.flags);
                    let status = parsed.status.code();
                    *counts.nik_status.entry(status).or_default() += 1;
                    b.nik.append_option(parsed.nik.as_deref());
                    b.nik_status.append_value(status);
                    b.nik_known_prefix
                        .append_option(parsed.known_prefix.as_deref());
                    b.nik_birth_date
                        .append_option(parsed.birth_date.map(date32));
                    b.nik_sex
                        .append_option(parsed.parts.as_ref().map(|p| p.sex.code()));
                }
                None => {
                    *counts.nik_status.entry("missing").or_default() += 1;
                    flags.insert(QualityFlag::NikMissing);
                    b.nik_raw.append_null();
                    b.nik.append_null();
                    b.nik_status.append_value("missing");
                    b.nik_known_prefix.append_null();
                    b.nik_birth_date.append_null();
                    b.nik_sex.append_null();
                }
            }

            // Name.
            let full_name = name_slot.and_then(|slot| value(slot, row));
            b.full_name.append_option(full_name);
            match full_name {
                Some(text) => {
                    let normalized = normalize_name(text);
                    if normalized.name.is_empty() {
                        flags.insert(QualityFlag::NameMissing);
                        b.name.append_null();
                    } else {
                        b.name.append_value(&normalized.name);
                    }
                    for title in &normalized.titles {
                        b.name_titles.values().append_value(title);
                    }
                    b.name_titles.append(true);
                    b.name_patronymic
                        .append_option(normalized.patronymic.as_deref());
                    b.name_old_spelling.append_value(normalized.old_spelling);
                }
                None => {
                    flags.insert(QualityFlag::NameMissing);
                    b.name.append_null();
                    b.name_titles.append(true);
                    b.name_patronymic.append_null();
                    b.name_old_spelling.append_null();
                }
            }

            // Region.
            let region = self.resolve_region(raw, row);
            flags.extend(region.flags);
            for (i, builder) in b.region_codes.iter_mut().enumerate() {
                builder.append_option(region.codes[i].as_deref());
            }
            for (i, builder) in b.region_names.iter_mut().enumerate() {
                builder.append_option(region.names[i].as_deref());
            }

            // Remaining simple fields.
            let text = |field: CanonicalField| get(field).and_then(|(_, i)| value(i, row));
            b.birth_place
                .append_option(text(CanonicalField::BirthPlace));
            b.address.append_option(text(CanonicalField::Address));
            b.rt.append_option(text(CanonicalField::Rt));
            b.rw.append_option(text(CanonicalField::Rw));
            b.household_id
                .append_option(text(CanonicalField::HouseholdId));
            b.member_id.append_option(text(CanonicalField::MemberId));
            b.remark.append_option(text(CanonicalField::Remark));
            let coded = |field: CanonicalField, flags: &mut QualityFlags| {
                get(field).and_then(|(spec, i)| map_code(spec, value(i, row), flags))
            };
            b.relationship
                .append_option(coded(CanonicalField::Relationship, &mut flags).as_deref());
            b.marital_status
                .append_option(coded(CanonicalField::MaritalStatus, &mut flags).as_deref());
            b.life_status
                .append_option(coded(CanonicalField::LifeStatus, &mut flags).as_deref());
            b.payee_role
                .append_option(coded(CanonicalField::PayeeRole, &mut flags).as_deref());
            let death_date = death.as_ref().and_then(|(formats, slot)| {
                let parsed =
                    parse_date_cell(value(*slot, row), numeric(*slot, row), formats, self.today);
                if parsed.unparsed {
                    flags.insert(QualityFlag::ValueUnparsed);
                }
                parsed.date
            });
            b.death_date.append_option(death_date.map(date32));
            let decile = get(CanonicalField::WelfareDecile).and_then(|(_, i)| {
                let v = value(i, row)?;
                match v.parse::<u8>() {
                    Ok(d) if (1..=10).contains(&d) => Some(d),
                    _ => {
                        flags.insert(QualityFlag::ValueUnparsed);
                        None
                    }
                }
            });
            b.welfare_decile.append_option(decile);
            let program_code = text(CanonicalField::Program)
                .map(str::to_string)
                .or_else(|| self.program.as_ref().map(|p| p.code.clone()));
            b.program.append_option(program_code.as_deref());
            let period = text(CanonicalField::Period)
                .map(str::to_string)
                .or_else(|| self.program.as_ref().and_then(|p| p.period.clone()));
            b.period.append_option(period.as_deref());
            b.program_unit
                .append_option(self.program.as_ref().map(|p| p.unit.as_str()));
            for (field, builder) in [
                (CanonicalField::Pregnant, &mut b.pregnant),
                (CanonicalField::Disability, &mut b.disability),
                (CanonicalField::InSchool, &mut b.in_school),
            ] {
                let v = get(field).and_then(|(spec, i)| map_flag(spec, value(i, row), &mut flags));
                builder.append_option(v);
            }
            match get(CanonicalField::Components) {
                Some((spec, i)) => {
                    if let Some(v) = value(i, row) {
                        for part in v.split(spec.separator.as_str()) {
                            let part = part.trim();
                            if !part.is_empty() {
                                b.components.values().append_value(part.to_uppercase());
                            }
                        }
                    }
                    b.components.append(true);
                }
                None => b.components.append_null(),
            }
            if raw.formulas.get(row).is_some_and(|bits| *bits != 0) {
                flags.insert(QualityFlag::FormulaWithoutValue);
            }
            if raw.columns.iter().any(|c| {
                c.is_valid(row) && c.value(row).len() > crate::normalize::MAX_PLAUSIBLE_VALUE_BYTES
            }) {
                flags.insert(QualityFlag::ValueTooLong);
            }
            for flag in flags.iter() {
                counts.flags[flag as usize] += 1;
                b.quality_flags.values().append_value(flag.code());
            }
            b.quality_flags.append(true);
            for (k, (_, slot)) in self.keep.iter().enumerate() {
                b.extras[k].append_option(value(*slot, row));
            }
        }
        let batch = RecordBatch::try_new(self.schema.clone(), b.finish())?;
        Ok((batch, counts))
    }

    fn resolve_region(&mut self, raw: &RawBatch, row: usize) -> ResolvedRegion {
        let Some((spec, slots)) = &self.region else {
            return ResolvedRegion::default();
        };
        let cell = |slot: Option<usize>| {
            slot.and_then(|s| {
                let col = &raw.columns[s];
                (!col.is_null(row))
                    .then(|| col.value(row).trim().to_string())
                    .filter(|v| !v.is_empty())
            })
        };
        let key = [
            cell(slots.province),
            cell(slots.regency),
            cell(slots.district),
            cell(slots.village),
        ];
        if let Some(hit) = self.region_cache.get(&key) {
            return hit.clone();
        }
        let resolved = resolve_region(spec, &key, self.default_province.as_deref());
        self.region_cache.insert(key, resolved.clone());
        resolved
    }
}

fn date32(date: NaiveDate) -> i32 {
    // Days since 1970-01-01; every date chrono can represent fits in i32 days.
    date.num_days_from_ce() - 719_163
}

/// Reads a date cell: an Excel serial number in a numeric cell, else text with the formats.
fn parse_date_cell(
    raw: Option<&str>,
    numeric: bool,
    formats: &[String],
    today: NaiveDate,
) -> ParsedDate {
    let Some(text) = raw else {
        return dates::parse_date("", formats, today);
    };
    // A bare year typed into a date column is a year, not an Excel serial (1985 would read
    // as 1905-06-07): no date can be taken from it.
    if numeric
        && text
            .parse::<u32>()
            .is_ok_and(|year| (1900..=2100).contains(&year))
    {
        return ParsedDate {
            date: None,
            placeholder: false,
            unparsed: true,
        };
    }
    // Excel's day 1 is 1900-01-01, with the 1900 leap-year bug: serial 60 is a fictitious
    // 29 Feb, so day 0 is effectively 1899-12-30 for every later date.
    if numeric
        && let Ok(serial) = text.parse::<f64>()
        && (61.0..=80_000.0).contains(&serial)
        && let Some(date) = NaiveDate::from_ymd_opt(1899, 12, 30)
            .and_then(|b| b.checked_add_days(chrono::Days::new(serial as u64)))
    {
        return ParsedDate {
            date: Some(date),
            placeholder: dates::is_placeholder(date),
            unparsed: false,
        };
    }
    dates::parse_date(text, formats, today)
}

/// Maps a coded value with the layout's codes, then the field's built-in codes.
fn map_code(spec: &FieldSpec, raw: Option<&str>, flags: &mut QualityFlags) -> Option<String> {
    let raw = raw?;
    let key = raw.trim().to_uppercase();
    if let Some(v) = spec.codes.get(&key) {
        return Some(v.clone());
    }
    if let Some((_, v)) = spec.field.default_codes().iter().find(|(k, _)| *k == key) {
        return Some((*v).to_string());
    }
    // A canonical value written as such is accepted as-is.
    if let FieldKind::Code(allowed) = spec.field.kind()
        && let Some(v) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&key))
    {
        return Some((*v).to_string());
    }
    flags.insert(QualityFlag::CodeUnmapped);
    None
}

/// Maps a yes/no value with the layout's codes, then the built-in sets.
fn map_flag(spec: &FieldSpec, raw: Option<&str>, flags: &mut QualityFlags) -> Option<bool> {
    let raw = raw?;
    let key = raw.trim().to_uppercase();
    if let Some(v) = spec.codes.get(&key) {
        return Some(v == "true");
    }
    if DEFAULT_TRUE.contains(&key.as_str()) {
        return Some(true);
    }
    if DEFAULT_FALSE.contains(&key.as_str()) {
        return Some(false);
    }
    flags.insert(QualityFlag::CodeUnmapped);
    None
}

/// Digits of a code cell; `None` if it holds anything else. Numeric cells may read `36.0`.
fn code_digits(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches(".0");
    let digits: String = text.chars().filter(|c| *c != '.' && *c != ' ').collect();
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

fn resolve_region(
    spec: &RegionSpec,
    cells: &[Option<String>; 4],
    default_province: Option<&str>,
) -> ResolvedRegion {
    let index = region_index();
    let mut out = ResolvedRegion::default();
    let levels = [
        RegionLevel::Province,
        RegionLevel::Regency,
        RegionLevel::District,
        RegionLevel::Village,
    ];
    match spec {
        RegionSpec::Codes { .. } => {
            for (i, cell) in cells.iter().enumerate() {
                let Some(text) = cell else { continue };
                match code_digits(text) {
                    Some(code)
                        if code.len() == levels[i].code_len() && index.get(&code).is_some() =>
                    {
                        out.codes[i] = Some(code);
                    }
                    _ => out.flags.insert(QualityFlag::RegionUnknown),
                }
            }
        }
        RegionSpec::CodeParts { .. } => {
            let widths = [2usize, 2, 2, 4];
            let mut prefix = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let Some(text) = cell else { break };
                let Some(part) = code_digits(text) else {
                    out.flags.insert(QualityFlag::RegionUnknown);
                    break;
                };
                if part.len() > widths[i] {
                    out.flags.insert(QualityFlag::RegionUnknown);
                    break;
                }
                prefix = format!("{prefix}{part:0>width$}", width = widths[i]);
                if index.get(&prefix).is_some() {
                    out.codes[i] = Some(prefix.clone());
                } else {
                    out.flags.insert(QualityFlag::RegionUnknown);
                    break;
                }
            }
        }
        RegionSpec::Names { .. } => {
            let mut parent = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let resolution = match (i, cell) {
                    (_, Some(name)) => index.resolve_name(&parent, levels[i], name),
                    (0, None) => match default_province {
                        Some(code) => NameResolution::Found(code.to_string()),
                        None => NameResolution::Empty,
                    },
                    _ => NameResolution::Empty,
                };
                match resolution {
                    NameResolution::Found(code) => {
                        parent = code.clone();
                        out.codes[i] = Some(code);
                    }
                    NameResolution::Ambiguous(_) => {
                        out.flags.insert(QualityFlag::RegionAmbiguous);
                        break;
                    }
                    NameResolution::NotFound => {
                        out.flags.insert(QualityFlag::RegionUnknown);
                        break;
                    }
                    NameResolution::Empty => break,
                }
            }
        }
    }
    // Official names for resolved codes; the source's own text where no code was found.
    for ((name, code), cell) in out.names.iter_mut().zip(&out.codes).zip(cells) {
        *name = match code {
            Some(code) => index.get(code).map(|r| r.name.clone()),
            None => cell
                .clone()
                .filter(|_| matches!(spec, RegionSpec::Names { .. })),
        };
    }
    out
}

/// Column builders of one staged batch.
struct Builders {
    source: StringBuilder,
    source_file: StringBuilder,
    source_row: Vec<u64>,
    nik: StringBuilder,
    nik_raw: StringBuilder,
    nik_status: StringBuilder,
    nik_known_prefix: StringBuilder,
    nik_birth_date: Date32Builder,
    nik_sex: StringBuilder,
    no_kk: StringBuilder,
    no_kk_raw: StringBuilder,
    no_kk_status: StringBuilder,
    full_name: StringBuilder,
    name: StringBuilder,
    name_titles: ListBuilder<StringBuilder>,
    name_patronymic: StringBuilder,
    name_old_spelling: BooleanBuilder,
    birth_place: StringBuilder,
    birth_date: Date32Builder,
    birth_date_raw: StringBuilder,
    sex: StringBuilder,
    relationship: StringBuilder,
    marital_status: StringBuilder,
    region_codes: [StringBuilder; 4],
    region_names: [StringBuilder; 4],
    address: StringBuilder,
    rt: StringBuilder,
    rw: StringBuilder,
    welfare_decile: UInt8Builder,
    household_id: StringBuilder,
    member_id: StringBuilder,
    life_status: StringBuilder,
    death_date: Date32Builder,
    program: StringBuilder,
    period: StringBuilder,
    program_unit: StringBuilder,
    payee_role: StringBuilder,
    pregnant: BooleanBuilder,
    disability: BooleanBuilder,
    in_school: BooleanBuilder,
    components: ListBuilder<StringBuilder>,
    remark: StringBuilder,
    quality_flags: ListBuilder<StringBuilder>,
    extras: Vec<StringBuilder>,
}

impl Builders {
    fn new(n: usize, extras: usize) -> Self {
        let s = || StringBuilder::with_capacity(n, n * 8);
        Builders {
            source: s(),
            source_file: s(),
            source_row: Vec::with_capacity(n),
            nik: s(),
            nik_raw: s(),
            nik_status: s(),
            nik_known_prefix: s(),
            nik_birth_date: Date32Builder::with_capacity(n),
            nik_sex: s(),
            no_kk: s(),
            no_kk_raw: s(),
            no_kk_status: s(),
            full_name: s(),
            name: s(),
            name_titles: ListBuilder::new(StringBuilder::new()),
            name_patronymic: s(),
            name_old_spelling: BooleanBuilder::with_capacity(n),
            birth_place: s(),
            birth_date: Date32Builder::with_capacity(n),
            birth_date_raw: s(),
            sex: s(),
            relationship: s(),
            marital_status: s(),
            region_codes: [s(), s(), s(), s()],
            region_names: [s(), s(), s(), s()],
            address: s(),
            rt: s(),
            rw: s(),
            welfare_decile: UInt8Builder::with_capacity(n),
            household_id: s(),
            member_id: s(),
            life_status: s(),
            death_date: Date32Builder::with_capacity(n),
            program: s(),
            period: s(),
            program_unit: s(),
            payee_role: s(),
            pregnant: BooleanBuilder::with_capacity(n),
            disability: BooleanBuilder::with_capacity(n),
            in_school: BooleanBuilder::with_capacity(n),
            components: ListBuilder::new(StringBuilder::new()),
            remark: s(),
            quality_flags: ListBuilder::new(StringBuilder::new()),
            extras: (0..extras).map(|_| s()).collect(),
        }
    }

    /// Arrays in [`staged_schema`] order.
    fn finish(mut self) -> Vec<ArrayRef> {
        let [pc, rc, dc, vc] = &mut self.region_codes;
        let [pn, rn, dn, vn] = &mut self.region_names;
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.source_file.finish()),
            Arc::new(UInt64Array::from(std::mem::take(&mut self.source_row))),
            Arc::new(self.nik.finish()),
            Arc::new(self.nik_raw.finish()),
            Arc::new(self.nik_status.finish()),
            Arc::new(self.nik_known_prefix.finish()),
            Arc::new(self.nik_birth_date.finish()),
            Arc::new(self.nik_sex.finish()),
            Arc::new(self.no_kk.finish()),
            Arc::new(self.no_kk_raw.finish()),
            Arc::new(self.no_kk_status.finish()),
            Arc::new(self.full_name.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.name_titles.finish()),
            Arc::new(self.name_patronymic.finish()),
            Arc::new(self.name_old_spelling.finish()),
            Arc::new(self.birth_place.finish()),
            Arc::new(self.birth_date.finish()),
            Arc::new(self.birth_date_raw.finish()),
            Arc::new(self.sex.finish()),
            Arc::new(self.relationship.finish()),
            Arc::new(self.marital_status.finish()),
            Arc::new(pc.finish()),
            Arc::new(rc.finish()),
            Arc::new(dc.finish()),
            Arc::new(vc.finish()),
            Arc::new(pn.finish()),
            Arc::new(rn.finish()),
            Arc::new(dn.finish()),
            Arc::new(vn.finish()),
            Arc::new(self.address.finish()),
            Arc::new(self.rt.finish()),
            Arc::new(self.rw.finish()),
            Arc::new(self.welfare_decile.finish()),
            Arc::new(self.household_id.finish()),
            Arc::new(self.member_id.finish()),
            Arc::new(self.life_status.finish()),
            Arc::new(self.death_date.finish()),
            Arc::new(self.program.finish()),
            Arc::new(self.period.finish()),
            Arc::new(self.program_unit.finish()),
            Arc::new(self.payee_role.finish()),
            Arc::new(self.pregnant.finish()),
            Arc::new(self.disability.finish()),
            Arc::new(self.in_school.finish()),
            Arc::new(self.components.finish()),
            Arc::new(self.remark.finish()),
            Arc::new(self.quality_flags.finish()),
        ];
        for mut extra in std::mem::take(&mut self.extras) {
            arrays.push(Arc::new(extra.finish()));
        }
        arrays
    }
}
