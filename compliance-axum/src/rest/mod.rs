//! The REST API under `/api`: JSON in and out, paging with `offset` and `limit`.
//!
//! Filters arrive as query strings and are checked all at once: a request with several bad
//! parameters gets one 400 listing each of them.

pub mod dto;

pub mod components;
pub mod events;
pub mod jobs;
pub mod ops;
pub mod session;
pub mod system;

use std::str::FromStr;

use compliance_core::domain::PageRequest;
use compliance_core::ComponentId;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, FieldDetail};
use crate::state::ApiState;

/// Paging parameters shared by every list.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items to skip (default 0).
    pub offset: Option<u32>,
    /// Items to return, 1 to 1000 (default 50).
    pub limit: Option<u32>,
}

/// Collects field errors while reading a request's parameters.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    errors: Vec<FieldDetail>,
}

impl Checks {
    pub(crate) fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldDetail::new(field, message));
    }

    pub(crate) fn page(&mut self, paging: Paging) -> PageRequest {
        let limit = paging.limit.unwrap_or(PageRequest::default().limit);
        if limit == 0 || limit > PageRequest::MAX_LIMIT {
            self.fail(
                "limit",
                format!("must be between 1 and {}", PageRequest::MAX_LIMIT),
            );
        }
        PageRequest::new(paging.offset.unwrap_or(0), limit)
    }

    /// Parses an optional enumerated value with `parse`; `allowed` names the spellings.
    pub(crate) fn one_of<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl Fn(&str) -> Option<T>,
        allowed: &str,
    ) -> Option<T> {
        let value = value?;
        let parsed = parse(value);
        if parsed.is_none() {
            self.fail(field, format!("must be one of {allowed}"));
        }
        parsed
    }

    /// Trims optional search text; empty means no filter.
    pub(crate) fn search(&mut self, field: &str, value: Option<String>) -> Option<String> {
        let value = value?;
        let trimmed = value.trim();
        if trimmed.len() > 200 {
            self.fail(field, "must be at most 200 characters");
        }
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// 400 with every collected error, or `Ok`.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::bad_request("Invalid request", self.errors))
        }
    }
}

/// Parses an id from the path; 400 when it is not a UUID.
pub(crate) fn parse_id<T: FromStr>(field: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::invalid_field(field, "must be a UUID"))
}

/// The component with `id`, or 404.
pub(crate) async fn existing_component(
    api: &ApiState,
    id: ComponentId,
) -> Result<compliance_core::domain::Component, ApiError> {
    api.services()
        .stores
        .components
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("Component not found"))
}
