//! [`ComponentDirectory`] on SQLite.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use compliance_core::domain::{Component, ComponentQuery, ComponentSummary, NewComponent, Page};
use compliance_core::ports::ComponentDirectory;
use compliance_core::{ComponentId, RepoUrl, StoreError, Timestamp};

use crate::error::{kind, store_error, Kind};
use crate::rows::{self, bound, fold, ts, COMPONENT_COLUMNS, SUMMARY_COLUMNS};
use crate::sql::limit_offset;
use crate::writer::Wake;
use crate::SqliteStore;

#[async_trait]
impl ComponentDirectory for SqliteStore {
    async fn register(&self, new: NewComponent, now: Timestamp) -> Result<Component, StoreError> {
        let component = new.into_component(now);
        let created_at = ts(component.created_at)?;
        let row = component.clone();
        self.inner
            .writer
            .write(Wake::Nobody, move |conn| {
                Box::pin(async move {
                    let inserted = sqlx::query(
                        "INSERT INTO components (id, name, name_folded, repository_url, \
                         repository_key, fossa_locator, default_branch, created_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(row.id.as_uuid())
                    .bind(row.name.as_str())
                    .bind(fold(&row.name))
                    .bind(row.repository_url.as_str())
                    .bind(row.repository_key.as_str())
                    .bind(row.fossa_locator.as_str())
                    .bind(row.default_branch.as_str())
                    .bind(created_at)
                    .execute(&mut *conn)
                    .await;
                    match inserted {
                        Ok(_) => Ok(()),
                        Err(e) if kind(&e) == Kind::Conflict => Err(StoreError::conflict(format!(
                            "repository {} is already registered",
                            row.repository_key
                        ))),
                        Err(e) => Err(store_error("register component", e)),
                    }
                })
            })
            .await?;
        Ok(component)
    }

    async fn get(&self, id: ComponentId) -> Result<Option<Component>, StoreError> {
        let mut conn = self.reader().await?;
        let row = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS} FROM components c WHERE c.id = ?"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("get component", e))?;
        row.as_ref().map(rows::component).transpose()
    }

    async fn find_by_repository(&self, url: &RepoUrl) -> Result<Option<Component>, StoreError> {
        let mut conn = self.reader().await?;
        let row = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS} FROM components c WHERE c.repository_key = ?"
        ))
        .bind(url.key())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("find component by repository", e))?;
        row.as_ref().map(rows::component).transpose()
    }

    async fn list(&self, query: &ComponentQuery) -> Result<Page<ComponentSummary>, StoreError> {
        let filter = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE 1 = 1");
            if let Some(status) = query.status {
                qb.push(" AND c.compliance_status = ")
                    .push_bind(status.as_str());
            }
            if let Some(text) = &query.search {
                qb.push(" AND instr(c.name_folded, ")
                    .push_bind(fold(text))
                    .push(") > 0");
            }
        };
        let (limit, offset) = limit_offset(query.page);

        let mut count = QueryBuilder::new("SELECT count(*) FROM components c");
        filter(&mut count);
        let mut items = QueryBuilder::new(format!("SELECT {SUMMARY_COLUMNS} FROM components c"));
        filter(&mut items);
        items
            .push(" ORDER BY c.name, c.id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);

        let mut read = self.snapshot().await?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(read.conn())
            .await
            .map_err(|e| store_error("count components", e))?;
        let found = items
            .build()
            .fetch_all(read.conn())
            .await
            .map_err(|e| store_error("list components", e))?;
        read.finish().await;

        Ok(Page {
            items: rows::all(&found, rows::summary)?,
            total: u64::try_from(total).unwrap_or(0),
            offset: query.page.offset,
            limit: query.page.effective_limit(),
        })
    }

    async fn stale(&self, before: Timestamp, limit: u32) -> Result<Vec<Component>, StoreError> {
        let mut conn = self.reader().await?;
        // NULL sorts first: components that never synced come first.
        let found = sqlx::query(&format!(
            "SELECT {COMPONENT_COLUMNS} FROM components c \
             WHERE c.last_synced_at IS NULL OR c.last_synced_at < ? \
             ORDER BY c.last_synced_at, c.id LIMIT ?"
        ))
        .bind(bound(before))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| store_error("list stale components", e))?;
        rows::all(&found, rows::component)
    }
}
