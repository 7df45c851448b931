//! One GET against FOSSA: concurrency limit, span, metric, status classification, bounded
//! body read, and the client's own short retries.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use compliance_core::metrics::SYNC_FOSSA_API_DURATION;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::Semaphore;
use tracing::{field, Instrument};

use crate::config::{ConfigError, FossaConfig};
use crate::error::{FossaError, TokenProblem, TransportKind};
use crate::model::ErrorBody;
use crate::retry_after::parse_retry_after;

/// Path template of the project list endpoint (metric and span label).
pub const PROJECTS: &str = "/api/v2/projects";
/// Path template of the issues endpoint.
pub const ISSUES: &str = "/api/v2/issues";
/// Path template of the v1 dependencies endpoint.
pub const DEPENDENCIES: &str = "/api/revisions/{locator}/dependencies";

/// Error bodies are only read this far: enough for FOSSA's JSON, not for a proxy's page.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// A successful answer.
pub(crate) enum Answer {
    /// 2xx other than 202, with its body.
    Ok(Bytes),
    /// 202: FOSSA is still analysing.
    Accepted {
        message: Option<String>,
        retry_after: Option<Duration>,
    },
}

/// The HTTP side of the client, shared by every fetch.
pub(crate) struct Http {
    client: reqwest::Client,
    config: Arc<FossaConfig>,
    permits: Semaphore,
    has_token: bool,
    base: String,
}

impl Http {
    pub(crate) fn new(config: Arc<FossaConfig>) -> Result<Self, ConfigError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = &config.token {
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
                .map_err(|_| ConfigError::InvalidToken)?;
            // Keeps the value out of hyper's and reqwest's own debug output.
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }

        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .read_timeout(config.read_timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(ConfigError::Http)?;

        Ok(Self {
            client,
            permits: Semaphore::new(config.max_concurrency.max(1)),
            has_token: config
                .token
                .as_ref()
                .is_some_and(|t| !t.expose().is_empty()),
            base: config.base(),
            config,
        })
    }

    pub(crate) fn config(&self) -> &FossaConfig {
        &self.config
    }

    /// GETs `base + path` with `query`, retrying transient failures up to
    /// `request_retries` times when the wait is short.
    pub(crate) async fn get(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Answer, FossaError> {
        let url = format!("{}{path}", self.base);
        let mut attempt: u32 = 1;
        loop {
            let span = tracing::debug_span!(
                "fossa_request",
                method = "GET",
                path = endpoint,
                attempt,
                status = field::Empty,
            );
            let result = self
                .attempt(endpoint, &url, query)
                .instrument(span.clone())
                .await;

            let error = match result {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            let Some(wait) = self.inline_wait(&error, attempt) else {
                return Err(error);
            };
            span.in_scope(|| {
                tracing::debug!(error = %error, wait_ms = wait.as_millis() as u64, "retrying fossa request");
            });
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// How long to wait before trying again inside the client, or `None` to give up.
    fn inline_wait(&self, error: &FossaError, attempt: u32) -> Option<Duration> {
        if !error.is_transient() || attempt > self.config.request_retries {
            return None;
        }
        let wait = error.retry_after().unwrap_or_else(|| {
            // Full jitter over an exponentially growing window.
            let window = self
                .config
                .retry_base_delay
                .saturating_mul(1 << (attempt - 1).min(16));
            let max = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
            Duration::from_millis(rand::rng().random_range(0..=max))
        });
        (wait <= self.config.max_inline_retry_wait).then_some(wait)
    }

    async fn attempt(
        &self,
        endpoint: &'static str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Answer, FossaError> {
        // The semaphore is never closed, so acquiring can only fail in theory; going ahead
        // without a permit then is better than failing the fetch.
        let _permit = self.permits.acquire().await.ok();
        let started = Instant::now();

        let result = self.exchange(endpoint, url, query).await;

        metrics::histogram!(SYNC_FOSSA_API_DURATION, "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        if let Err(error) = &result {
            tracing::debug!(error = %error, "fossa request failed");
        }
        result
    }

    async fn exchange(
        &self,
        endpoint: &'static str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Answer, FossaError> {
        let transport = |source: reqwest::Error| FossaError::Transport {
            endpoint,
            kind: TransportKind::of(&source),
            source: source.without_url(),
        };

        let mut response = self
            .client
            .get(url)
            .query(query)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now(), self.config.retry_after_cap));

        if status.is_success() && status != StatusCode::ACCEPTED {
            let body = read_body(&mut response, self.config.max_page_bytes)
                .await
                .map_err(|e| match e {
                    BodyError::Transport(source) => transport(source),
                    BodyError::TooLarge(limit) => FossaError::TooLarge { endpoint, limit },
                })?;
            return Ok(Answer::Ok(body));
        }

        // Error and 202 bodies are small; a failure to read one only costs the detail.
        let body = read_body(&mut response, ERROR_BODY_LIMIT).await.ok();
        if status == StatusCode::ACCEPTED {
            let message = body
                .as_deref()
                .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok())
                .and_then(|b| b.message);
            return Ok(Answer::Accepted {
                message,
                retry_after,
            });
        }

        let detail = body.as_deref().and_then(summarize_body);
        Err(match status.as_u16() {
            401 | 403 => FossaError::Unauthorized {
                endpoint,
                status: status.as_u16(),
                problem: match (status.as_u16(), self.has_token) {
                    (_, false) => TokenProblem::Missing,
                    (401, true) => TokenProblem::Invalid,
                    _ => TokenProblem::Forbidden,
                },
                detail: detail.map(|d| self.redact(d)),
            },
            // Limitation: a 404 is permanent, as the retry policy wants; a webhook that
            // arrives before FOSSA has registered its revision fails instead of waiting.
            404 | 410 => FossaError::NotFound {
                endpoint,
                what: String::new(),
                detail,
            },
            429 => FossaError::RateLimited {
                endpoint,
                retry_after,
            },
            408 | 500..=599 => FossaError::Server {
                endpoint,
                status: status.as_u16(),
                detail,
                retry_after,
            },
            other => FossaError::Rejected {
                endpoint,
                status: other,
                detail,
            },
        })
    }

    /// Removes the token from text a server sent back, in case it echoes the header.
    fn redact(&self, text: String) -> String {
        match &self.config.token {
            Some(token) if token.expose().len() >= 4 && text.contains(token.expose()) => {
                text.replace(token.expose(), "***")
            }
            _ => text,
        }
    }
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge(usize),
}

/// Reads a whole body chunk by chunk, refusing more than `limit` bytes.
async fn read_body(response: &mut reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    if hint > limit {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(hint);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A short description of an error body: FOSSA's JSON message, short plain text, or its size.
/// Proxies answer with HTML pages, which are not worth quoting.
fn summarize_body(body: &[u8]) -> Option<String> {
    if body.trim_ascii().is_empty() {
        return None;
    }
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        if let Some(message) = error.message {
            let mut text = message;
            if let Some(name) = error.name {
                text = format!("{name}: {text}");
            }
            if let Some(uuid) = error.uuid {
                text = format!("{text} (FOSSA error id {uuid})");
            }
            return Some(truncate(&text, 300));
        }
    }
    match std::str::from_utf8(body) {
        Ok(text) if !text.contains('<') && text.len() <= 300 => Some(text.trim().to_owned()),
        _ => Some(format!("non-JSON body of {} bytes", body.len())),
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_of_error_bodies() {
        let fossa = br#"{"uuid":"u-1","code":2010,"message":"API token is invalid","name":"UnauthorizedError","httpStatusCode":401}"#;
        assert_eq!(
            summarize_body(fossa).unwrap(),
            "UnauthorizedError: API token is invalid (FOSSA error id u-1)"
        );
        assert_eq!(summarize_body(b"Not Found").unwrap(), "Not Found");
        assert_eq!(
            summarize_body(b"<html><body>502 Bad Gateway</body></html>").unwrap(),
            "non-JSON body of 41 bytes"
        );
        assert_eq!(summarize_body(b"  \n"), None);
        assert_eq!(
            summarize_body(br#"{"message":"Forbidden"}"#).unwrap(),
            "Forbidden"
        );
    }
}
