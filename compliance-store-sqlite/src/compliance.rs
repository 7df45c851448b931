//! [`ComplianceStore`] on SQLite: the apply (in [`crate::apply`]) and the dashboard's reads.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use compliance_core::domain::{
    ComplianceView, Dependency, DependencyCounts, DependencyQuery, IssueQuery, IssueRecord,
    LicenseCount, Page, PageRequest, ScanResult,
};
use compliance_core::ports::{ApplyOutcome, ComplianceStore, SnapshotApply};
use compliance_core::{ComponentId, StoreError};

use crate::error::store_error;
use crate::rows::{
    self, category_code, fold, get, get_u64, severity_code, DEPENDENCY_COLUMNS, ISSUE_COLUMNS,
    SCAN_COLUMNS, SUMMARY_COLUMNS,
};
use crate::sql::limit_offset;
use crate::writer::Wake;
use crate::SqliteStore;

#[async_trait]
impl ComplianceStore for SqliteStore {
    async fn apply_snapshot(&self, apply: SnapshotApply) -> Result<ApplyOutcome, StoreError> {
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(crate::apply::apply_snapshot(conn, apply))
            })
            .await
    }

    async fn compliance_view(
        &self,
        component: ComponentId,
    ) -> Result<Option<ComplianceView>, StoreError> {
        let mut read = self.snapshot().await?;
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS}, {SCAN_COLUMNS} FROM components c \
             LEFT JOIN scan_results s ON s.id = (SELECT id FROM scan_results \
                 WHERE component_id = c.id ORDER BY synced_at DESC, id DESC LIMIT 1) \
             WHERE c.id = ?"
        ))
        .bind(component.as_uuid())
        .fetch_optional(read.conn())
        .await
        .map_err(|e| store_error("read compliance view", e))?;
        let Some(row) = row else {
            read.finish().await;
            return Ok(None);
        };
        let licenses = sqlx::query(
            "SELECT license, count FROM component_licenses WHERE component_id = ? \
             ORDER BY count DESC, license IS NULL, license",
        )
        .bind(component.as_uuid())
        .fetch_all(read.conn())
        .await
        .map_err(|e| store_error("read license breakdown", e))?;
        read.finish().await;

        let total = get_u64(&row, "dependencies_total")?;
        let direct = get_u64(&row, "dependencies_direct")?;
        Ok(Some(ComplianceView {
            component: rows::component(&row)?,
            latest_scan: rows::scan(&row)?,
            issues: rows::issue_counts(&row)?,
            dependencies: DependencyCounts {
                total,
                direct,
                transitive: total.saturating_sub(direct),
            },
            licenses: licenses
                .iter()
                .map(|l| {
                    Ok(LicenseCount {
                        license: get(l, "license")?,
                        count: get_u64(l, "count")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        }))
    }

    async fn list_scans(
        &self,
        component: ComponentId,
        page: PageRequest,
    ) -> Result<Page<ScanResult>, StoreError> {
        let (limit, offset) = limit_offset(page);
        let mut read = self.snapshot().await?;
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM scan_results WHERE component_id = ?")
                .bind(component.as_uuid())
                .fetch_one(read.conn())
                .await
                .map_err(|e| store_error("count scans", e))?;
        let found = sqlx::query(&format!(
            "SELECT {SCAN_COLUMNS} FROM scan_results s WHERE s.component_id = ? \
             ORDER BY s.synced_at DESC, s.id DESC LIMIT ? OFFSET ?"
        ))
        .bind(component.as_uuid())
        .bind(limit)
        .bind(offset)
        .fetch_all(read.conn())
        .await
        .map_err(|e| store_error("list scans", e))?;
        read.finish().await;

        let mut items = Vec::with_capacity(found.len());
        for row in &found {
            if let Some(scan) = rows::scan(row)? {
                items.push(scan);
            }
        }
        Ok(Page {
            items,
            total: u64::try_from(total).unwrap_or(0),
            offset: page.offset,
            limit: page.effective_limit(),
        })
    }

    async fn list_issues(
        &self,
        component: ComponentId,
        query: &IssueQuery,
    ) -> Result<Page<IssueRecord>, StoreError> {
        let filter = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE component_id = ")
                .push_bind(component.as_uuid());
            if let Some(status) = query.status {
                qb.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(category) = query.category {
                qb.push(" AND category = ")
                    .push_bind(category_code(category));
            }
            if let Some(severity) = query.severity {
                qb.push(" AND severity = ")
                    .push_bind(severity_code(severity));
            }
            if let Some(text) = &query.search {
                let text = fold(text);
                qb.push(" AND (instr(title_folded, ")
                    .push_bind(text.clone())
                    .push(") > 0 OR instr(package_folded, ")
                    .push_bind(text)
                    .push(") > 0)");
            }
        };
        let (limit, offset) = limit_offset(query.page);

        let mut count = QueryBuilder::new("SELECT count(*) FROM issues");
        filter(&mut count);
        let mut items = QueryBuilder::new(format!("SELECT {ISSUE_COLUMNS} FROM issues"));
        filter(&mut items);
        items
            .push(" ORDER BY severity, category, fossa_id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);

        let mut read = self.snapshot().await?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(read.conn())
            .await
            .map_err(|e| store_error("count issues", e))?;
        let found = items
            .build()
            .fetch_all(read.conn())
            .await
            .map_err(|e| store_error("list issues", e))?;
        read.finish().await;

        Ok(Page {
            items: rows::all(&found, rows::issue)?,
            total: u64::try_from(total).unwrap_or(0),
            offset: query.page.offset,
            limit: query.page.effective_limit(),
        })
    }

    async fn list_dependencies(
        &self,
        component: ComponentId,
        query: &DependencyQuery,
    ) -> Result<Page<Dependency>, StoreError> {
        let filter = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE component_id = ")
                .push_bind(component.as_uuid());
            if let Some(direct) = query.direct {
                qb.push(" AND is_direct = ").push_bind(direct);
            }
            if let Some(license) = &query.license {
                qb.push(" AND EXISTS (SELECT 1 FROM json_each(licenses) WHERE value = ")
                    .push_bind(license.clone())
                    .push(")");
            }
            if let Some(text) = &query.search {
                qb.push(" AND instr(name_folded, ")
                    .push_bind(fold(text))
                    .push(") > 0");
            }
        };
        let (limit, offset) = limit_offset(query.page);

        let mut count = QueryBuilder::new("SELECT count(*) FROM dependencies");
        filter(&mut count);
        let mut items = QueryBuilder::new(format!("SELECT {DEPENDENCY_COLUMNS} FROM dependencies"));
        filter(&mut items);
        items
            .push(" ORDER BY name, locator LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);

        let mut read = self.snapshot().await?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(read.conn())
            .await
            .map_err(|e| store_error("count dependencies", e))?;
        let found = items
            .build()
            .fetch_all(read.conn())
            .await
            .map_err(|e| store_error("list dependencies", e))?;
        read.finish().await;

        Ok(Page {
            items: rows::all(&found, rows::dependency)?,
            total: u64::try_from(total).unwrap_or(0),
            offset: query.page.offset,
            limit: query.page.effective_limit(),
        })
    }
}
