//! The `person` and `family` tables: one row per cluster (family), each attribute taken from
//! the most authoritative record (member) that has it.
//!
//! Written over Arrow arrays rather than as SQL: grouped `first_value(.. ORDER BY ..)` and
//! `array_agg(DISTINCT ..)` keep one accumulator object per group in DataFusion 55, which at
//! a million persons took over 12 GiB; sorting record numbers once and taking values by index
//! needs a few hundred MiB.
//!
//! Who wins: the civil registry (the identity master), then the welfare registry, then
//! program lists, then local lists; within one authority the earliest record. The NIK is the
//! exception: the civil registry's, else the valid NIK most records agree on. A placeholder
//! birth date loses to a real one.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, ListBuilder, RecordBatch, StringArray,
    StringBuilder, UInt8Array, UInt32Array, UInt64Array,
};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, UInt8Type};

use super::RegistryError;

fn column<'a>(records: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, RegistryError> {
    records
        .column_by_name(name)
        .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column {name}")).into())
}

fn strings(records: &RecordBatch, name: &str) -> Result<StringArray, RegistryError> {
    Ok(
        arrow::compute::cast(column(records, name)?, &DataType::Utf8)?
            .as_string::<i32>()
            .clone(),
    )
}

/// Rank of a record's role: lower wins.
fn authority(role: &str) -> u8 {
    match role {
        "civil_registry" => 0,
        "welfare_registry" => 1,
        "program" => 2,
        _ => 3,
    }
}

/// Records grouped by cluster, each group in authority order.
struct Groups {
    /// Record numbers, by group, then authority, then record number.
    order: Vec<u32>,
    /// Start of each group in `order`, plus the end.
    starts: Vec<usize>,
    /// The cluster id of each group (ascending).
    cluster_ids: Vec<u64>,
}

impl Groups {
    fn new(cluster_ids: &[u64], roles: &StringArray) -> Groups {
        let ranks: Vec<u8> = roles.iter().map(|r| authority(r.unwrap_or(""))).collect();
        let mut order: Vec<u32> = (0..cluster_ids.len() as u32).collect();
        order.sort_unstable_by_key(|&rid| (cluster_ids[rid as usize], ranks[rid as usize], rid));
        let mut starts = Vec::new();
        let mut ids = Vec::new();
        for (position, &rid) in order.iter().enumerate() {
            let cluster = cluster_ids[rid as usize];
            if ids.last() != Some(&cluster) {
                ids.push(cluster);
                starts.push(position);
            }
        }
        starts.push(order.len());
        Groups {
            order,
            starts,
            cluster_ids: ids,
        }
    }

    fn len(&self) -> usize {
        self.cluster_ids.len()
    }

    fn members(&self, group: usize) -> &[u32] {
        &self.order[self.starts[group]..self.starts[group + 1]]
    }

    /// For each group, the first member (in authority order) that `keep` accepts, else the
    /// first member.
    fn pick(&self, keep: impl Fn(usize) -> bool) -> UInt32Array {
        (0..self.len())
            .map(|g| {
                let members = self.members(g);
                members
                    .iter()
                    .copied()
                    .find(|&rid| keep(rid as usize))
                    .unwrap_or(members[0])
            })
            .collect::<Vec<u32>>()
            .into()
    }
}

/// The best valid identifier of each group: lowest authority, then most votes, then smallest.
fn best_identifier(
    groups: &Groups,
    values: &StringArray,
    status: &StringArray,
    roles: &StringArray,
) -> (StringArray, UInt64Array) {
    let mut best = Vec::with_capacity(groups.len());
    let mut distinct = Vec::with_capacity(groups.len());
    let mut votes: Vec<(&str, u8, u64)> = Vec::new();
    for g in 0..groups.len() {
        votes.clear();
        for &rid in groups.members(g) {
            let rid = rid as usize;
            if values.is_null(rid) || status.is_null(rid) || status.value(rid) != "valid" {
                continue;
            }
            let (value, rank) = (values.value(rid), authority(roles.value(rid)));
            match votes.iter_mut().find(|(v, _, _)| *v == value) {
                Some(entry) => {
                    entry.1 = entry.1.min(rank);
                    entry.2 += 1;
                }
                None => votes.push((value, rank, 1)),
            }
        }
        distinct.push(votes.len() as u64);
        best.push(
            votes
                .iter()
                .min_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)))
                .map(|(v, _, _)| v.to_string()),
        );
    }
    (StringArray::from(best), UInt64Array::from(distinct))
}

/// A list column with one list per row, in the order given (callers pass sorted sets).
fn list_column<R, S>(rows: impl IntoIterator<Item = R>) -> ArrayRef
where
    R: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut builder = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for value in row {
            builder.values().append_value(value);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// The distinct values of the lists at `rows` of `lists`, sorted.
fn union_of_lists(lists: &ListArray, rows: impl Iterator<Item = usize>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for row in rows.filter(|&r| lists.is_valid(r)) {
        for value in lists.value(row).as_string::<i32>().iter().flatten() {
            if !set.contains(value) {
                set.insert(value.to_string());
            }
        }
    }
    set
}

/// Distinct sorted texts of each group's members, from `values` where `keep` holds.
fn distinct_lists(groups: &Groups, values: &StringArray, keep: impl Fn(usize) -> bool) -> ArrayRef {
    list_column((0..groups.len()).map(|g| {
        groups
            .members(g)
            .iter()
            .map(|&rid| rid as usize)
            .filter(|&rid| values.is_valid(rid) && keep(rid))
            .map(|rid| values.value(rid))
            .collect::<BTreeSet<&str>>()
    }))
}

/// Builds the person rows (with `cluster_id` and `family_key`, dropped on publication).
pub fn person_batch(
    records: &RecordBatch,
    cluster_ids: &[u64],
) -> Result<RecordBatch, RegistryError> {
    let roles = strings(records, "role")?;
    let groups = Groups::new(cluster_ids, &roles);
    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut push = |name: &str, array: ArrayRef| {
        fields.push(Field::new(name, array.data_type().clone(), true));
        columns.push(array);
    };
    push(
        "cluster_id",
        Arc::new(UInt64Array::from(groups.cluster_ids.clone())),
    );
    let (nik, distinct_niks) = best_identifier(
        &groups,
        &strings(records, "nik")?,
        &strings(records, "nik_status")?,
        &roles,
    );
    push("nik", Arc::new(nik));
    push("distinct_niks", Arc::new(distinct_niks));
    let first_present = |name: &str| -> Result<ArrayRef, RegistryError> {
        let values = column(records, name)?;
        Ok(take(
            values.as_ref(),
            &groups.pick(|rid| values.is_valid(rid)),
            None,
        )?)
    };
    push("full_name", first_present("full_name")?);
    push("name", first_present("name")?);
    let full_names = strings(records, "full_name")?;
    push(
        "name_variants",
        distinct_lists(&groups, &full_names, |_| true),
    );
    let birth = column(records, "birth_date")?;
    let flags = column(records, "quality_flags")?.as_list::<i32>().clone();
    let placeholder = |rid: usize| {
        flags.is_valid(rid)
            && flags
                .value(rid)
                .as_string::<i32>()
                .iter()
                .any(|f| f == Some("birth_date_placeholder"))
    };
    let real_birth = groups.pick(|rid| birth.is_valid(rid) && !placeholder(rid));
    let any_birth = groups.pick(|rid| birth.is_valid(rid));
    let birth_index: UInt32Array = real_birth
        .values()
        .iter()
        .zip(any_birth.values().iter())
        .map(|(&real, &any)| {
            if birth.is_valid(real as usize) {
                real
            } else {
                any
            }
        })
        .collect::<Vec<u32>>()
        .into();
    push("birth_date", take(birth.as_ref(), &birth_index, None)?);
    push("sex", first_present("sex")?);
    let village = column(records, "village_code")?;
    let place = groups.pick(|rid| village.is_valid(rid));
    for name in [
        "province_code",
        "regency_code",
        "district_code",
        "village_code",
        "province_name",
        "regency_name",
        "district_name",
        "village_name",
    ] {
        push(name, take(column(records, name)?.as_ref(), &place, None)?);
    }
    let (no_kk, _) = best_identifier(
        &groups,
        &strings(records, "no_kk")?,
        &strings(records, "no_kk_status")?,
        &roles,
    );
    push("relationship", first_present("relationship")?);
    push("life_status", first_present("life_status")?);
    push("death_date", first_present("death_date")?);
    let decile = arrow::compute::cast(column(records, "welfare_decile")?, &DataType::UInt8)?;
    let decile = decile.as_primitive::<UInt8Type>();
    let min_decile: UInt8Array = (0..groups.len())
        .map(|g| {
            groups
                .members(g)
                .iter()
                .filter(|&&rid| decile.is_valid(rid as usize))
                .map(|&rid| decile.value(rid as usize))
                .min()
        })
        .collect();
    push("welfare_decile", Arc::new(min_decile));
    for name in ["pregnant", "disability", "in_school"] {
        push(name, first_present(name)?);
    }
    let household = first_present("household_id")?;
    push("household_id", household.clone());
    let in_registry: BooleanArray = (0..groups.len())
        .map(|g| {
            Some(
                groups
                    .members(g)
                    .iter()
                    .any(|&rid| roles.value(rid as usize) == "civil_registry"),
            )
        })
        .collect();
    push("in_civil_registry", Arc::new(in_registry));
    push(
        "sources",
        distinct_lists(&groups, &strings(records, "source")?, |_| true),
    );
    push(
        "programs",
        distinct_lists(&groups, &strings(records, "program")?, |rid| {
            roles.value(rid) == "program"
        }),
    );
    push(
        "record_count",
        Arc::new(UInt64Array::from_iter_values(
            (0..groups.len()).map(|g| groups.members(g).len() as u64),
        )),
    );
    push(
        "quality_flags",
        list_column(
            (0..groups.len())
                .map(|g| union_of_lists(&flags, groups.members(g).iter().map(|&rid| rid as usize))),
        ),
    );
    let household = arrow::compute::cast(&household, &DataType::Utf8)?;
    let household = household.as_string::<i32>();
    let family_key: StringArray = (0..groups.len())
        .map(|g| {
            if no_kk.is_valid(g) {
                Some(no_kk.value(g).to_string())
            } else if household.is_valid(g) {
                Some(format!("household:{}", household.value(g)))
            } else {
                None
            }
        })
        .collect();
    // no_kk sits after the region, as in the published schema.
    let at = fields
        .iter()
        .position(|f| f.name() == "relationship")
        .unwrap_or(fields.len());
    fields.insert(at, Field::new("no_kk", DataType::Utf8, true));
    columns.insert(at, Arc::new(no_kk));
    fields.push(Field::new("family_key", DataType::Utf8, true));
    columns.push(Arc::new(family_key));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Builds the family rows. `family_of_person` gives each person row's family (by index into
/// `family_ids`); `person` is the published person batch (with `person_id`); `records` and
/// `person_of_record` give the KK numbers seen on member records.
pub fn family_batch(
    person: &RecordBatch,
    family_of_person: &[Option<usize>],
    family_ids: &[String],
    family_kk: &[Option<&str>],
    records: &RecordBatch,
    person_of_record: &[usize],
) -> Result<RecordBatch, RegistryError> {
    let families = family_ids.len();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); families];
    for (row, family) in family_of_person.iter().enumerate() {
        if let Some(f) = family {
            members[*f].push(row);
        }
    }
    let person_ids = strings(person, "person_id")?;
    let relationship = strings(person, "relationship")?;
    let birth = arrow::compute::cast(column(person, "birth_date")?, &DataType::Int32)?;
    let birth = birth.as_primitive::<arrow::datatypes::Int32Type>();
    let life = strings(person, "life_status")?;
    // Head first (the registry's head, else the eldest), the dead last, then by person id.
    for list in &mut members {
        list.sort_by_key(|&row| {
            (
                life.is_valid(row) && life.value(row) == "dead",
                !(relationship.is_valid(row) && relationship.value(row) == "head"),
                birth.is_null(row),
                birth.is_valid(row).then(|| birth.value(row)),
                person_ids.value(row).to_string(),
            )
        });
    }
    // KK numbers seen on member records.
    let record_kk = strings(records, "no_kk")?;
    let record_kk_status = strings(records, "no_kk_status")?;
    let mut kk_seen: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); families];
    for (rid, &row) in person_of_record.iter().enumerate() {
        if let Some(f) = family_of_person[row]
            && record_kk.is_valid(rid)
            && record_kk_status.is_valid(rid)
            && record_kk_status.value(rid) == "valid"
        {
            kk_seen[f].insert(record_kk.value(rid));
        }
    }
    let heads: UInt32Array = members
        .iter()
        .map(|m| m[0] as u32)
        .collect::<Vec<u32>>()
        .into();
    let village = column(person, "village_code")?;
    let place: UInt32Array = members
        .iter()
        .map(|m| {
            m.iter()
                .copied()
                .find(|&r| village.is_valid(r))
                .unwrap_or(m[0]) as u32
        })
        .collect::<Vec<u32>>()
        .into();
    let household = strings(person, "household_id")?;
    let decile = arrow::compute::cast(column(person, "welfare_decile")?, &DataType::UInt8)?;
    let decile = decile.as_primitive::<UInt8Type>();
    let programs = column(person, "programs")?.as_list::<i32>().clone();

    let mut fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    let mut push = |name: &str, array: ArrayRef| {
        fields.push(Field::new(name, array.data_type().clone(), true));
        columns.push(array);
    };
    push(
        "family_id",
        Arc::new(StringArray::from_iter_values(family_ids.iter())),
    );
    push("no_kk", Arc::new(StringArray::from(family_kk.to_vec())));
    push("kk_numbers", list_column(&kk_seen));
    push(
        "household_id",
        Arc::new(
            members
                .iter()
                .map(|m| {
                    m.iter()
                        .find(|&&r| household.is_valid(r))
                        .map(|&r| household.value(r))
                })
                .collect::<StringArray>(),
        ),
    );
    push(
        "head_person_id",
        take(column(person, "person_id")?.as_ref(), &heads, None)?,
    );
    push(
        "head_name",
        take(column(person, "full_name")?.as_ref(), &heads, None)?,
    );
    push(
        "members",
        Arc::new(UInt64Array::from_iter_values(
            members.iter().map(|m| m.len() as u64),
        )),
    );
    push(
        "member_ids",
        list_column(members.iter().map(|m| {
            m.iter()
                .map(|&r| person_ids.value(r))
                .collect::<BTreeSet<&str>>()
        })),
    );
    for name in [
        "province_code",
        "regency_code",
        "district_code",
        "village_code",
    ] {
        push(name, take(column(person, name)?.as_ref(), &place, None)?);
    }
    push(
        "welfare_decile",
        Arc::new(
            members
                .iter()
                .map(|m| {
                    m.iter()
                        .filter(|&&r| decile.is_valid(r))
                        .map(|&r| decile.value(r))
                        .min()
                })
                .collect::<UInt8Array>(),
        ),
    );
    push(
        "programs",
        list_column(
            members
                .iter()
                .map(|m| union_of_lists(&programs, m.iter().copied())),
        ),
    );
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
