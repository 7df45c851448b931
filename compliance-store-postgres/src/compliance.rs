//! [`ComplianceStore`]: the snapshot apply (see `apply.rs`) and the dashboard's reads.

use async_trait::async_trait;
use compliance_core::domain::{
    ComplianceView, Dependency, DependencyCounts, DependencyQuery, IssueCategory, IssueQuery,
    IssueRecord, IssueStatus, LicenseCount, Page, PageRequest, ScanResult, Severity,
};
use compliance_core::ports::{ApplyOutcome, ComplianceStore, SnapshotApply};
use compliance_core::{ComponentId, StoreError};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::error::{corrupt, PgStoreError};
use crate::rows::{
    self, COMPONENT_COLUMNS, COUNT_COLUMNS, DEPENDENCY_COLUMNS, ISSUE_COLUMNS, SCAN_COLUMNS,
};
use crate::PgStore;

/// A page from rows carrying a `total_rows` window count, or from a separate count when the
/// page is empty.
async fn page_of<T>(
    rows: &[PgRow],
    page: PageRequest,
    map: impl Fn(&PgRow) -> Result<T, PgStoreError>,
    count: impl std::future::Future<Output = Result<i64, PgStoreError>>,
) -> Result<Page<T>, StoreError> {
    let total = match rows.first() {
        Some(row) => row.try_get::<i64, _>("total_rows").map_err(corrupt)?,
        None => count.await?,
    };
    Ok(Page {
        items: rows.iter().map(map).collect::<Result<_, _>>()?,
        total: rows::count64(total),
        offset: page.offset,
        limit: page.effective_limit(),
    })
}

#[async_trait]
impl ComplianceStore for PgStore {
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        let span = tracing::debug_span!(
            "apply_snapshot",
            sync_job_id = %apply.job_id,
            component_id = %apply.component_id,
            issues = apply.snapshot.issues.len(),
            dependencies = apply.snapshot.dependencies.len(),
        );
        let _entered = span.enter();
        let mut tx = self
            .shared
            .pool
            .begin()
            .await
            .map_err(PgStoreError::sqlx("starting a snapshot apply"))?;
        // On error the transaction is dropped, which rolls it back: nothing is half-applied.
        let outcome = crate::apply::apply_in(&mut tx, apply).await?;
        tx.commit()
            .await
            .map_err(PgStoreError::sqlx("committing a snapshot"))?;
        Ok(outcome)
    }

    async fn compliance_view(
        &self,
        component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS}, {COUNT_COLUMNS}, c.license_counts FROM components c \
             WHERE c.id = $1"
        ))
        .bind(component.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading a compliance view"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let latest = sqlx::query(&format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results WHERE component_id = $1 \
             ORDER BY synced_at DESC, id DESC LIMIT 1"
        ))
        .bind(component.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading the latest scan"))?;

        let total: i32 = row.try_get("dependencies_total").map_err(corrupt)?;
        let direct: i32 = row.try_get("dependencies_direct").map_err(corrupt)?;
        let (total, direct) = (
            u64::from(rows::count(total)),
            u64::from(rows::count(direct)),
        );
        let licenses: sqlx::types::Json<Vec<(Option<String>, u64)>> =
            row.try_get("license_counts").map_err(corrupt)?;
        Ok(Some(ComplianceView {
            component: rows::component(&row)?,
            latest_scan: latest.as_ref().map(rows::scan_result).transpose()?,
            issues: rows::issue_counts(&row)?,
            dependencies: DependencyCounts {
                total,
                direct,
                transitive: total.saturating_sub(direct),
            },
            licenses: licenses
                .0
                .into_iter()
                .map(|(license, count)| LicenseCount { license, count })
                .collect(),
        }))
    }

    async fn list_scans(
        &self,
        component: ComponentId,
        page: PageRequest,
    ) -> Result<Page<ScanResult>, StoreError> {
        let found = sqlx::query(&format!(
            "SELECT {SCAN_COLUMNS}, count(*) OVER () AS total_rows FROM scan_results \
             WHERE component_id = $1 ORDER BY synced_at DESC, id DESC OFFSET $2 LIMIT $3"
        ))
        .bind(component.as_uuid())
        .bind(i64::from(page.offset))
        .bind(i64::from(page.effective_limit()))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing scans"))?;
        let count = async {
            sqlx::query_scalar("SELECT count(*) FROM scan_results WHERE component_id = $1")
                .bind(component.as_uuid())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting scans"))
        };
        page_of(&found, page, rows::scan_result, count).await
    }

    async fn list_issues(
        &self,
        component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError> {
        let filter = "i.component_id = $1 \
             AND ($2::text IS NULL OR i.status = $2) \
             AND ($3::text IS NULL OR i.category = $3) \
             AND ($4::text IS NULL OR i.severity = $4) \
             AND ($5::text IS NULL OR strpos(lower(i.title COLLATE \"default\"), lower($5)) > 0 \
                  OR strpos(lower(i.package_name COLLATE \"default\"), lower($5)) > 0)";
        let status = query.status.map(IssueStatus::as_str);
        let category = query.category.map(IssueCategory::as_str);
        let severity = query.severity.map(Severity::as_str);
        let found = sqlx::query(&format!(
            "SELECT {ISSUE_COLUMNS}, count(*) OVER () AS total_rows \
             FROM issues i JOIN components c ON c.id = i.component_id WHERE {filter} \
             ORDER BY i.severity_rank, i.category_rank, i.fossa_id OFFSET $6 LIMIT $7"
        ))
        .bind(component.as_uuid())
        .bind(status)
        .bind(category)
        .bind(severity)
        .bind(query.search.as_deref())
        .bind(i64::from(query.page.offset))
        .bind(i64::from(query.page.effective_limit()))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing issues"))?;
        let count = async {
            sqlx::query_scalar(&format!("SELECT count(*) FROM issues i WHERE {filter}"))
                .bind(component.as_uuid())
                .bind(status)
                .bind(category)
                .bind(severity)
                .bind(query.search.as_deref())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting issues"))
        };
        page_of(&found, query.page, rows::issue_record, count).await
    }

    async fn list_dependencies(
        &self,
        component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError> {
        let filter = "component_id = $1 \
             AND ($2::bool IS NULL OR is_direct = $2) \
             AND ($3::text IS NULL OR licenses @> jsonb_build_array($3::text)) \
             AND ($4::text IS NULL OR strpos(lower(name COLLATE \"default\"), lower($4)) > 0)";
        let found = sqlx::query(&format!(
            "SELECT {DEPENDENCY_COLUMNS}, count(*) OVER () AS total_rows FROM dependencies \
             WHERE {filter} ORDER BY name, locator OFFSET $5 LIMIT $6"
        ))
        .bind(component.as_uuid())
        .bind(query.direct)
        .bind(query.license.as_deref())
        .bind(query.search.as_deref())
        .bind(i64::from(query.page.offset))
        .bind(i64::from(query.page.effective_limit()))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing dependencies"))?;
        let count = async {
            sqlx::query_scalar(&format!("SELECT count(*) FROM dependencies WHERE {filter}"))
                .bind(component.as_uuid())
                .bind(query.direct)
                .bind(query.license.as_deref())
                .bind(query.search.as_deref())
                .fetch_one(&self.shared.pool)
                .await
                .map_err(PgStoreError::sqlx("counting dependencies"))
        };
        page_of(&found, query.page, rows::dependency, count).await
    }
}
