//! Demo mode: the FOSSA simulator on loopback, sample components, a login link, a curl
//! command that triggers a scan, and (with `--demo-traffic`) signed webhooks on a timer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use compliance_core::domain::{NewComponent, Trigger};
use compliance_core::ingest::IngestService;
use compliance_core::ports::{ScanSource, Stores};
use compliance_core::signature::{sign, SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER};
use compliance_core::RepoUrl;
use compliance_fossa::sim::{
    FossaSimulator, ProjectSpec, RevisionChange, SimConfig, SimHandle, SimState,
};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::AppError;

/// The workflow document's curl payload, byte for byte; its repository is a demo component.
pub const DOCUMENT_CURL_PAYLOAD: &str = r#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;

/// A sample component: name, repository URL, dependencies, issues.
struct Sample {
    name: &'static str,
    url: &'static str,
    dependencies: usize,
    issues: usize,
}

const SAMPLES: &[Sample] = &[
    Sample {
        name: "payment-service",
        url: "https://github.com/acme/payment-service",
        dependencies: 147,
        issues: 3,
    },
    Sample {
        name: "checkout-web",
        url: "https://gitlab.com/acme/storefront/checkout-web",
        dependencies: 412,
        issues: 9,
    },
    Sample {
        name: "ledger-api",
        url: "https://dev.azure.com/acme/finance/_git/ledger-api",
        dependencies: 96,
        issues: 0,
    },
    Sample {
        name: "inventory-service",
        url: "https://github.com/acme/inventory-service",
        dependencies: 230,
        issues: 5,
    },
    Sample {
        name: "auth-gateway",
        url: "https://github.com/acme/auth-gateway",
        dependencies: 75,
        issues: 1,
    },
    Sample {
        name: "notification-worker",
        url: "https://bitbucket.org/acme/notification-worker",
        dependencies: 58,
        issues: 2,
    },
];

/// The FOSSA organization id the demo's locators use.
const DEMO_ORG: u32 = 48213;

/// What `prepare` settled before storage opens: the secret and token the demo uses.
#[derive(Clone)]
pub struct DemoSetup {
    secret: String,
    token: String,
    generated: bool,
    traffic: bool,
}

/// Fills in a webhook secret and an admin token when none was configured, so the demo is
/// usable at once; the generated values are printed by [`Demo::announce`].
pub fn prepare(config: &mut Config) -> DemoSetup {
    let mut generated = false;
    let secret = match config.webhook_secrets.iter().find(|s| !s.trim().is_empty()) {
        Some(secret) => secret
            .split_once(':')
            .map_or(secret.as_str(), |(_, s)| s)
            .to_owned(),
        None => {
            generated = true;
            let secret = random_hex(24);
            config.webhook_secrets = vec![secret.clone()];
            secret
        }
    };
    let token = match config.admin_tokens.iter().find(|t| !t.trim().is_empty()) {
        Some(token) => token.trim().to_owned(),
        None => {
            generated = true;
            let token = random_hex(24);
            config.admin_tokens = vec![token.clone()];
            token
        }
    };
    DemoSetup {
        secret,
        token,
        generated,
        traffic: config.demo_traffic,
    }
}

/// A running demo.
pub struct Demo {
    setup: DemoSetup,
    sim: SimHandle,
    components: Vec<(String, String)>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("sim", &self.sim)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// Starts the simulator, generates a FOSSA project per sample, registers the samples
    /// (keeping those a previous run registered) and queues a first sync of each.
    ///
    /// # Errors
    ///
    /// When the simulator cannot bind or the store refuses the components.
    pub async fn start(
        setup: DemoSetup,
        stores: &Stores,
        ingest: &IngestService,
    ) -> Result<Self, AppError> {
        let sim = FossaSimulator::start(SimConfig::default())
            .await
            .map_err(|e| AppError::Fossa(format!("simulator: {e}")))?;
        let mut components = Vec::new();
        for (seed, sample) in (1_u64..).zip(SAMPLES) {
            let locator = demo_locator(sample.url);
            let mut spec = ProjectSpec::new(&locator, sample.dependencies, sample.issues, seed)
                .with_unresolved(1);
            // The document's curl test names revision abc123 of payment-service.
            if sample.name == "payment-service" {
                spec = spec.with_revision("abc123");
            }
            sim.state().generate_project(&spec);

            let url = RepoUrl::parse(sample.url)
                .map_err(|e| AppError::Config(format!("demo component {}: {e}", sample.name)))?;
            let component = match stores.components.find_by_repository(&url).await? {
                Some(existing) => existing,
                None => {
                    let new = NewComponent {
                        name: sample.name.to_owned(),
                        repository_url: url,
                        fossa_locator: locator.clone(),
                        default_branch: "main".to_owned(),
                    };
                    stores.components.register(new, chrono::Utc::now()).await?
                }
            };
            if let Err(error) = ingest.request_sync(component.id, Trigger::Manual).await {
                tracing::warn!(component = sample.name, %error, "first demo sync not queued");
            }
            components.push((sample.url.to_owned(), component.fossa_locator));
        }
        Ok(Self {
            setup,
            sim,
            components,
        })
    }

    /// The FOSSA client pointing at the simulator.
    ///
    /// # Errors
    ///
    /// When the client cannot be built.
    pub fn scan_source(&self) -> Result<Arc<dyn ScanSource>, AppError> {
        self.sim
            .client()
            .map(|c| Arc::new(c) as Arc<dyn ScanSource>)
            .map_err(|e| AppError::Fossa(e.to_string()))
    }

    /// The simulator's data, to move projects to new revisions.
    #[must_use]
    pub fn sim_state(&self) -> &SimState {
        self.sim.state()
    }

    /// The webhook secret.
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.setup.secret
    }

    /// The admin token.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.setup.token
    }

    /// Whether `--demo-traffic` was given.
    #[must_use]
    pub fn traffic(&self) -> bool {
        self.setup.traffic
    }

    /// Prints the dashboard link, the credentials it generated and a curl command.
    pub fn announce(&self, addr: SocketAddr) {
        let base = format!("http://{addr}");
        let ts = chrono::Utc::now().timestamp();
        let signature = sign(
            self.setup.secret.as_bytes(),
            ts,
            DOCUMENT_CURL_PAYLOAD.as_bytes(),
        );
        let mut out = String::new();
        out.push_str("\n  Compliance demo is running.\n\n");
        out.push_str(&format!(
            "  Dashboard:       {base}/#token={}\n",
            self.setup.token
        ));
        if self.setup.generated {
            out.push_str(&format!(
                "  API token:       {} (admin)\n",
                self.setup.token
            ));
            out.push_str(&format!("  Webhook secret:  {}\n", self.setup.secret));
        }
        out.push_str(&format!("  FOSSA simulator: {}\n\n", self.sim.base_url()));
        out.push_str("  Trigger a scan of payment-service (signature valid for 5 minutes):\n\n");
        out.push_str(&format!(
            "  curl -X POST {base}/api/webhooks/fossa-scan \\\n    -H \"Content-Type: application/json\" \\\n    -H \"X-Webhook-Signature: {signature}\" \\\n    -H \"X-Webhook-Timestamp: {ts}\" \\\n    -d '{DOCUMENT_CURL_PAYLOAD}'\n\n"
        ));
        // The demo's whole point is to hand these to the person at the terminal.
        println!("{out}");
    }

    /// A driver that moves a sample project to a new revision and sends its signed webhook
    /// every few seconds.
    #[must_use]
    pub fn traffic_driver(&self, addr: SocketAddr) -> TrafficDriver {
        TrafficDriver {
            url: format!("http://{addr}/api/webhooks/fossa-scan"),
            secret: self.setup.secret.clone(),
            sim: self.sim.state().clone(),
            components: self.components.clone(),
        }
    }

    /// Stops the simulator.
    pub async fn stop(self) {
        self.sim.shutdown().await;
    }
}

/// Sends demo webhooks on a timer.
pub struct TrafficDriver {
    url: String,
    secret: String,
    sim: SimState,
    components: Vec<(String, String)>,
}

impl TrafficDriver {
    /// Runs until `shutdown`; one webhook every three to six seconds.
    pub async fn run(self, shutdown: CancellationToken) {
        let client = reqwest::Client::new();
        let mut round = 0_usize;
        loop {
            let pause = Duration::from_millis(rand::rng().random_range(3000..6000));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            let Some((url, locator)) = self.components.get(round % self.components.len().max(1))
            else {
                return;
            };
            round += 1;
            if let Err(error) = self.send_one(&client, url, locator).await {
                tracing::warn!(%error, "demo webhook not sent");
            }
        }
    }

    async fn send_one(
        &self,
        client: &reqwest::Client,
        repo_url: &str,
        locator: &str,
    ) -> Result<(), String> {
        let (fixed, added, revision) = {
            let mut rng = rand::rng();
            (
                rng.random_range(0..3),
                rng.random_range(0..3),
                random_hex(20),
            )
        };
        self.sim
            .advance_revision(locator, &RevisionChange::new(&revision, fixed, added))
            .map_err(|e| e.to_string())?;
        let body = serde_json::json!({
            "event": "fossa.scan.completed",
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "repository": { "url": repo_url },
            "scan": { "revision": revision, "branch": "main",
                      "status": if added > 0 { "failed" } else { "passed" } },
            "pipeline": { "id": random_hex(4), "provider": "demo" },
            "metadata": { "triggered_by": "push", "actor": "demo@acme.example" }
        })
        .to_string();
        let ts = chrono::Utc::now().timestamp();
        let response = client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(
                SIGNATURE_HEADER,
                sign(self.secret.as_bytes(), ts, body.as_bytes()),
            )
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SOURCE_HEADER, "demo")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            status = response.status().as_u16(),
            repository = repo_url,
            "demo webhook sent"
        );
        Ok(())
    }
}

/// `custom+48213/github.com/acme/payment-service` for `https://github.com/acme/payment-service`.
fn demo_locator(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    format!("custom+{DEMO_ORG}/{path}")
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0_u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}
