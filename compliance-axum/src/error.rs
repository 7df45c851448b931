//! One error type for every route, so every refusal has the same JSON shape.
//!
//! The body is `{"error": "<message>"}`, with `details: [{field, message}]` when the request
//! had field-level problems and `retry_after` (seconds) on a 429. Messages are written for the
//! caller; backend errors are logged and answered with a generic message, never echoed.

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use compliance_core::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The message of every 401 the webhook route answers, whatever the signature problem was.
pub const INVALID_SIGNATURE: &str = "Invalid webhook signature";
/// The message of the webhook route's 404.
pub const NO_COMPONENT: &str = "No component linked to this repository";

/// One problem with one field of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldDetail {
    /// The field, as a dotted path (`scan.revision`, `limit`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldDetail {
    /// A detail for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The JSON body of every error answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
    /// Field-level problems, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub details: Vec<FieldDetail>,
    /// Seconds to wait before trying again (429 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
}

/// An error answer: a status and an [`ErrorBody`].
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    details: Vec<FieldDetail>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with any status and message.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 400 with field details.
    pub fn bad_request(message: impl Into<Cow<'static, str>>, details: Vec<FieldDetail>) -> Self {
        Self {
            details,
            ..Self::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// 400 for one bad field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::bad_request("Invalid request", vec![FieldDetail::new(field, message)])
    }

    /// 401: no credentials, or credentials that match no token or session.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Missing or invalid API token")
    }

    /// 403: valid credentials without the needed scope.
    #[must_use]
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "This action needs the admin scope")
    }

    /// 404 with a message naming what was not found.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 413 for a body over `limit` bytes.
    #[must_use]
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {limit} bytes"),
        )
    }

    /// 415.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        )
    }

    /// 429 with a wait time (rounded up to whole seconds, at least one).
    #[must_use]
    pub fn too_many_requests(retry_after: Duration) -> Self {
        let mut seconds = retry_after.as_secs();
        if retry_after.subsec_nanos() > 0 || seconds == 0 {
            seconds += 1;
        }
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
        }
    }

    /// 503.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500 with a generic message; the cause is for the log only.
    #[must_use]
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
    }

    /// The status this error answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field details.
    #[must_use]
    pub fn details(&self) -> &[FieldDetail] {
        &self.details
    }

    /// The body this error serializes to.
    #[must_use]
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.to_string(),
            details: self.details.clone(),
            retry_after: self.retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED && self.message != INVALID_SIGNATURE {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what } => Self::not_found(format!("Not found: {what}")),
            StoreError::Conflict { what } => Self::conflict(format!("Conflict: {what}")),
            StoreError::Invalid { what } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, what),
            StoreError::LeaseLost { .. } => {
                Self::conflict("The job changed while the request ran; try again")
            }
            StoreError::Unavailable { .. } => {
                tracing::warn!(error = %error, "store unavailable");
                Self::unavailable("Storage is unavailable; try again later")
            }
            other => {
                tracing::error!(error = %other, "store failed");
                Self::internal()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::unsupported_media_type(),
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The JSON body does not have the expected fields",
            )
            .with_details(vec![FieldDetail::new("body", e.body_text())]),
            JsonRejection::JsonSyntaxError(e) => Self::bad_request(
                "The body is not valid JSON",
                vec![FieldDetail::new("body", e.body_text())],
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large")
            }
            other => Self::bad_request(other.body_text(), Vec::new()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(
            "Invalid query string",
            vec![FieldDetail::new("query", rejection.body_text())],
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request(
            "Invalid path",
            vec![FieldDetail::new("path", rejection.body_text())],
        )
    }
}

impl ApiError {
    fn with_details(mut self, details: Vec<FieldDetail>) -> Self {
        self.details = details;
        self
    }

    /// Replaces the message, keeping status, details and wait time.
    pub fn set_message(&mut self, message: impl Into<Cow<'static, str>>) {
        self.message = message.into();
    }
}

/// A JSON body extractor whose rejections answer in the [`ErrorBody`] shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// A query-string extractor whose rejections answer in the [`ErrorBody`] shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A path extractor whose rejections answer in the [`ErrorBody`] shape.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The answer to a method a route does not support.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(
            ApiError::too_many_requests(Duration::from_millis(1)).retry_after,
            Some(1)
        );
        assert_eq!(
            ApiError::too_many_requests(Duration::from_millis(2500)).retry_after,
            Some(3)
        );
        assert_eq!(
            ApiError::too_many_requests(Duration::from_secs(60)).retry_after,
            Some(60)
        );
    }

    #[test]
    fn backend_errors_are_not_echoed() {
        let error = ApiError::from(StoreError::backend("select secret_table", "password=x"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.message(), "Internal error");
    }

    #[test]
    fn too_many_requests_sets_the_header() {
        let response = ApiError::too_many_requests(Duration::from_secs(7)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
