//! The per-endpoint duration histogram and the per-request span, without the token.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use compliance_core::metrics::SYNC_FOSSA_API_DURATION;
use compliance_core::ports::ScanSource;
use compliance_fossa::sim::{Endpoint, Fault, ProjectSpec};
use compliance_fossa::{FossaConfig, DEPENDENCIES, ISSUES, PROJECTS};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

use common::{request, sim};

const P: &str = "custom+3/github.com/acme/observed";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_request_is_timed_per_endpoint_template() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();

    metrics::with_local_recorder(&recorder, || {
        runtime().block_on(async {
            let sim = sim().await;
            sim.state()
                .generate_project(&ProjectSpec::new(P, 150, 10, 1).with_revision("r"));
            let client = common::client(&sim, |c| c.with_request_retries(0));
            client.fetch(&request(P, Some("r"))).await.unwrap();
        });
    });

    let mut samples = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.kind() != MetricKind::Histogram || key.key().name() != SYNC_FOSSA_API_DURATION {
            continue;
        }
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        assert_eq!(labels.len(), 1, "{labels:?}");
        assert_eq!(labels[0].0, "endpoint");
        let DebugValue::Histogram(values) = value else {
            panic!("not a histogram");
        };
        assert!(values.iter().all(|v| v.into_inner() >= 0.0));
        samples.insert(labels[0].1.clone(), values.len());
    }
    // One project call, one issues page per category, two dependency pages.
    assert_eq!(samples.get(PROJECTS), Some(&1));
    assert_eq!(samples.get(ISSUES), Some(&3));
    assert_eq!(samples.get(DEPENDENCIES), Some(&2));
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[test]
fn requests_run_in_spans_that_never_hold_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();

    let token = tracing::subscriber::with_default(subscriber, || {
        runtime().block_on(async {
            let sim = sim().await;
            sim.state()
                .generate_project(&ProjectSpec::new(P, 10, 5, 1).with_revision("r"));
            sim.state()
                .inject(Endpoint::Issues, Fault::unavailable("0"), 1);
            let client = common::client(&sim, |c| c.with_request_retries(1));
            client.fetch(&request(P, Some("r"))).await.unwrap();

            // A refused token leaves the same kind of trail.
            let wrong = compliance_fossa::FossaClient::new(
                FossaConfig::new("not-the-token-8c1e")
                    .with_base_url(sim.base_url())
                    .unwrap(),
            )
            .unwrap();
            wrong.fetch(&request(P, Some("r"))).await.unwrap_err();
            sim.token().to_owned()
        })
    });

    let logs = captured.text();
    assert!(logs.contains("fossa_request"), "{logs}");
    assert!(logs.contains("fossa_fetch"), "{logs}");
    for template in [PROJECTS, ISSUES, DEPENDENCIES] {
        assert!(logs.contains(template), "{template} missing from {logs}");
    }
    assert!(logs.contains("status=200"), "{logs}");
    assert!(logs.contains("status=503"), "{logs}");
    assert!(logs.contains("status=401"), "{logs}");
    assert!(
        logs.contains("attempt=2"),
        "the retried request is attempt 2: {logs}"
    );
    assert!(!logs.contains(&token), "the token leaked into the logs");
    assert!(
        !logs.contains("not-the-token-8c1e"),
        "the wrong token leaked into the logs"
    );
}
