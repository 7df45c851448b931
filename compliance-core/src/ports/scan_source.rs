use async_trait::async_trait;

use crate::domain::ScanSnapshot;
use crate::error::ScanSourceError;
use crate::id::ComponentId;

/// What a sync asks the scan source for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// The component being synced (for logs).
    pub component_id: ComponentId,
    /// The FOSSA project locator (without `$revision`).
    pub locator: String,
    /// The bare revision to fetch; `None` for the project's latest.
    pub revision: Option<String>,
    /// The branch the scan ran on.
    pub branch: String,
}

/// Where scan results come from: FOSSA, its simulator, or a scripted test double.
///
/// # Contract
///
/// - `fetch` returns a complete snapshot or an error, never a partial one: if any page of
///   issues or dependencies fails, the whole fetch fails.
/// - "Analysis still running" is [`ScanSourceError::NotReady`], never an empty issue list.
/// - Errors say whether retrying can help ([`ScanSourceError::retry_class`]) and never contain
///   credentials.
#[async_trait]
pub trait ScanSource: Send + Sync + 'static {
    /// Fetches project metadata, issues of every category and dependencies.
    async fn fetch(&self, request: &FetchRequest) -> Result<ScanSnapshot, ScanSourceError>;
}
