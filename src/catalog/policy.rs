//! Who may see what: a role's catalog of views over one pinned version.
//!
//! A role never reaches a raw table. Its catalog holds only views, each a plan built in a
//! private session over the raw tables, with masking functions in the projection and the
//! region scope as a filter. The views are inlined into the caller's query, so masking and
//! scope hold through joins, subqueries, aggregates and `information_schema`, and a filter on
//! a masked column compares masked values (no lookup by a full NIK).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::sql::{Session, SqlError, TableInfo};
use crate::store::Snapshot;

/// Groups of tables a role may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableGroup {
    /// person, family, record_link, program_membership, registry_changes, match_pairs.
    Registry,
    /// report_<name>.
    Reports,
    /// The staged rows of each source, the quarantine and `ingest_sources`.
    Staged,
    /// The run ledger: `runs`, `run_stages`.
    Operations,
    /// The server's statement log, `audit_log`.
    Audit,
}

impl TableGroup {
    /// The group named `text` in a server config (`registry`, `reports`, `staged`,
    /// `operations`, `audit`).
    pub fn parse(text: &str) -> Option<TableGroup> {
        Some(match text {
            "registry" => TableGroup::Registry,
            "reports" => TableGroup::Reports,
            "staged" => TableGroup::Staged,
            "operations" => TableGroup::Operations,
            "audit" => TableGroup::Audit,
            _ => return None,
        })
    }

    /// The group of table `name` of a session.
    pub fn of(name: &str) -> TableGroup {
        if crate::workspace::REGISTRY_TABLES
            .iter()
            .any(|(table, _)| *table == name)
        {
            TableGroup::Registry
        } else if name.starts_with("report_") {
            TableGroup::Reports
        } else if name == "runs" || name == "run_stages" {
            TableGroup::Operations
        } else if name == "audit_log" {
            TableGroup::Audit
        } else {
            TableGroup::Staged
        }
    }
}

/// A region scope: a province (2 digits), regency (kabupaten/kota, 4), district
/// (kecamatan, 6) or village (desa/kelurahan, 10) code, without dots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionScope(String);

impl RegionScope {
    /// Parses `36.02` or `3602`; the code must be in the Kemendagri index.
    pub fn parse(text: &str) -> Result<RegionScope, String> {
        let code = crate::normalize::region::undot(text.trim());
        if !matches!(code.len(), 2 | 4 | 6 | 10) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "scope '{}' is not a region code: use a province (36), regency (3602), district (360201) or village (3602012001) code",
                crate::redact::escape_controls(text)
            ));
        }
        if crate::normalize::region::region_index()
            .get(&code)
            .is_none()
        {
            return Err(format!(
                "scope '{code}' is not in the Kemendagri region index shipped with terpadu"
            ));
        }
        Ok(RegionScope(code))
    }

    /// The undotted code.
    pub fn code(&self) -> &str {
        &self.0
    }

    /// The region's name (`Kabupaten Lebak`).
    pub fn name(&self) -> String {
        crate::normalize::region::region_index()
            .get(&self.0)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    }
}

/// What one role (with its scope) may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    /// The role's name, for messages and the audit log.
    pub role: String,
    /// The table groups it may query.
    pub groups: BTreeSet<TableGroup>,
    /// Whether NIK, KK and free-text identifiers are shown unmasked.
    pub unmasked: bool,
    /// Only rows of this region, if set.
    pub scope: Option<RegionScope>,
}

/// Columns holding one NIK or KK (or a piece of one).
const ID_COLUMNS: &[&str] = &[
    "nik",
    "nik_raw",
    "nik_known_prefix",
    "no_kk",
    "no_kk_raw",
    "listed_nik",
    "listed_no_kk",
];
/// Columns holding lists of NIKs or KKs.
const ID_LIST_COLUMNS: &[&str] = &["kk_numbers", "listed_niks"];
/// Free-text columns that may quote an identifier (a raw row, an address, a remark).
const TEXT_COLUMNS: &[&str] = &[
    "raw", "address", "remark", "evidence", "error", "notes", "reason",
];
/// Region columns, most specific first; codes are prefixes of each other.
const REGION_COLUMNS: &[&str] = &[
    "village_code",
    "district_code",
    "regency_code",
    "province_code",
];

/// How a masked role sees column `name` (`None`: as it is).
fn masking(name: &str) -> Option<&'static str> {
    if ID_COLUMNS.contains(&name) {
        Some("mask_id")
    } else if ID_LIST_COLUMNS.contains(&name) {
        Some("mask_id_list")
    } else if TEXT_COLUMNS.contains(&name) || name.starts_with("extra_") {
        Some("mask_text")
    } else {
        None
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A role's catalog over one pinned version: views only.
pub struct RoleCatalog {
    ctx: SessionContext,
    tables: Vec<TableInfo>,
    version: u64,
    policy: Policy,
}

impl RoleCatalog {
    /// Builds `policy`'s views over `snapshot`. `extra` tables (such as the server's audit
    /// log) are offered to roles whose groups include theirs.
    pub async fn build(
        snapshot: &Snapshot,
        policy: &Policy,
        extra: Vec<(TableInfo, Arc<dyn TableProvider>)>,
    ) -> Result<RoleCatalog, SqlError> {
        let private = Session::open_snapshot(snapshot, SessionConfig::new()).await?;
        for (info, provider) in &extra {
            private
                .ctx
                .register_table(info.name.as_str(), provider.clone())?;
        }
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("terpadu", "public");
        let ctx = SessionContext::new_with_config(config);
        for udf in crate::normalize::udf::all() {
            ctx.register_udf(udf);
        }
        let mut tables = Vec::new();
        let candidates = private
            .tables
            .iter()
            .cloned()
            .chain(extra.into_iter().map(|(info, _)| info));
        for info in candidates {
            if !policy.groups.contains(&TableGroup::of(&info.name)) {
                continue;
            }
            let provider = private.ctx.table_provider(info.name.as_str()).await?;
            let schema = provider.schema();
            let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let filter = match &policy.scope {
                None => Some(String::new()),
                Some(scope) => scope_filter(&info.name, &columns, scope),
            };
            let Some(filter) = filter else {
                // Nothing in it says where a row belongs: invisible to a scoped role.
                continue;
            };
            let projection = columns
                .iter()
                .map(|c| match masking(c).filter(|_| !policy.unmasked) {
                    Some(function) => format!("{function}({q}) AS {q}", q = quote(c)),
                    None => quote(c),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT {projection} FROM {}{filter}", quote(&info.name));
            let plan = private.ctx.sql(&sql).await?.into_unoptimized_plan();
            ctx.register_table(info.name.as_str(), Arc::new(ViewTable::new(plan, None)))?;
            tables.push(info);
        }
        Ok(RoleCatalog {
            ctx,
            tables,
            version: snapshot.version(),
            policy: policy.clone(),
        })
    }

    /// The role's context: views and functions only. Plan through [`crate::catalog`]'s
    /// read-only checks, never directly.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The views, for listings.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// The pinned workspace version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The policy the views were built for.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// The `WHERE` clause that keeps `scope`'s rows of table `name`, or `None` when the table
/// cannot be scoped.
fn scope_filter(name: &str, columns: &[&str], scope: &RegionScope) -> Option<String> {
    let code = scope.code();
    let present: Vec<String> = REGION_COLUMNS
        .iter()
        .filter(|c| columns.contains(c))
        .map(|c| quote(c))
        .collect();
    if !present.is_empty() {
        // The most specific known code decides; a row without any is outside every scope.
        return Some(format!(
            " WHERE starts_with(coalesce({}), '{code}')",
            present.join(", ")
        ));
    }
    if name == "record_link" && columns.contains(&"person_id") {
        let person = REGION_COLUMNS
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        return Some(format!(
            " WHERE person_id IN (SELECT person_id FROM person WHERE starts_with(coalesce({person}), '{code}'))"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_region_codes_from_the_index() {
        assert_eq!(RegionScope::parse("36.02").unwrap().code(), "3602");
        assert!(RegionScope::parse("3602").unwrap().name().contains("Lebak"));
        assert!(RegionScope::parse("99").unwrap_err().contains("not in"));
        assert!(
            RegionScope::parse("360")
                .unwrap_err()
                .contains("not a region")
        );
        assert!(RegionScope::parse("36'; --").is_err());
    }

    #[test]
    fn masking_covers_identifier_and_text_columns() {
        assert_eq!(masking("nik"), Some("mask_id"));
        assert_eq!(masking("listed_niks"), Some("mask_id_list"));
        assert_eq!(masking("extra_no_kartu"), Some("mask_text"));
        assert_eq!(masking("full_name"), None);
        assert_eq!(TableGroup::of("report_overlap"), TableGroup::Reports);
        assert_eq!(TableGroup::of("person"), TableGroup::Registry);
        assert_eq!(TableGroup::of("pkh"), TableGroup::Staged);
    }

    #[test]
    fn tables_without_regions_are_not_scoped() {
        let scope = RegionScope::parse("3602").unwrap();
        assert!(scope_filter("match_pairs", &["left_rid", "right_rid"], &scope).is_none());
        let person = scope_filter(
            "person",
            &["person_id", "regency_code", "village_code"],
            &scope,
        )
        .unwrap();
        assert!(person.contains("coalesce(\"village_code\", \"regency_code\")"));
        assert!(scope_filter("record_link", &["rid", "person_id"], &scope).is_some());
    }
}
