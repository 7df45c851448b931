//! A steady load of signed webhooks against a server process that may die, restart or lose
//! its database or queue meanwhile, keeping what the audit and the report need.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use compliance_fossa::sim::{RevisionChange, SimState};
use tokio_util::sync::CancellationToken;

use super::{now_secs, signed_post, webhook_body, WEBHOOK_PATH};

/// Signed webhooks from several tasks until stopped, each for a new FOSSA revision of one of
/// `components` (`(repository URL, locator, component id)`).
#[derive(Clone)]
pub(crate) struct Load {
    components: Vec<(String, String, String)>,
    sim: SimState,
    next: Arc<AtomicU64>,
    base: i64,
    /// Every revision sent, answered or not, with its scan time.
    pub(crate) sent: Arc<Mutex<HashMap<String, i64>>>,
    /// `(sync_id, component id)` of each 202.
    accepted: Arc<Mutex<Vec<(String, String)>>>,
    /// Requests that got no answer (the server was down) or an answer other than 202.
    pub(crate) unanswered: Arc<AtomicU64>,
    /// The statuses other than 202.
    pub(crate) other: Arc<Mutex<Vec<u16>>>,
    /// When the last 202 arrived.
    last_accepted: Arc<Mutex<Option<Instant>>>,
    /// How long each sender waits between two webhooks.
    pause: Duration,
}

impl Load {
    /// A load over `components`, whose FOSSA projects live in `sim`.
    pub(crate) fn new(components: Vec<(String, String, String)>, sim: SimState) -> Self {
        Self {
            components,
            sim,
            next: Arc::new(AtomicU64::new(0)),
            base: now_secs() - 3600,
            sent: Arc::default(),
            accepted: Arc::default(),
            unanswered: Arc::default(),
            other: Arc::default(),
            last_accepted: Arc::default(),
            pause: Duration::ZERO,
        }
    }

    /// Each sender waits `pause` between two webhooks (none by default: as fast as answered).
    pub(crate) fn paced(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }

    /// Starts `senders` tasks sending to `addr` until `stop`.
    pub(crate) fn spawn(
        &self,
        addr: SocketAddr,
        senders: usize,
        stop: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        (0..senders)
            .map(|_| {
                let load = self.clone();
                let stop = stop.clone();
                tokio::spawn(async move { load.send_until(addr, stop).await })
            })
            .collect()
    }

    async fn send_until(&self, addr: SocketAddr, stop: CancellationToken) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("http://{addr}{WEBHOOK_PATH}");
        while !stop.is_cancelled() {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let (repo, locator, component) = &self.components[n as usize % self.components.len()];
            let revision = format!("{n:08x}{:032x}", rand::random::<u128>());
            self.sim
                .advance_revision(
                    locator,
                    &RevisionChange::new(&revision, 1, (n % 3) as usize),
                )
                .unwrap();
            let scan_completed = self.base + n as i64;
            self.sent
                .lock()
                .unwrap()
                .insert(revision.clone(), scan_completed);
            let body = webhook_body(repo, &revision, n, scan_completed);
            match signed_post(&client, &url, body).send().await {
                Ok(response) if response.status().as_u16() == 202 => {
                    let answer: serde_json::Value = response.json().await.unwrap();
                    let id = answer["sync_id"].as_str().unwrap().to_owned();
                    self.accepted.lock().unwrap().push((id, component.clone()));
                    *self.last_accepted.lock().unwrap() = Some(Instant::now());
                    if !self.pause.is_zero() {
                        tokio::time::sleep(self.pause).await;
                    }
                }
                Ok(response) => {
                    self.other.lock().unwrap().push(response.status().as_u16());
                    self.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    self.unanswered.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// `(sync_id, component id)` of every 202 so far.
    pub(crate) fn accepted(&self) -> Vec<(String, String)> {
        self.accepted.lock().unwrap().clone()
    }

    /// Requests sent so far (answered or not).
    pub(crate) fn sent_count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// Waits for the first 202 that arrives after `since`; returns how long after `since` it
    /// came, or `None` when none came within `within`.
    pub(crate) async fn accepted_after(
        &self,
        since: Instant,
        within: Duration,
    ) -> Option<Duration> {
        loop {
            if self
                .last_accepted
                .lock()
                .unwrap()
                .is_some_and(|t| t > since)
            {
                return Some(since.elapsed());
            }
            if since.elapsed() >= within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
