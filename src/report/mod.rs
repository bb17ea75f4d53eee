//! Reports for program managers, built with DataFusion over the registry of one version and
//! the pipeline's program catalogue ([`crate::config::programs`]).
//!
//! Each report is a table with one row per case (or per count cell), with the ids, the source
//! rows involved, the evidence, and region columns for filtering:
//! 1. `duplicates`: the same person (or family, for family and household programs) listed
//!    more than once in one program list and period, also when the payee differs.
//! 2. `overlap`: recipients of every program pair by regency and welfare decile (the diagonal
//!    is each program's recipients); `combinations`: the program sets families hold.
//! 3. `exclusivity_breaches`: units breaking a declared exclusivity rule.
//! 4. `inclusion_errors`: recipients who should not receive, by auditors' categories: dead
//!    (with living heirs on the family card), NIK invalid, NIK unknown to the civil registry,
//!    not in the welfare registry, decile above the program's cut-off.
//! 5. `exclusion_errors`: units eligible by a program's rule that do not receive it.
//! 6. `data_quality`: per source, the NIK and date problems, unmatched and quarantined rows.
//! 7. `coverage`: per program and village: recipients, eligible, eligible covered, rates.
//!
//! Reports are published in the same workspace version as the registry they read: each as
//! a Delta table `store/reports/<name>` (queried with `terpadu sql` as `report_<name>`), and
//! for people as CSV, one XLSX workbook and one HTML page under `files/v<N>/`. NIK and KK
//! numbers are masked unless the run asks for them unmasked (recorded in the access log).

pub mod evaluate;
pub mod html;
pub mod xlsx;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::config::Pipeline;
use crate::config::pipeline::ProgramUnit;
use crate::registry::RegistryError;
use crate::sql::{Session, SqlError};
use crate::store::{Draft, Snapshot, StoreError};
use crate::workspace::{Workspace, new_run_id};

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Opening the workspace failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// No registry, or an unreadable one.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store failed (locked, damaged, or cannot be written).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A report's query failed (often a rule's SQL).
    #[error("report {report}: {source}")]
    Query {
        /// The report.
        report: String,
        /// The error.
        source: DataFusionError,
    },
    /// Arrow failed (a bug in terpadu).
    #[error("internal error while writing reports: {0}; please report it")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing failed.
    #[error("cannot write {path}: {message} (check free space and permissions)")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Options of a report run.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Write NIK and KK numbers in full.
    pub unmasked: bool,
}

/// One written report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenReport {
    /// Report name (`report_<name>` in SQL).
    pub name: String,
    /// What it lists.
    pub title: String,
    /// Rows.
    pub rows: usize,
}

/// `reports.json` beside the reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportManifest {
    /// The registry version the reports read.
    pub registry_version: String,
    /// The reference date used.
    pub reference_date: String,
    /// Whether identifiers are masked.
    pub masked: bool,
    /// The reports.
    pub reports: Vec<WrittenReport>,
}

/// One report to compute.
struct ReportSpec {
    name: &'static str,
    title: &'static str,
    sql: String,
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The unit views rules are written against: `person_view` (person + `age`, `alive`) and
/// `family_view` (family + region names + living members and their components).
pub async fn register_views(
    ctx: &SessionContext,
    reference_date: chrono::NaiveDate,
) -> Result<(), ReportError> {
    let date = format!("DATE '{}'", reference_date.format("%Y-%m-%d"));
    let statements = [
        format!(
            "CREATE OR REPLACE VIEW person_view AS SELECT p.*, \
               CAST(floor((CAST({date} AS INT) - CAST(p.birth_date AS INT)) / 365.25) AS INT) AS age, \
               NOT (coalesce(p.life_status, 'alive') = 'dead' \
                    AND (p.death_date IS NULL OR p.death_date <= {date})) AS alive, \
               coalesce(f.programs, p.programs) AS family_programs \
             FROM person p LEFT JOIN family f ON p.family_id = f.family_id"
        ),
        "CREATE OR REPLACE VIEW family_view AS SELECT f.*, \
           region_name(f.regency_code) AS regency_name, \
           region_name(f.district_code) AS district_name, \
           region_name(f.village_code) AS village_name, \
           f.welfare_decile IS NOT NULL AS in_welfare_registry, \
           c.living_members, c.has_pregnant, c.children_under_6, c.school_age_children, \
           c.elderly, c.has_disability \
         FROM family f JOIN (SELECT family_id, \
             sum(CASE WHEN alive THEN 1 ELSE 0 END) AS living_members, \
             bool_or(alive AND coalesce(pregnant, false)) AS has_pregnant, \
             sum(CASE WHEN alive AND age < 6 THEN 1 ELSE 0 END) AS children_under_6, \
             sum(CASE WHEN alive AND age BETWEEN 6 AND 18 THEN 1 ELSE 0 END) AS school_age_children, \
             sum(CASE WHEN alive AND age >= 70 THEN 1 ELSE 0 END) AS elderly, \
             bool_or(alive AND coalesce(disability, false)) AS has_disability \
           FROM person_view WHERE family_id IS NOT NULL GROUP BY family_id) c \
         ON f.family_id = c.family_id"
            .to_string(),
    ];
    for sql in statements {
        ctx.sql(&sql).await.map_err(|source| ReportError::Query {
            report: "views".into(),
            source,
        })?;
    }
    Ok(())
}

/// Every rule's SQL with its pipeline key: (key, unit view, predicate).
pub fn rule_predicates(pipeline: &Pipeline) -> Vec<(String, &'static str, String)> {
    let catalogue = &pipeline.catalogue;
    let mut out = Vec::new();
    for (i, program) in catalogue.programs.iter().enumerate() {
        if let Some(rule) = &program.eligibility {
            out.push((
                format!("programs[{i}].eligibility"),
                view_of(program.unit).0,
                rule.clone(),
            ));
        }
    }
    for (i, rule) in catalogue.exclusivity.iter().enumerate() {
        out.push((
            format!("exclusivity[{i}].breach"),
            view_of(rule.unit).0,
            rule.breach.clone(),
        ));
    }
    out
}

/// Plans every rule against the current registry's views; returns (key, error) per rule
/// that does not plan (unknown column, type error, syntax).
pub async fn check_rules(pipeline: &Pipeline) -> Result<Vec<(String, String)>, ReportError> {
    let workspace = Workspace::new(&pipeline.workspace);
    let session = Session::open(&workspace).await?;
    let reference = pipeline
        .catalogue
        .reference_date
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    register_views(&session.ctx, reference).await?;
    let mut problems = Vec::new();
    for (key, view, predicate) in rule_predicates(pipeline) {
        let planned = match session
            .ctx
            .sql(&format!("SELECT count(*) FROM {view} WHERE {predicate}"))
            .await
        {
            Ok(frame) => frame.into_optimized_plan().map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = planned {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default().to_string();
            problems.push((key, format!("{first} (the rule is SQL over {view})")));
        }
    }
    Ok(problems)
}

fn view_of(unit: ProgramUnit) -> (&'static str, &'static str) {
    match unit {
        ProgramUnit::Person => ("person_view", "person_id"),
        ProgramUnit::Family | ProgramUnit::Household => ("family_view", "family_id"),
    }
}

fn specs(pipeline: &Pipeline, staged: &[String], masked: bool) -> Vec<ReportSpec> {
    let mask = |column: &str| {
        if masked {
            format!("mask_id({column})")
        } else {
            column.to_string()
        }
    };
    let catalogue = &pipeline.catalogue;
    let mut out = Vec::new();

    // 1. Within-program duplicates: keys first (cheap), then the rows of those keys only.
    out.push(ReportSpec {
        name: "duplicates",
        title: "Within-program duplicates",
        sql: format!(
            "WITH m AS (SELECT pm.*, CASE WHEN pm.unit = 'person' THEN pm.person_id \
                 ELSE coalesce(pm.family_id, pm.person_id) END AS unit_id, \
                 coalesce(pm.period, pm.source || '/' || pm.source_file) AS period_key \
               FROM program_membership pm), \
             keys AS (SELECT program, period_key, unit_id FROM m \
               GROUP BY program, period_key, unit_id HAVING count(*) > 1), \
             rows AS (SELECT m.*, l.match_probability FROM m \
               JOIN keys k ON m.program = k.program AND m.period_key = k.period_key \
                 AND m.unit_id = k.unit_id \
               JOIN record_link l ON l.source = m.source AND l.source_file = m.source_file \
                 AND l.source_row = m.source_row) \
             SELECT program, period, any_value(unit) AS unit, unit_id, count(*) AS listings, \
               count(DISTINCT person_id) > 1 AS payee_differs, \
               array_sort(array_agg(DISTINCT person_id)) AS person_ids, \
               array_sort(array_agg(source || ':' || CAST(source_row AS VARCHAR))) AS source_rows, \
               array_sort(array_agg(DISTINCT {nik})) AS listed_niks, \
               array_sort(array_agg(DISTINCT listed_name)) AS listed_names, \
               min(match_probability) AS weakest_link_probability, \
               min(village_code) AS village_code, region_name(min(village_code)) AS village_name \
             FROM rows GROUP BY program, period_key, period, unit_id \
             ORDER BY program, period, unit_id",
            nik = mask("listed_nik")
        ),
    });

    // 2. Overlap between programs, families as the unit (person programs roll up).
    out.push(ReportSpec {
        name: "overlap",
        title: "Program overlap (families)",
        sql: "WITH fp AS (SELECT family_id, regency_code, welfare_decile, unnest(programs) AS program \
                FROM family) \
              SELECT a.program AS program_a, b.program AS program_b, a.regency_code, \
                region_name(a.regency_code) AS regency_name, a.welfare_decile, count(*) AS families \
              FROM fp a JOIN fp b ON a.family_id = b.family_id AND a.program <= b.program \
              GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 5"
            .into(),
    });
    out.push(ReportSpec {
        name: "combinations",
        title: "Program combinations (families)",
        sql: "SELECT array_to_string(programs, ' + ') AS combination, cardinality(programs) AS programs, \
                count(*) AS families FROM family WHERE cardinality(programs) > 0 \
              GROUP BY 1, 2 ORDER BY families DESC, combination"
            .into(),
    });

    // 3. Exclusivity breaches.
    let breaches: Vec<String> = catalogue
        .exclusivity
        .iter()
        .map(|rule| {
            let (view, id) = view_of(rule.unit);
            let (name_column, kk) = match rule.unit {
                ProgramUnit::Person => ("full_name", "no_kk"),
                _ => ("head_name", "no_kk"),
            };
            format!(
                "SELECT {rule} AS rule, {description} AS description, {unit} AS unit, \
                   {id} AS unit_id, {name_column} AS name, {kk} AS no_kk, programs, welfare_decile, \
                   regency_code, district_code, village_code FROM {view} WHERE {breach}",
                rule = quote(&rule.name),
                description = quote(&rule.description),
                unit = quote(rule.unit.as_str()),
                kk = mask(kk),
                breach = rule.breach,
            )
        })
        .collect();
    if !breaches.is_empty() {
        out.push(ReportSpec {
            name: "exclusivity_breaches",
            title: "Exclusivity breaches",
            sql: format!(
                "SELECT * FROM ({}) ORDER BY rule, unit_id",
                breaches.join(" UNION ALL ")
            ),
        });
    }

    // 4. Inclusion errors, one row per program record and category.
    let cutoffs: Vec<String> = catalogue
        .programs
        .iter()
        .filter_map(|p| {
            p.max_decile.map(|d| {
                let decile = if p.unit == ProgramUnit::Person {
                    "coalesce(m.person_decile, m.family_decile)"
                } else {
                    "m.family_decile"
                };
                format!("(m.program = {} AND {decile} > {d})", quote(&p.code))
            })
        })
        .collect();
    let above = if cutoffs.is_empty() {
        "false".to_string()
    } else {
        cutoffs.join(" OR ")
    };
    out.push(ReportSpec {
        name: "inclusion_errors",
        title: "Inclusion errors",
        sql: format!(
            "WITH dead_families AS (SELECT DISTINCT pm.family_id FROM program_membership pm \
               JOIN person_view p ON pm.person_id = p.person_id WHERE NOT p.alive), \
             heirs AS (SELECT family_id, array_sort(array_agg(full_name)) AS heirs FROM person_view \
               WHERE alive AND family_id IN (SELECT family_id FROM dead_families) \
               GROUP BY family_id), \
             m AS (SELECT pm.*, p.alive, p.death_date, p.in_civil_registry, \
                 p.welfare_decile AS person_decile, f.welfare_decile AS family_decile, \
                 f.welfare_decile AS decile, f.regency_code, f.district_code, h.heirs \
               FROM program_membership pm JOIN person_view p ON pm.person_id = p.person_id \
               LEFT JOIN family f ON pm.family_id = f.family_id \
               LEFT JOIN heirs h ON pm.family_id = h.family_id), \
             registry_niks AS (SELECT DISTINCT nik FROM record_link \
               WHERE role = 'civil_registry' AND nik IS NOT NULL), \
             cases AS ( \
               SELECT m.*, 'dead' AS category, \
                 'recipient died ' || coalesce(CAST(m.death_date AS VARCHAR), '(date unknown)') \
                   || ' per the civil registry' AS evidence FROM m WHERE NOT m.alive \
               UNION ALL SELECT m.*, 'nik_invalid', 'listed NIK is ' || coalesce(m.listed_nik_status, 'missing') \
                 FROM m WHERE coalesce(m.listed_nik_status, 'missing') <> 'valid' \
               UNION ALL SELECT m.*, 'nik_unknown', 'listed NIK is not in the civil registry' FROM m \
                 WHERE m.listed_nik_status = 'valid' AND m.listed_nik NOT IN (SELECT nik FROM registry_niks) \
               UNION ALL SELECT m.*, 'not_in_welfare_registry', 'neither the person nor the family is in the welfare registry' \
                 FROM m WHERE m.person_decile IS NULL AND m.family_decile IS NULL \
               UNION ALL SELECT m.*, 'decile_above_cutoff', 'welfare decile ' || CAST(m.decile AS VARCHAR) \
                 || ' is above the program cut-off' FROM m WHERE {above}) \
             SELECT c.category, c.program, c.period, c.unit, c.person_id, c.family_id, c.source, \
               c.source_row, c.listed_name, {nik} AS listed_nik, c.evidence, \
               CASE WHEN c.category = 'dead' THEN c.heirs END AS heirs, \
               c.regency_code, c.district_code, c.village_code \
             FROM cases c \
             ORDER BY c.category, c.program, c.source, c.source_row",
            nik = mask("c.listed_nik"),
        ),
    });

    // 5. Exclusion errors and 7. coverage, per program with an eligibility rule.
    let mut exclusions = Vec::new();
    let mut coverage = Vec::new();
    for program in &catalogue.programs {
        let Some(rule) = &program.eligibility else {
            continue;
        };
        let (view, id) = view_of(program.unit);
        let code = quote(&program.code);
        let name = if view == "family_view" {
            "head_name"
        } else {
            "full_name"
        };
        exclusions.push(format!(
            "SELECT {code} AS program, {unit} AS unit, {id} AS unit_id, {name} AS name, \
               {kk} AS no_kk, welfare_decile, programs, cardinality({household}) = 0 AS receives_nothing, \
               regency_code, district_code, village_code FROM {view} \
             WHERE ({rule}) AND NOT array_has(programs, {code})",
            unit = quote(program.unit.as_str()),
            kk = mask("no_kk"),
            // Nothing for the person's whole family: a member of a PKH family receives PKH.
            household = if view == "person_view" { "family_programs" } else { "programs" },
        ));
        coverage.push(format!(
            "SELECT {code} AS program, regency_code, district_code, village_code, \
               sum(CASE WHEN array_has(programs, {code}) THEN 1 ELSE 0 END) AS recipients, \
               sum(CASE WHEN ({rule}) THEN 1 ELSE 0 END) AS eligible, \
               sum(CASE WHEN ({rule}) AND array_has(programs, {code}) THEN 1 ELSE 0 END) AS eligible_covered \
             FROM {view} GROUP BY 1, 2, 3, 4"
        ));
    }
    if !exclusions.is_empty() {
        out.push(ReportSpec {
            name: "exclusion_errors",
            title: "Exclusion errors",
            sql: format!(
                "SELECT e.*, region_name(e.village_code) AS village_name FROM ({}) e \
                 ORDER BY program, regency_code, district_code, village_code, unit_id",
                exclusions.join(" UNION ALL ")
            ),
        });
        out.push(ReportSpec {
            name: "coverage",
            title: "Coverage by village",
            sql: format!(
                "SELECT c.*, region_name(c.village_code) AS village_name, \
                   CASE WHEN eligible > 0 THEN CAST(eligible_covered AS DOUBLE) / eligible END AS coverage_rate, \
                   CASE WHEN recipients > 0 THEN CAST(recipients - eligible_covered AS DOUBLE) / recipients END AS ineligible_share \
                 FROM ({}) c ORDER BY program, regency_code, district_code, village_code",
                coverage.join(" UNION ALL ")
            ),
        });
    }

    // 6. Data quality per source.
    out.push(ReportSpec {
        name: "data_quality",
        title: "Data quality per source",
        sql: format!(
            "WITH r AS (SELECT l.source, l.nik, l.nik_status, p.in_civil_registry, l.person_id \
               FROM record_link l JOIN person p ON l.person_id = p.person_id), \
             dup AS (SELECT source, count(*) AS duplicated_niks FROM (SELECT source, nik FROM r \
               WHERE nik_status = 'valid' GROUP BY source, nik HAVING count(DISTINCT person_id) > 1) \
               GROUP BY source), \
             q AS (SELECT source, count(*) AS records, \
               sum(CASE WHEN nik_status = 'missing' THEN 1 ELSE 0 END) AS nik_missing, \
               sum(CASE WHEN nik_status = 'invalid' THEN 1 ELSE 0 END) AS nik_invalid, \
               sum(CASE WHEN nik_status = 'damaged' THEN 1 ELSE 0 END) AS nik_spreadsheet_damaged, \
               sum(CASE WHEN NOT in_civil_registry THEN 1 ELSE 0 END) AS unmatched_to_civil_registry \
               FROM r GROUP BY source), \
             flags AS ({flags}) \
             SELECT s.source, s.role, s.rows_read, s.rows_staged, s.rows_quarantined, \
               q.nik_missing, q.nik_invalid, q.nik_spreadsheet_damaged, q.unmatched_to_civil_registry, \
               coalesce(d.duplicated_niks, 0) AS duplicated_niks, f.placeholder_birth_dates, \
               f.birth_date_missing \
             FROM ingest_sources s LEFT JOIN q ON s.source = q.source \
               LEFT JOIN dup d ON s.source = d.source LEFT JOIN flags f ON s.source = f.source \
             ORDER BY s.source",
            flags = pipeline
                .sources
                .iter()
                .filter(|s| staged.contains(&s.name))
                .map(|s| format!(
                    "SELECT {name} AS source, \
                       sum(CASE WHEN array_has(quality_flags, 'birth_date_placeholder') THEN 1 ELSE 0 END) AS placeholder_birth_dates, \
                       sum(CASE WHEN array_has(quality_flags, 'birth_date_missing') THEN 1 ELSE 0 END) AS birth_date_missing \
                     FROM \"{table}\"",
                    name = quote(&s.name),
                    table = s.name
                ))
                .collect::<Vec<_>>()
                .join(" UNION ALL "),
        ),
    });
    out
}

/// Builds every report from the latest registry and publishes them as a new workspace
/// version. Returns the manifest and the directory of the files for people.
pub async fn build(
    pipeline: &Pipeline,
    options: &ReportOptions,
) -> Result<(ReportManifest, PathBuf), ReportError> {
    let workspace = Workspace::new(&pipeline.workspace);
    let run_id = new_run_id(chrono::Utc::now());
    let mut draft = workspace.store().begin("report", &run_id).await?;
    let built = build_in(&mut draft, pipeline, options).await?;
    draft.commit().await?;
    Ok(built)
}

/// Builds every report from the registry in `draft` and writes them into it.
pub async fn build_in(
    draft: &mut Draft,
    pipeline: &Pipeline,
    options: &ReportOptions,
) -> Result<(ReportManifest, PathBuf), ReportError> {
    let snapshot = draft.snapshot();
    crate::registry::read_meta(&snapshot)?;
    let version = draft.version().to_string();
    let session =
        Session::open_snapshot(&snapshot, datafusion::prelude::SessionConfig::new()).await?;
    let ctx = &session.ctx;
    let reference = pipeline
        .catalogue
        .reference_date
        .unwrap_or_else(|| crate::config::today(pipeline));
    register_views(ctx, reference).await?;
    if options.unmasked {
        tracing::warn!(pipeline = %pipeline.name, "Reports are written with unmasked NIK and KK numbers, as asked (--unmasked).");
    }
    let reference_text = reference.format("%Y-%m-%d").to_string();
    let mut results: Vec<(ReportSpec, RecordBatch)> = Vec::new();
    let staged: Vec<String> = session
        .manifest
        .sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for spec in specs(pipeline, &staged, !options.unmasked) {
        let query_error = |source| ReportError::Query {
            report: spec.name.to_string(),
            source,
        };
        let frame = ctx.sql(&spec.sql).await.map_err(query_error)?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|source| ReportError::Query {
            report: spec.name.to_string(),
            source,
        })?;
        let batch = concat_batches(&schema, &batches)?;
        tracing::info!(report = spec.name, rows = batch.num_rows(), "Report built.");
        results.push((spec, batch));
    }

    // Files for people go to files/v<N>/ of the version being written (begin() removed any
    // directory a killed run left under that number); tables go into the draft.
    let dir = draft.store().files_dir(draft.version());
    let write = |path: &Path, e: &dyn std::fmt::Display| ReportError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| write(&dir, &e))?;
    let written = write_reports(
        &dir,
        &results,
        pipeline,
        ctx,
        &version,
        &reference_text,
        options,
    )
    .await?;
    drop(session);
    for name in snapshot.tables_under("reports") {
        if !results.iter().any(|(spec, _)| spec.name == name) {
            draft.drop_table(&format!("reports/{name}"));
        }
    }
    for (spec, batch) in &results {
        draft
            .write_table(
                &format!("reports/{}", spec.name),
                &batch.schema(),
                std::slice::from_ref(batch),
            )
            .await?;
    }
    let manifest = ReportManifest {
        registry_version: version.clone(),
        reference_date: reference_text,
        masked: !options.unmasked,
        reports: written,
    };
    draft.set_document("reports", &manifest);
    draft.set_document("files_dir", &format!("files/v{}", draft.version()));
    Ok((manifest, dir))
}

/// Writes every report's files for people (CSV, the workbook, the page) into `dir`.
async fn write_reports(
    dir: &Path,
    results: &[(ReportSpec, RecordBatch)],
    pipeline: &Pipeline,
    ctx: &SessionContext,
    version: &str,
    reference_text: &str,
    options: &ReportOptions,
) -> Result<Vec<WrittenReport>, ReportError> {
    let write = |path: &Path, e: &dyn std::fmt::Display| ReportError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut written = Vec::new();
    for (spec, batch) in results {
        let csv = dir.join(format!("{}.csv", spec.name));
        write_csv(batch, &csv).map_err(|e| write(&csv, &e))?;
        written.push(WrittenReport {
            name: spec.name.to_string(),
            title: spec.title.to_string(),
            rows: batch.num_rows(),
        });
    }
    let workbook = dir.join("terpadu-reports.xlsx");
    let sheets: Vec<(&str, &RecordBatch)> = results.iter().map(|(s, b)| (s.title, b)).collect();
    xlsx::write_workbook(&workbook, &sheets).map_err(|e| write(&workbook, &e))?;
    let page = page(
        ctx,
        pipeline,
        version,
        reference_text,
        !options.unmasked,
        results,
    )
    .await?;
    let html_path = dir.join("terpadu-report.html");
    std::fs::write(&html_path, html::render(&page)).map_err(|e| write(&html_path, &e))?;
    Ok(written)
}

/// Rows of a query as text cells.
async fn text_rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<String>>, ReportError> {
    let batches = ctx
        .sql(sql)
        .await
        .map_err(|source| ReportError::Query {
            report: "html".into(),
            source,
        })?
        .collect()
        .await
        .map_err(|source| ReportError::Query {
            report: "html".into(),
            source,
        })?;
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| xlsx::cell_text(c, row))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

async fn first_rows(ctx: &SessionContext, sql: &str) -> Result<RecordBatch, ReportError> {
    let frame = ctx.sql(sql).await.map_err(|source| ReportError::Query {
        report: "html".into(),
        source,
    })?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(|source| ReportError::Query {
        report: "html".into(),
        source,
    })?;
    Ok(concat_batches(&schema, &batches)?)
}

/// What the HTML page shows, from the registry and the reports just built.
async fn page(
    ctx: &SessionContext,
    pipeline: &Pipeline,
    version: &str,
    reference: &str,
    masked: bool,
    results: &[(ReportSpec, RecordBatch)],
) -> Result<html::Page, ReportError> {
    for (spec, batch) in results {
        let name = format!("r_{}", spec.name);
        let _ = ctx.deregister_table(name.as_str());
        let table =
            datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch.clone()]])
                .map_err(|source| ReportError::Query {
                    report: "html".into(),
                    source,
                })?;
        ctx.register_table(name.as_str(), Arc::new(table))
            .map_err(|source| ReportError::Query {
                report: "html".into(),
                source,
            })?;
    }
    let has = |name: &str| results.iter().any(|(s, _)| s.name == name);
    let number = |rows: Vec<Vec<String>>| {
        rows.first()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default()
    };
    let mut figures = Vec::new();
    for (label, sql) in [
        ("persons in the registry", "SELECT count(*) FROM person"),
        ("families", "SELECT count(*) FROM family"),
        ("records linked", "SELECT count(*) FROM record_link"),
        ("program records", "SELECT count(*) FROM program_membership"),
        (
            "within-program duplicates",
            "SELECT count(*) FROM r_duplicates",
        ),
        (
            "dead recipients (people)",
            "SELECT count(DISTINCT person_id) FROM r_inclusion_errors WHERE category = 'dead'",
        ),
        (
            "inclusion-error rows",
            "SELECT count(*) FROM r_inclusion_errors",
        ),
    ] {
        figures.push((label.to_string(), number(text_rows(ctx, sql).await?)));
    }
    if has("exclusivity_breaches") {
        figures.push((
            "exclusivity breaches".into(),
            number(text_rows(ctx, "SELECT count(*) FROM r_exclusivity_breaches").await?),
        ));
    }
    if has("exclusion_errors") {
        figures.push((
            "eligible units receiving nothing".into(),
            number(
                text_rows(
                    ctx,
                    "SELECT count(DISTINCT unit_id) FROM r_exclusion_errors WHERE receives_nothing",
                )
                .await?,
            ),
        ));
    }
    let cells: Vec<(String, String, u64)> = text_rows(
        ctx,
        "SELECT program_a, program_b, sum(families) FROM r_overlap GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await?
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].parse().unwrap_or(0)))
    .collect();
    let mut programs: Vec<String> = cells.iter().map(|c| c.0.clone()).collect();
    programs.sort();
    programs.dedup();
    let combinations = text_rows(ctx, "SELECT combination, families FROM r_combinations ORDER BY families DESC, combination LIMIT 10")
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap_or(0)))
        .collect();
    let coverage = if has("coverage") {
        text_rows(
            ctx,
            "SELECT program, coalesce(region_name(regency_code), regency_code), sum(recipients),              sum(eligible), sum(eligible_covered) FROM r_coverage WHERE regency_code IS NOT NULL              GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await?
        .into_iter()
        .map(|r| {
            (
                r[0].clone(),
                r[1].clone(),
                r[2].parse().unwrap_or(0),
                r[3].parse().unwrap_or(0),
                r[4].parse().unwrap_or(0),
            )
        })
        .collect()
    } else {
        Vec::new()
    };
    let inclusion = text_rows(
        ctx,
        "SELECT category, program, count(*) FROM r_inclusion_errors GROUP BY 1, 2 ORDER BY 2, 1",
    )
    .await?
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].parse().unwrap_or(0)))
    .collect();
    let exclusion = if has("exclusion_errors") {
        text_rows(
            ctx,
            "SELECT program, count(*), sum(CASE WHEN receives_nothing THEN 1 ELSE 0 END)              FROM r_exclusion_errors GROUP BY 1 ORDER BY 1",
        )
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap_or(0), r[2].parse().unwrap_or(0)))
        .collect()
    } else {
        Vec::new()
    };
    const SHOWN: usize = 500;
    let mut tables = vec![(
        "Data quality per source".to_string(),
        "NIK problems, records no civil-registry record backs, duplicated NIKs, placeholder dates, quarantined rows.".to_string(),
        first_rows(ctx, "SELECT * FROM r_data_quality").await?,
    )];
    for (name, title, note, order) in [
        (
            "duplicates",
            "Within-program duplicates",
            "The same person, or family for family programs, listed more than once in one program and period.",
            "program, unit_id",
        ),
        (
            "exclusivity_breaches",
            "Exclusivity breaches",
            "Units breaking a declared rule.",
            "rule, unit_id",
        ),
        (
            "inclusion_errors",
            "Inclusion errors",
            "Recipients who should not receive, by category; the dead with the living heirs on their family card.",
            "category, program, source, source_row",
        ),
        (
            "exclusion_errors",
            "Exclusion errors",
            "Eligible by the program's rule and not receiving it; families receiving nothing first. The list a social worker would visit.",
            "receives_nothing DESC, program, regency_code, district_code, village_code, unit_id",
        ),
    ] {
        if !has(name) {
            continue;
        }
        let total = results
            .iter()
            .find(|(s, _)| s.name == name)
            .map_or(0, |(_, b)| b.num_rows());
        let note = if total > SHOWN {
            format!(
                "{note} The first {SHOWN} of {total} rows; the CSV, XLSX and `terpadu sql` (report_{name}) hold all."
            )
        } else {
            note.to_string()
        };
        tables.push((
            title.to_string(),
            note,
            first_rows(
                ctx,
                &format!("SELECT * FROM r_{name} ORDER BY {order} LIMIT {SHOWN}"),
            )
            .await?,
        ));
    }
    Ok(html::Page {
        pipeline: pipeline.name.clone(),
        version: version.to_string(),
        reference_date: reference.to_string(),
        masked,
        figures,
        overlap: (programs, cells),
        combinations,
        coverage,
        inclusion,
        exclusion,
        tables,
    })
}

/// A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or
/// carriage return first) gets a leading `'`, as OWASP advises against CSV injection: names
/// come from agency extracts, and program managers open these files in Excel.
pub fn neutralise_formula(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// CSV with list cells joined by `; ` (spreadsheet users open CSVs).
fn write_csv(batch: &RecordBatch, path: &Path) -> Result<(), String> {
    let mut writer = csv::Writer::from_path(path).map_err(|e| e.to_string())?;
    let schema = batch.schema();
    writer
        .write_record(schema.fields().iter().map(|f| f.name().as_str()))
        .map_err(|e| e.to_string())?;
    let text_columns: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| {
            matches!(
                f.data_type(),
                arrow::datatypes::DataType::Utf8
                    | arrow::datatypes::DataType::LargeUtf8
                    | arrow::datatypes::DataType::Utf8View
                    | arrow::datatypes::DataType::List(_)
                    | arrow::datatypes::DataType::Dictionary(_, _)
            )
        })
        .collect();
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = (0..batch.num_columns())
            .map(|c| {
                let cell = xlsx::cell_text(batch.column(c), row);
                if text_columns[c] {
                    neutralise_formula(cell)
                } else {
                    cell
                }
            })
            .collect();
        writer.write_record(&cells).map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())
}

/// The reports of a version, if it has them: the manifest and the directory of the files.
pub fn of_version(snapshot: &Snapshot) -> Option<(ReportManifest, PathBuf)> {
    let manifest: ReportManifest = snapshot.document("reports")?;
    let dir: String = snapshot.document("files_dir")?;
    Some((manifest, snapshot.store().root().join(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]));
        let names = [
            "=HYPERLINK(\"http://x\")",
            "=cmd|' /C calc'!A0",
            "+62 812",
            "-SITI",
            "@SUM(A1)",
            "\tTAB",
            "\rCR",
            "SITI AMINAH",
        ];
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(names.to_vec())),
                Arc::new(Float64Array::from(vec![-5.0; names.len()])),
            ],
        )
        .expect("batch");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.csv");
        write_csv(&batch, &path).expect("csv");
        let mut reader = csv::Reader::from_path(&path).expect("read back");
        let rows: Vec<(String, String)> = reader
            .records()
            .map(|r| {
                let r = r.expect("record");
                (r[0].to_string(), r[1].to_string())
            })
            .collect();
        assert_eq!(rows.len(), names.len());
        for ((cell, amount), name) in rows.iter().zip(names) {
            if name == "SITI AMINAH" {
                assert_eq!(cell, name);
            } else {
                assert_eq!(cell, &format!("'{name}"), "{name:?}");
            }
            assert_eq!(amount, "-5.0", "numbers are left alone");
        }
    }
}
