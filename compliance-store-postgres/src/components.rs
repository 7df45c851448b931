//! [`ComponentDirectory`] on the `components` table.

use async_trait::async_trait;
use compliance_core::domain::{
    ComplianceStatus, Component, ComponentQuery, ComponentSummary, NewComponent, Page,
};
use compliance_core::ports::ComponentDirectory;
use compliance_core::{ComponentId, RepoUrl, StoreError, Timestamp};

use crate::error::PgStoreError;
use crate::rows::{self, micros, COMPONENT_COLUMNS, COUNT_COLUMNS};
use crate::PgStore;

#[async_trait]
impl ComponentDirectory for PgStore {
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError> {
        let component = new.into_component(micros(now));
        let result = sqlx::query(
            "INSERT INTO components (id, name, repository_url, repository_key, fossa_locator, \
             default_branch, compliance_status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(component.id.as_uuid())
        .bind(&component.name)
        .bind(&component.repository_url)
        .bind(&component.repository_key)
        .bind(&component.fossa_locator)
        .bind(&component.default_branch)
        .bind(component.compliance_status.as_str())
        .bind(component.created_at)
        .execute(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("registering a component"));

        match result {
            Ok(_) => Ok(component),
            Err(err) if err.unique_violation().is_some() => Err(StoreError::conflict(format!(
                "repository {} is already registered",
                component.repository_key
            ))),
            Err(err) => Err(err.into()),
        }
    }

    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS} FROM components c WHERE c.id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading a component"))?;
        Ok(row.as_ref().map(rows::component).transpose()?)
    }

    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS} FROM components c WHERE c.repository_key = $1"
        ))
        .bind(url.key())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("finding a component by repository"))?;
        Ok(row.as_ref().map(rows::component).transpose()?)
    }

    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError> {
        let limit = query.page.effective_limit();
        let filter = "($1::text IS NULL OR c.compliance_status = $1) \
             AND ($2::text IS NULL OR strpos(lower(c.name COLLATE \"default\"), lower($2)) > 0)";
        let rows = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS}, {COUNT_COLUMNS}, count(*) OVER () AS total_rows \
             FROM components c WHERE {filter} ORDER BY c.name, c.id OFFSET $3 LIMIT $4"
        ))
        .bind(query.status.map(ComplianceStatus::as_str))
        .bind(query.search.as_deref())
        .bind(i64::from(query.page.offset))
        .bind(i64::from(limit))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing components"))?;

        let total = match rows.first() {
            Some(row) => rows::count64(
                sqlx::Row::try_get(row, "total_rows")
                    .map_err(|e| PgStoreError::Corrupt(format!("column total_rows: {e}")))?,
            ),
            // An offset past the end returns no row to carry the total: count separately.
            None => rows::count64(
                sqlx::query_scalar(&format!("SELECT count(*) FROM components c WHERE {filter}"))
                    .bind(query.status.map(ComplianceStatus::as_str))
                    .bind(query.search.as_deref())
                    .fetch_one(&self.shared.pool)
                    .await
                    .map_err(PgStoreError::sqlx("counting components"))?,
            ),
        };
        let items = rows
            .iter()
            .map(|row| {
                let dependencies: i32 = sqlx::Row::try_get(row, "dependencies_total")
                    .map_err(|e| PgStoreError::Corrupt(format!("dependencies_total: {e}")))?;
                Ok(ComponentSummary {
                    component: rows::component(row)?,
                    issues: rows::issue_counts(row)?,
                    dependency_count: u64::from(rows::count(dependencies)),
                })
            })
            .collect::<Result<Vec<_>, PgStoreError>>()?;
        Ok(Page {
            items,
            total,
            offset: query.page.offset,
            limit,
        })
    }

    async fn stale(&self, before: Timestamp, limit: u32) -> Result<Vec<Component>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS} FROM components c \
             WHERE c.last_synced_at IS NULL OR c.last_synced_at < $1 \
             ORDER BY c.last_synced_at NULLS FIRST, c.id LIMIT $2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing components due for a sync"))?;
        Ok(rows.iter().map(rows::component).collect::<Result<_, _>>()?)
    }
}
