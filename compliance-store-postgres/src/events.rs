//! [`WebhookEventLog`] on the `webhook_events` table.

use async_trait::async_trait;
use compliance_core::domain::{EventStatus, Page, WebhookEvent, WebhookEventQuery};
use compliance_core::ports::{AcceptRecord, AcceptedWebhook, PriorDelivery, WebhookEventLog};
use compliance_core::{ComponentId, StoreError, SyncJobId, Timestamp, WebhookEventId};
use sqlx::Row;
use uuid::Uuid;

use crate::error::PgStoreError;
use crate::ingest::{EventColumns, Item};
use crate::rows::{self, EVENT_COLUMNS};
use crate::PgStore;

#[async_trait]
impl WebhookEventLog for PgStore {
    async fn record_accepted(&self, accepted: AcceptedWebhook) -> Result<AcceptRecord, StoreError> {
        self.shared
            .ingest
            .write(Item {
                event: Some(accepted.event),
                job: accepted.job,
                placement: accepted.placement,
            })
            .await
    }

    async fn record_rejected(&self, event: WebhookEvent) -> Result<(), StoreError> {
        let c = EventColumns::from(std::slice::from_ref(&event));
        let result = sqlx::query(
            "INSERT INTO webhook_events (id, event_type, source_ip, source_system, raw_payload, \
               payload_truncated, signature, signature_valid, processing_status, rejection, \
               http_status, component_id, sync_job_id, repository_url, revision, branch, \
               pipeline_id, pipeline_url, actor, delivery_key, received_at, processed_at, \
               error_message) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
               $6::bool[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::int2[], \
               $12::uuid[], $13::uuid[], $14::text[], $15::text[], $16::text[], $17::text[], \
               $18::text[], $19::text[], $20::text[], $21::timestamptz[], $22::timestamptz[], \
               $23::text[])",
        )
        .bind(c.id)
        .bind(c.event_type)
        .bind(c.source_ip)
        .bind(c.source_system)
        .bind(c.raw_payload)
        .bind(c.payload_truncated)
        .bind(c.signature)
        .bind(c.signature_valid)
        .bind(c.processing_status)
        .bind(c.rejection)
        .bind(c.http_status)
        .bind(c.component_id)
        .bind(c.sync_job_id)
        .bind(c.repository_url)
        .bind(c.revision)
        .bind(c.branch)
        .bind(c.pipeline_id)
        .bind(c.pipeline_url)
        .bind(c.actor)
        .bind(c.delivery_key)
        .bind(c.received_at)
        .bind(c.processed_at)
        .bind(c.error_message)
        .execute(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("recording a rejected webhook"));
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.unique_violation().is_some() => Err(StoreError::conflict(format!(
                "webhook event {} exists",
                event.id
            ))),
            Err(err) => Err(err.into()),
        }
    }

    async fn find_delivery(
        &self,
        delivery_key: &str,
        since: Timestamp,
    ) -> Result<Option<PriorDelivery>, StoreError> {
        let row = sqlx::query(
            "SELECT id, sync_job_id, component_id, received_at FROM webhook_events \
             WHERE accepted AND delivery_key = $1 AND received_at >= $2",
        )
        .bind(delivery_key)
        .bind(since)
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("looking up a delivery"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let corrupt = |e: sqlx::Error| PgStoreError::Corrupt(e.to_string());
        let job: Option<Uuid> = row.try_get("sync_job_id").map_err(corrupt)?;
        let component: Option<Uuid> = row.try_get("component_id").map_err(corrupt)?;
        let (Some(job), Some(component)) = (job, component) else {
            return Ok(None);
        };
        Ok(Some(PriorDelivery {
            event_id: WebhookEventId::from_uuid(row.try_get("id").map_err(corrupt)?),
            sync_job_id: SyncJobId::from_uuid(job),
            component_id: ComponentId::from_uuid(component),
            received_at: row.try_get("received_at").map_err(corrupt)?,
        }))
    }

    async fn get_event(&self, id: WebhookEventId) -> Result<Option<WebhookEvent>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("reading a webhook event"))?;
        Ok(row.as_ref().map(rows::event).transpose()?)
    }

    async fn list_events(
        &self,
        query: &WebhookEventQuery,
    ) -> Result<Page<WebhookEvent>, StoreError> {
        let limit = query.page.effective_limit();
        let filter = "($1::text IS NULL OR processing_status = $1) \
             AND ($2::uuid IS NULL OR component_id = $2) \
             AND ($3::timestamptz IS NULL OR received_at >= $3) \
             AND ($4::timestamptz IS NULL OR received_at < $4)";
        let status = query.status.map(EventStatus::as_str);
        let component = query.component_id.map(|c| c.as_uuid());
        let found = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}, count(*) OVER () AS total_rows FROM webhook_events \
             WHERE {filter} ORDER BY received_at DESC, id DESC OFFSET $5 LIMIT $6"
        ))
        .bind(status)
        .bind(component)
        .bind(query.from)
        .bind(query.to)
        .bind(i64::from(query.page.offset))
        .bind(i64::from(limit))
        .fetch_all(&self.shared.pool)
        .await
        .map_err(PgStoreError::sqlx("listing webhook events"))?;

        let total = match found.first() {
            Some(row) => row
                .try_get::<i64, _>("total_rows")
                .map_err(|e| PgStoreError::Corrupt(e.to_string()))?,
            None => sqlx::query_scalar(&format!(
                "SELECT count(*) FROM webhook_events WHERE {filter}"
            ))
            .bind(status)
            .bind(component)
            .bind(query.from)
            .bind(query.to)
            .fetch_one(&self.shared.pool)
            .await
            .map_err(PgStoreError::sqlx("counting webhook events"))?,
        };
        Ok(Page {
            items: found.iter().map(rows::event).collect::<Result<_, _>>()?,
            total: rows::count64(total),
            offset: query.page.offset,
            limit,
        })
    }

    async fn prune_events(&self, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_events WHERE received_at < $1")
            .bind(before)
            .execute(&self.shared.pool)
            .await
            .map_err(PgStoreError::sqlx("pruning webhook events"))?;
        Ok(done.rows_affected())
    }
}
