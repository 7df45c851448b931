//! Serde types for the FOSSA responses the sync reads, and their decoders.
//!
//! Each type holds only the fields the sync uses: unknown fields are skipped, missing optional
//! fields default, and `null` is accepted wherever FOSSA's schema or public clients show it.
//! Decoders are fast on the good path and, when a body does not match, decode it a second
//! time to name the field that failed.

mod dependency;
mod issue;
mod lenient;
mod project;

pub use dependency::{
    decode_dependencies_page, DependencyLicense, DependencyLoc, DependencyLock, DependencyProject,
    RawDependency, Text,
};
pub use issue::{decode_issues_page, IssueDepths, IssueProject, IssueSource, IssuesPage, RawIssue};
pub use project::{
    decode_project_list, LatestRevision, ProjectIssueCounts, ProjectList, RawProject,
};

#[cfg(feature = "sim")]
pub(crate) use lenient::parse_timestamp;
use serde::Deserialize;

use crate::error::FossaError;

/// FOSSA's standard error body (`{uuid, code, message, name, httpStatusCode}`); every field
/// is optional because proxies and older endpoints send other shapes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Request id FOSSA support can look up.
    pub uuid: Option<String>,
    /// FOSSA's numeric error code (for example 1002 for ProjectNotFoundError).
    pub code: Option<i64>,
    /// Human-readable message.
    pub message: Option<String>,
    /// Error name (for example `UnauthorizedError`).
    pub name: Option<String>,
    /// The status FOSSA meant.
    pub http_status_code: Option<u16>,
}

/// Decodes `bytes` as `T`; on failure names the field path that did not match.
pub(crate) fn decode<'de, T: Deserialize<'de>>(
    endpoint: &'static str,
    bytes: &'de [u8],
) -> Result<T, FossaError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(value) => Ok(value),
        Err(fast) => Err(FossaError::Decode {
            endpoint,
            detail: explain::<T>(bytes, &fast),
        }),
    }
}

/// Re-decodes a body that failed, tracking the path, for an error message that names the
/// field. Only runs on the failure path, so the good path pays nothing for it.
pub(crate) fn explain<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    fast: &serde_json::Error,
) -> String {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            if path == "." {
                format!("{} (at the top level)", e.inner())
            } else {
                format!("field `{path}`: {}", e.inner())
            }
        }
        Ok(_) => fast.to_string(),
    }
}
