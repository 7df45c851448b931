//! A FOSSA API simulator on loopback, for tests and the reference server's demo mode.
//!
//! It serves the endpoints the client uses, with FOSSA's shapes, paging and error bodies,
//! from an in-memory model ([`SimState`]): `GET /api/v2/projects` (and the unpublished
//! `/api/v2/projects/{locator}` alias), `GET /api/v2/issues`, and
//! `GET /api/revisions/{locator}/dependencies`. It checks the token (`Bearer` or FOSSA's
//! legacy `token` scheme) and can be scripted per endpoint with [`Fault`]s and latency.
//!
//! | FOSSA behaviour | simulator |
//! | --- | --- |
//! | projects: `locators[]` filter, `page`, `count` 1–1000 | same; plain `locators=` is a 400 |
//! | issues: one `category`, project scope, bare `scope[revision]`, `status`, `page`, `count` 1–1000 | same; 202 while a revision is analysing |
//! | dependencies: bare array, `limit` clamped to 25–100, `offset`, no limit = everything | same; unknown revision is a plain-text 404 |
//! | errors | FOSSA's `{uuid, code, message, name, httpStatusCode}` |
//!
//! ```
//! use compliance_fossa::sim::{Endpoint, Fault, FossaSimulator, ProjectSpec, SimConfig};
//! use compliance_fossa::FossaClient;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = FossaSimulator::start(SimConfig::default()).await?;
//! let locator = sim
//!     .state()
//!     .generate_project(&ProjectSpec::new("custom+1/github.com/acme/shop", 250, 40, 7));
//! sim.state().inject(Endpoint::Issues, Fault::rate_limited("0"), 1);
//!
//! let client = FossaClient::new(sim.client_config())?;
//! let snapshot = client.snapshot(&locator, None).await?;
//! assert_eq!(snapshot.dependencies.len(), 250);
//! assert_eq!(snapshot.issues.len(), 40);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod faults;
pub mod fixtures;
mod generate;
mod model;
mod render;
mod server;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{Endpoint, Fault, InStreamPlacement};
pub use fixtures::FixtureSet;
pub use generate::{AdvanceReport, ProjectSpec, RevisionChange};
pub use model::{
    Analysis, AuthScheme, RecordedRequest, SimDependency, SimError, SimIssue, SimProject,
    SimRevision, SimState,
};

use crate::config::{ConfigError, FossaConfig};
use crate::FossaClient;

/// How to start a simulator.
#[derive(Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` (any free port) by default.
    pub addr: SocketAddr,
    /// The token clients must send; a random one when `None`.
    pub token: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: None,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl SimConfig {
    /// Requires `token` from clients.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct FossaSimulator;

impl FossaSimulator {
    /// Starts a simulator with an empty FOSSA.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        Self::start_with_state(config, SimState::new()).await
    }

    /// Starts a simulator serving `state` (which the caller may keep changing).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn start_with_state(
        config: SimConfig,
        state: SimState,
    ) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let token = config.token.unwrap_or_else(|| {
            let n: u128 = rand::rng().random();
            format!("sim-{n:032x}")
        });

        let router = server::router(state.clone(), Arc::from(token.as_str()));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, router, stopped));
        tracing::debug!(%addr, "fossa simulator listening");

        Ok(SimHandle {
            base_url: format!("http://{addr}"),
            addr,
            token,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    base_url: String,
    addr: SocketAddr,
    token: String,
    state: SimState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`, to use as the client's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address listened on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token clients must send.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The data, faults and request log.
    #[must_use]
    pub fn state(&self) -> &SimState {
        &self.state
    }

    /// A client configuration pointing at this simulator with its token.
    #[must_use]
    pub fn client_config(&self) -> FossaConfig {
        let config = FossaConfig::new(self.token.as_str());
        match config.clone().with_base_url(&self.base_url) {
            Ok(config) => config,
            // The base URL is always `http://<socket address>`, which parses.
            Err(_) => config,
        }
    }

    /// A client for this simulator with default settings.
    ///
    /// # Errors
    ///
    /// As [`FossaClient::new`].
    pub fn client(&self) -> Result<FossaClient, ConfigError> {
        FossaClient::new(self.client_config())
    }

    /// Stops the server and waits until it has stopped accepting.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
