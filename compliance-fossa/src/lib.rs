//! A FOSSA REST client implementing compliance-core's scan-source port, and (feature `sim`)
//! a FOSSA API simulator on loopback with fault injection.
//!
//! The sync worker asks a [`ScanSource`](compliance_core::ports::ScanSource) for one
//! revision's project metadata, issues and dependencies. [`FossaClient`] answers with three
//! kinds of FOSSA calls, following FOSSA's published API:
//!
//! | step | call | paging |
//! | --- | --- | --- |
//! | project | `GET /api/v2/projects?locators[]=P&count=1` | one call; no match is "not found" |
//! | issues | `GET /api/v2/issues?category=C&scope[type]=project&scope[id]=P&scope[revision]=R&status=active` for `licensing`, `vulnerability` and `quality` | `page`/`count` until a short page |
//! | dependencies | `GET /api/revisions/{P$R}/dependencies?include_ignored=false` | `limit`/`offset` until a short page |
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`FossaClient`], [`FossaConfig`] | the client and its settings (token, timeouts, concurrency, page sizes) |
//! | [`FossaError`] | the client's errors; they map into core's `ScanSourceError` kinds |
//! | [`mapping`] | FOSSA → snapshot, including the severity of licensing and quality issues |
//! | [`model`] | serde types and page decoders of FOSSA's responses |
//! | [`locator`] | locator parsing and URL encoding |
//! | [`retry_after`] | `Retry-After` in both forms |
//! | `sim` (feature `sim`) | `FossaSimulator`: the same endpoints from an in-memory model, with scripted faults |
//!
//! # Pointing the client at FOSSA
//!
//! The client needs a **Full** API token (FOSSA's Push-Only tokens cannot read issues);
//! create one under *Account Settings → Integrations → API* in FOSSA. Set it in
//! `FOSSA_API_KEY`. `FOSSA_BASE_URL` defaults to `https://app.fossa.com`; set it for an
//! on-premises FOSSA.
//!
//! ```no_run
//! use compliance_core::ports::{FetchRequest, ScanSource};
//! use compliance_core::ComponentId;
//! use compliance_fossa::{FossaClient, FossaConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // FOSSA_API_KEY=<full token> [FOSSA_BASE_URL=https://fossa.example.internal]
//! let config = FossaConfig::from_env()?.with_max_concurrency(4);
//! let client = FossaClient::new(config)?;
//!
//! let snapshot = client
//!     .fetch(&FetchRequest {
//!         component_id: ComponentId::new(),
//!         locator: "custom+48213/github.com/acme-corp/payments-api".to_owned(),
//!         revision: Some("c41d9e0b7a3f52e8d16b4a09f7e2c3d8b5a6f1e4".to_owned()),
//!         branch: "main".to_owned(),
//!     })
//!     .await?;
//! println!(
//!     "{}: {} issues, {} dependencies",
//!     snapshot.project.title,
//!     snapshot.issues.len(),
//!     snapshot.dependencies.len()
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Failures
//!
//! FOSSA answering 202 ("analysis in-progress") is `NotReady`, never zero issues. 429 carries
//! its `Retry-After` (seconds or HTTP-date, clamped); 5xx, 408, timeouts and broken
//! connections are transient; 401/403 name the token problem and `FOSSA_API_KEY` without
//! the token; 404 is "project or revision not found in FOSSA"; a body of the wrong shape
//! names the endpoint and field. A 200 dependency stream that ends in FOSSA's in-stream
//! `{"error": …}`, or stops early, fails the fetch instead of giving a short list. The
//! client retries a failed request itself a few times when the wait is short
//! ([`FossaConfig::request_retries`]); everything else goes to the worker's retry policy.
//!
//! Each request records `sync_fossa_api_duration_seconds{endpoint}` and runs in a
//! `fossa_request` span (method, path template, status, attempt). The token never reaches
//! a span, a log line, an error or a `Debug` output.

mod client;
mod config;
mod error;
mod http;
pub mod locator;
pub mod mapping;
pub mod model;
pub mod retry_after;
#[cfg(feature = "sim")]
pub mod sim;

pub use client::{Dependencies, FossaClient, Project};
pub use config::{
    ApiToken, ConfigError, FossaConfig, BASE_URL_ENV, DEFAULT_BASE_URL,
    DEPENDENCIES_PAGE_SIZE_RANGE, ISSUES_PAGE_SIZE_RANGE, TOKEN_ENV,
};
pub use error::{FossaError, TokenProblem, TransportKind};
pub use http::{DEPENDENCIES, ISSUES, PROJECTS};
