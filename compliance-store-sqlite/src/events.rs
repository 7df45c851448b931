//! [`WebhookEventLog`] on SQLite.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::oneshot;

use compliance_core::domain::{Page, WebhookEvent, WebhookEventQuery};
use compliance_core::ports::{AcceptRecord, AcceptedWebhook, PriorDelivery, WebhookEventLog};
use compliance_core::{StoreError, Timestamp, WebhookEventId};

use crate::error::{closed, store_error};
use crate::ingest::{bound_payload, prior_delivery, AcceptItem, RejectItem};
use crate::rows::{self, bound, EVENT_COLUMNS};
use crate::sql::limit_offset;
use crate::store::PRUNE_SLICE;
use crate::writer::{Request, Wake};
use crate::SqliteStore;

#[async_trait]
impl WebhookEventLog for SqliteStore {
    /// Group-committed with other writes; durable to the store's
    /// [`Durability`](crate::Durability) when it returns.
    async fn record_accepted(&self, accepted: AcceptedWebhook) -> Result<AcceptRecord, StoreError> {
        let (reply, answer) = oneshot::channel();
        let item = AcceptItem {
            event: Some(accepted.event),
            job: accepted.job,
            placement: accepted.placement,
            now: self.now(),
            reply,
        };
        self.inner.writer.send(Request::Accept(item)).await?;
        answer.await.map_err(|_| closed())?
    }

    /// The payload is cut to the configured
    /// [`rejected_payload_limit`](crate::SqliteConfig::rejected_payload_limit) and marked
    /// truncated.
    async fn record_rejected(&self, mut event: WebhookEvent) -> Result<(), StoreError> {
        bound_payload(&mut event, self.inner.config.rejected_payload_limit);
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Request::Reject(RejectItem { event, reply }))
            .await?;
        answer.await.map_err(|_| closed())?
    }

    async fn find_delivery(
        &self,
        delivery_key: &str,
        since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError> {
        let mut conn = self.reader().await?;
        let row = sqlx::query(
            "SELECT delivery_key, id, sync_job_id, component_id, received_at \
             FROM webhook_events \
             WHERE accepted = 1 AND delivery_key = ? AND received_at >= ?",
        )
        .bind(delivery_key)
        .bind(bound(since))
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("find delivery", e))?;
        Ok(row
            .as_ref()
            .and_then(prior_delivery)
            .map(|(_, prior)| prior))
    }

    async fn get_event(&self, id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
        let mut conn = self.reader().await?;
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = ?"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("get webhook event", e))?;
        row.as_ref().map(rows::event).transpose()
    }

    async fn list_events(
        &self,
        query: &WebhookEventQuery,
    ) -> Result<Page<WebhookEvent>, StoreError> {
        let filter = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE 1 = 1");
            if let Some(status) = query.status {
                qb.push(" AND processing_status = ")
                    .push_bind(status.as_str());
            }
            if let Some(component) = query.component_id {
                qb.push(" AND component_id = ")
                    .push_bind(component.as_uuid());
            }
            if let Some(from) = query.from {
                qb.push(" AND received_at >= ").push_bind(bound(from));
            }
            if let Some(to) = query.to {
                qb.push(" AND received_at < ").push_bind(bound(to));
            }
        };
        let (limit, offset) = limit_offset(query.page);

        let mut count = QueryBuilder::new("SELECT count(*) FROM webhook_events");
        filter(&mut count);
        let mut items = QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM webhook_events"));
        filter(&mut items);
        items
            .push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);

        let mut read = self.snapshot().await?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(read.conn())
            .await
            .map_err(|e| store_error("count webhook events", e))?;
        let found = items
            .build()
            .fetch_all(read.conn())
            .await
            .map_err(|e| store_error("list webhook events", e))?;
        read.finish().await;

        Ok(Page {
            items: rows::all(&found, rows::event)?,
            total: u64::try_from(total).unwrap_or(0),
            offset: query.page.offset,
            limit: query.page.effective_limit(),
        })
    }

    /// Deletes in slices of 5 000 rows, one group commit each, so that a large prune never
    /// holds the writer for long.
    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        let before = bound(before);
        let mut total = 0;
        loop {
            let deleted = self
                .inner
                .writer
                .write(Wake::Nobody, move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "DELETE FROM webhook_events WHERE id IN \
                             (SELECT id FROM webhook_events WHERE received_at < ? LIMIT ?)",
                        )
                        .bind(before)
                        .bind(PRUNE_SLICE)
                        .execute(&mut *conn)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(|e| store_error("prune webhook events", e))
                    })
                })
                .await?;
            total += deleted;
            if deleted < PRUNE_SLICE.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}
