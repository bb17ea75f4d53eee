//! The registry tables, built from a [`LinkRun`]: persons and families ([`super::aggregate`]),
//! their stable ids ([`super::ids`]), record links, program memberships (a DataFusion join)
//! and the scored pairs.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Float32Array, Float64Array, RecordBatch,
    StringArray, UInt8Array, UInt32Array, UInt64Array,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, UInt8Type, UInt64Type};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::RegistryError;
use super::ids::{ChangeEvent, IdFormat, Previous, carry_forward};
use crate::link::gamma::COMPARISONS;
use crate::link::stage::LinkRun;

/// The previous version's ids, read before linking.
#[derive(Debug, Default, Clone)]
pub struct PreviousIds {
    /// (record_key, person_id) of every record.
    pub person_members: Vec<(String, String)>,
    /// (person_id, nik) of persons with a NIK.
    pub person_niks: Vec<(String, String)>,
    /// (person_id, family_id) of persons in a family.
    pub family_members: Vec<(String, String)>,
    /// (family_id, no_kk) of families with a KK number.
    pub family_kks: Vec<(String, String)>,
    /// Next fresh person number.
    pub next_person: u64,
    /// Next fresh family number.
    pub next_family: u64,
}

impl PreviousIds {
    fn persons(&self) -> Previous<'_> {
        Previous {
            members: pairs(&self.person_members),
            fallback: pairs(&self.person_niks),
            next_number: self.next_person,
        }
    }

    fn families(&self) -> Previous<'_> {
        Previous {
            members: pairs(&self.family_members),
            fallback: pairs(&self.family_kks),
            next_number: self.next_family,
        }
    }
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

/// Every table of one registry version.
#[derive(Debug)]
pub struct RegistryTables {
    /// One row per person.
    pub person: RecordBatch,
    /// One row per family.
    pub family: RecordBatch,
    /// One row per staged record.
    pub record_link: RecordBatch,
    /// One row per program record.
    pub program_membership: RecordBatch,
    /// Id changes against the previous version.
    pub changes: RecordBatch,
    /// Scored candidate pairs (probability >= 0.01), for evaluation and `explain`.
    pub match_pairs: RecordBatch,
    /// Next fresh person number.
    pub next_person: u64,
    /// Next fresh family number.
    pub next_family: u64,
}

const MEMBERSHIP_SQL: &str = "\
SELECT rec.program, rec.period, rec.program_unit AS unit, l.person_id, l.family_id,
  rec.source, rec.source_file, rec.source_row, rec.payee_role,
  rec.nik AS listed_nik, rec.nik_status AS listed_nik_status, rec.no_kk AS listed_no_kk,
  rec.full_name AS listed_name,
  rec.village_code
FROM records rec JOIN new_record_link l ON rec.rid = l.rid
WHERE rec.role = 'program'
ORDER BY rec.program, rec.period, l.person_id, rec.source, rec.source_file, rec.source_row";

async fn collect(ctx: &SessionContext, sql: &str) -> Result<RecordBatch, RegistryError> {
    let frame = ctx.sql(sql).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(concat_batches(&schema, &batches)?)
}

fn register(ctx: &SessionContext, name: &str, batch: &RecordBatch) -> Result<(), RegistryError> {
    let _ = ctx.deregister_table(name)?;
    let table = MemTable::try_new(batch.schema(), vec![vec![batch.clone()]])?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

fn utf8(batch: &RecordBatch, name: &str) -> Result<StringArray, RegistryError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column {name}")))?;
    Ok(arrow::compute::cast(column, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

/// Replaces `drop` columns of `batch` by `prepend` columns at the front.
fn reshape(
    batch: &RecordBatch,
    prepend: Vec<(&str, ArrayRef)>,
    drop: &[&str],
) -> Result<RecordBatch, RegistryError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (name, column) in prepend {
        fields.push(Field::new(name, column.data_type().clone(), true));
        columns.push(column);
    }
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !drop.contains(&field.name().as_str()) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Builds every registry table from `run` (whose `records` are registered in `ctx`).
pub async fn build(
    ctx: &SessionContext,
    run: &LinkRun,
    previous: &PreviousIds,
) -> Result<RegistryTables, RegistryError> {
    let records = &run.records;
    let n = records.num_rows();
    let cluster_ids = &run.clustering.cluster_ids;
    let clock = std::time::Instant::now();
    let step = |name: &str| {
        tracing::debug!(
            step = name,
            seconds = clock.elapsed().as_secs_f64(),
            rss_mib = crate::metrics::current_rss_bytes().map(|b| b >> 20),
            "Registry step done."
        );
    };

    // Persons: one row per cluster, then ids carried forward from the previous version.
    let person = super::aggregate::person_batch(records, cluster_ids)?;
    step("person rows");
    let person_clusters = person
        .column_by_name("cluster_id")
        .map(|c| c.as_primitive::<UInt64Type>().clone())
        .ok_or_else(|| arrow::error::ArrowError::SchemaError("no cluster_id".into()))?;
    let group_of: HashMap<u64, usize> = person_clusters
        .values()
        .iter()
        .enumerate()
        .map(|(g, c)| (*c, g))
        .collect();
    let person_of_record: Vec<usize> = (0..n).map(|rid| group_of[&cluster_ids[rid]]).collect();
    let record_keys = utf8(records, "record_key")?;
    let members: Vec<(usize, &str)> = (0..n)
        .map(|rid| (person_of_record[rid], record_keys.value(rid)))
        .collect();
    let niks = utf8(&person, "nik")?;
    let fallback: Vec<Option<&str>> = niks.iter().collect();
    let persons = carry_forward(
        person.num_rows(),
        &members,
        &fallback,
        &previous.persons(),
        IdFormat::PERSON,
    );

    // Families: persons grouped by current KK (else welfare household), ids carried likewise.
    step("persons");
    let family_keys = utf8(&person, "family_key")?;
    let mut family_group: HashMap<&str, usize> = HashMap::new();
    let mut family_of_person: Vec<Option<usize>> = Vec::with_capacity(person.num_rows());
    let mut family_kk: Vec<Option<&str>> = Vec::new();
    let person_kks = utf8(&person, "no_kk")?;
    for (row, key) in family_keys.iter().enumerate() {
        family_of_person.push(key.map(|key| {
            let next = family_group.len();
            *family_group.entry(key).or_insert_with(|| {
                family_kk.push(person_kks.is_valid(row).then(|| person_kks.value(row)));
                next
            })
        }));
    }
    let family_members: Vec<(usize, &str)> = family_of_person
        .iter()
        .enumerate()
        .filter_map(|(row, g)| g.map(|g| (g, persons.ids[row].as_str())))
        .collect();
    let families = carry_forward(
        family_group.len(),
        &family_members,
        &family_kk,
        &previous.families(),
        IdFormat::FAMILY,
    );
    step("families");
    let family_id_of_person: StringArray = family_of_person
        .iter()
        .map(|g| g.map(|g| families.ids[g].as_str()))
        .collect();
    let person_id_array: StringArray = persons.ids.iter().map(|s| Some(s.as_str())).collect();
    let person = reshape(
        &person,
        vec![
            ("person_id", Arc::new(person_id_array)),
            ("family_id", Arc::new(family_id_of_person.clone())),
        ],
        &["cluster_id", "family_key"],
    )?;

    let record_link =
        record_link_batch(run, &person_of_record, &persons.ids, &family_id_of_person)?;
    step("record_link");
    register(ctx, "new_record_link", &record_link)?;
    let family = super::aggregate::family_batch(
        &person,
        &family_of_person,
        &families.ids,
        &family_kk,
        records,
        &person_of_record,
    )?;
    step("family table");
    let program_membership = collect(ctx, MEMBERSHIP_SQL).await?;
    step("memberships");
    let changes = changes_batch(&[("person", &persons.events), ("family", &families.events)])?;
    let match_pairs = pairs_batch(run)?;
    let _ = ctx.deregister_table("new_record_link")?;
    Ok(RegistryTables {
        person,
        family,
        record_link,
        program_membership,
        changes,
        match_pairs,
        next_person: persons.next_number,
        next_family: families.next_number,
    })
}

/// A dictionary column of level codes, keyed by the gamma values.
fn level_column(comparison: usize, gammas: UInt8Array) -> Result<ArrayRef, RegistryError> {
    let codes = StringArray::from((COMPARISONS[comparison].levels)());
    Ok(Arc::new(DictionaryArray::<UInt8Type>::try_new(
        gammas,
        Arc::new(codes),
    )?))
}

fn record_link_batch(
    run: &LinkRun,
    person_of_record: &[usize],
    person_ids: &[String],
    family_of_group: &StringArray,
) -> Result<RecordBatch, RegistryError> {
    let records = &run.records;
    let n = records.num_rows();
    let width = COMPARISONS.len();
    let group = |rid: usize| person_of_record[rid];
    let sources = utf8(records, "source")?;
    let rows = records
        .column_by_name("source_row")
        .map(|c| c.as_primitive::<UInt64Type>().clone())
        .ok_or_else(|| arrow::error::ArrowError::SchemaError("no source_row".into()))?;
    let partner = |rid: usize| -> Option<usize> {
        let pair = &run.pairs[run.best_pair[rid]? as usize];
        Some(if pair.left as usize == rid {
            pair.right as usize
        } else {
            pair.left as usize
        })
    };
    let best = |rid: usize| run.best_pair[rid].map(|i| &run.pairs[i as usize]);
    let mut fields = vec![
        Field::new("rid", DataType::UInt32, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("source_file", DataType::Utf8, true),
        Field::new("source_row", DataType::UInt64, false),
        Field::new("role", DataType::Utf8, true),
        Field::new("record_key", DataType::Utf8, false),
        Field::new("nik", DataType::Utf8, true),
        Field::new("nik_status", DataType::Utf8, true),
        Field::new("full_name", DataType::Utf8, true),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("person_id", DataType::Utf8, false),
        Field::new("family_id", DataType::Utf8, true),
        Field::new("linked_to_source", DataType::Utf8, true),
        Field::new("linked_to_row", DataType::UInt64, true),
        Field::new("match_weight", DataType::Float64, true),
        Field::new("match_probability", DataType::Float64, true),
        Field::new("tf_weight", DataType::Float32, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(0..n as u32)),
        Arc::new(sources.clone()),
        Arc::new(utf8(records, "source_file")?),
        Arc::new(rows.clone()),
        Arc::new(utf8(records, "role")?),
        Arc::new(utf8(records, "record_key")?),
        Arc::new(utf8(records, "nik")?),
        Arc::new(utf8(records, "nik_status")?),
        Arc::new(utf8(records, "full_name")?),
        records
            .column_by_name("birth_date")
            .cloned()
            .ok_or_else(|| arrow::error::ArrowError::SchemaError("no birth_date".into()))?,
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|rid| person_ids[group(rid)].as_str()),
        )),
        Arc::new(
            (0..n)
                .map(|rid| {
                    let g = group(rid);
                    family_of_group
                        .is_valid(g)
                        .then(|| family_of_group.value(g))
                })
                .collect::<StringArray>(),
        ),
        Arc::new(
            (0..n)
                .map(|rid| partner(rid).map(|p| sources.value(p)))
                .collect::<StringArray>(),
        ),
        Arc::new(
            (0..n)
                .map(|rid| partner(rid).map(|p| rows.value(p)))
                .collect::<UInt64Array>(),
        ),
        Arc::new(Float64Array::from_iter(
            (0..n).map(|rid| best(rid).map(|p| p.weight)),
        )),
        Arc::new(Float64Array::from_iter(
            (0..n).map(|rid| best(rid).map(|p| p.probability)),
        )),
        Arc::new(Float32Array::from_iter(
            (0..n).map(|rid| best(rid).map(|p| p.tf_weight)),
        )),
    ];
    for (k, comparison) in COMPARISONS.iter().enumerate() {
        let gammas: UInt8Array = (0..n)
            .map(|rid| run.best_pair[rid].map(|i| run.pair_gammas[i as usize * width + k]))
            .collect();
        let column = level_column(k, gammas)?;
        fields.push(Field::new(
            format!("{}_level", comparison.name),
            column.data_type().clone(),
            true,
        ));
        columns.push(column);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn pairs_batch(run: &LinkRun) -> Result<RecordBatch, RegistryError> {
    let width = COMPARISONS.len();
    let pairs = &run.pairs;
    let mut fields = vec![
        Field::new("left_rid", DataType::UInt32, false),
        Field::new("right_rid", DataType::UInt32, false),
        Field::new("match_weight", DataType::Float64, false),
        Field::new("match_probability", DataType::Float64, false),
        Field::new("tf_weight", DataType::Float32, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(pairs.iter().map(|p| p.left))),
        Arc::new(UInt32Array::from_iter_values(pairs.iter().map(|p| p.right))),
        Arc::new(Float64Array::from_iter_values(
            pairs.iter().map(|p| p.weight),
        )),
        Arc::new(Float64Array::from_iter_values(
            pairs.iter().map(|p| p.probability),
        )),
        Arc::new(Float32Array::from_iter_values(
            pairs.iter().map(|p| p.tf_weight),
        )),
    ];
    for (k, comparison) in COMPARISONS.iter().enumerate() {
        let gammas =
            UInt8Array::from_iter_values(run.pair_gammas.chunks_exact(width).map(|row| row[k]));
        let column = level_column(k, gammas)?;
        fields.push(Field::new(
            format!("{}_level", comparison.name),
            column.data_type().clone(),
            false,
        ));
        columns.push(column);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn changes_batch(events: &[(&str, &Vec<ChangeEvent>)]) -> Result<RecordBatch, RegistryError> {
    let all: Vec<(&str, &ChangeEvent)> = events
        .iter()
        .flat_map(|(entity, events)| events.iter().map(move |e| (*entity, e)))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("entity", DataType::Utf8, false),
            Field::new("change", DataType::Utf8, false),
            Field::new("id", DataType::Utf8, false),
            Field::new("related_id", DataType::Utf8, true),
            Field::new("shared_members", DataType::UInt64, false),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(all.iter().map(|(e, _)| *e))),
            Arc::new(StringArray::from_iter_values(
                all.iter().map(|(_, e)| e.kind.code()),
            )),
            Arc::new(StringArray::from_iter_values(
                all.iter().map(|(_, e)| e.id.as_str()),
            )),
            Arc::new(
                all.iter()
                    .map(|(_, e)| e.related_id.as_deref())
                    .collect::<StringArray>(),
            ),
            Arc::new(UInt64Array::from_iter_values(
                all.iter().map(|(_, e)| e.members),
            )),
        ],
    )?)
}

/// Reads the previous version's ids through the session's registry tables (absent on the
/// first run).
pub async fn previous_ids(
    ctx: &SessionContext,
    next_person: u64,
    next_family: u64,
) -> Result<PreviousIds, RegistryError> {
    let mut previous = PreviousIds {
        next_person,
        next_family,
        ..PreviousIds::default()
    };
    if !ctx.table_exist("record_link")? {
        return Ok(previous);
    }
    let read = |sql: &'static str| async move {
        let batch = collect(ctx, sql).await?;
        let (a, b) = (utf8(&batch, "a")?, utf8(&batch, "b")?);
        Ok::<_, RegistryError>(
            (0..batch.num_rows())
                .map(|i| (a.value(i).to_string(), b.value(i).to_string()))
                .collect::<Vec<_>>(),
        )
    };
    previous.person_members =
        read("SELECT record_key AS a, person_id AS b FROM record_link").await?;
    previous.person_niks =
        read("SELECT person_id AS a, nik AS b FROM person WHERE nik IS NOT NULL").await?;
    previous.family_members =
        read("SELECT person_id AS a, family_id AS b FROM person WHERE family_id IS NOT NULL")
            .await?;
    previous.family_kks =
        read("SELECT family_id AS a, no_kk AS b FROM family WHERE no_kk IS NOT NULL").await?;
    Ok(previous)
}
