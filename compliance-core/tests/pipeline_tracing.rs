//! The spans of a webhook and of a sync carry the ids an operator searches logs by.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod pipeline_support;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use compliance_core::testing::fixtures;
use compliance_core::testing::ScriptedScanSource;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use pipeline_support::{rev, signed_request, Harness};

type Fields = HashMap<String, String>;

/// Keeps every span's name and the fields recorded on it, in creation order.
#[derive(Clone, Default)]
struct SpanLog(Arc<Mutex<Vec<(u64, String, Fields)>>>);

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber> Layer<S> for SpanLog {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.0.lock().unwrap().push((id.into_u64(), name, fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, _, fields)) = spans.iter_mut().rev().find(|(i, _, _)| *i == id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }
}

impl SpanLog {
    fn named(&self, name: &str) -> Vec<Fields> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, f)| f.clone())
            .collect()
    }
}

#[tokio::test]
async fn webhook_and_sync_spans_carry_their_ids_and_outcome() {
    let log = SpanLog::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(log.clone()));
    let h = Harness::new(ScriptedScanSource::always(fixtures::snapshot(1, 1, 1))).await;

    let accepted = h.send(&h.body(&rev(1), "main", None)).await;
    let body = h.body(&rev(2), "main", None);
    h.ingest
        .receive(signed_request(
            body.as_bytes(),
            h.now().timestamp(),
            "wrong",
        ))
        .await;
    h.worker().run_once().await.unwrap().unwrap();

    let accepted = accepted.accepted().unwrap();
    let webhooks = log.named("webhook");
    assert_eq!(webhooks.len(), 2);
    let first = &webhooks[0];
    assert_eq!(
        first["webhook_event_id"],
        accepted.webhook_event_id.unwrap().to_string()
    );
    assert_eq!(first["component_id"], h.component.id.to_string());
    assert_eq!(first["sync_job_id"], accepted.sync_id.to_string());
    assert_eq!(first["source_ip"], "203.0.113.9");
    assert_eq!(first["outcome"], "accepted");
    let refused = &webhooks[1];
    assert_eq!(refused["outcome"], "invalid_signature");
    assert!(!refused.contains_key("component_id"));

    let syncs = log.named("sync");
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0]["sync_job_id"], accepted.sync_id.to_string());
    assert_eq!(syncs[0]["component_id"], h.component.id.to_string());
    assert_eq!(syncs[0]["attempt"], "1");
}
