//! Helpers shared by the integration tests: a simulator and a client pointed at it.
#![allow(dead_code, unreachable_pub)]

use compliance_core::ports::FetchRequest;
use compliance_core::{ComponentId, Timestamp};
use compliance_fossa::sim::{FossaSimulator, SimConfig, SimHandle};
use compliance_fossa::{FossaClient, FossaConfig};

/// A simulator with an empty FOSSA.
pub async fn sim() -> SimHandle {
    FossaSimulator::start(SimConfig::default())
        .await
        .expect("the simulator binds a loopback port")
}

/// A client for `sim`, with `adjust` applied to the default configuration.
pub fn client(sim: &SimHandle, adjust: impl FnOnce(FossaConfig) -> FossaConfig) -> FossaClient {
    FossaClient::new(adjust(sim.client_config())).expect("a valid client configuration")
}

/// A client that never retries by itself, so every failure reaches the caller.
pub fn strict_client(sim: &SimHandle) -> FossaClient {
    client(sim, |c| c.with_request_retries(0))
}

/// A port request for `locator` at `revision`.
pub fn request(locator: &str, revision: Option<&str>) -> FetchRequest {
    FetchRequest {
        component_id: ComponentId::new(),
        locator: locator.to_owned(),
        revision: revision.map(str::to_owned),
        branch: "main".to_owned(),
    }
}

/// A timestamp from RFC 3339 text.
pub fn ts(text: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("a valid timestamp")
        .with_timezone(&chrono::Utc)
}
