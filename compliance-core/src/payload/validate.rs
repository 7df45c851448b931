//! Walks the parsed JSON and checks every field, collecting all errors rather than stopping
//! at the first (serde's derive would stop at the first).

use serde_json::{Map, Value};

use super::{
    FieldError, Metadata, PayloadError, Pipeline, Repository, Scan, ScanStatus, ValidatedWebhook,
    SCAN_COMPLETED_EVENT,
};
use crate::clock::Timestamp;
use crate::repo_url::{RepoUrl, MAX_URL_CHARS};

/// Longest name-like string (branch, name, provider, ids).
const MAX_NAME_CHARS: usize = 255;
/// Accepted commit id lengths: abbreviated SHA-1 up to a full SHA-256 object id.
const REVISION_HEX_DIGITS: std::ops::RangeInclusive<usize> = 6..=64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Required,
    Optional,
}

/// Collects field errors while reading values out of the JSON tree.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Checker {
    fn error(&mut self, field: String, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// The value at `key`; `null` counts as absent. A required absent field is an error.
    fn present<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        field: &str,
        key: &str,
        presence: Presence,
    ) -> Option<&'v Value> {
        match object.get(key) {
            None | Some(Value::Null) => {
                if presence == Presence::Required {
                    self.error(field.to_owned(), "is required");
                }
                None
            }
            Some(value) => Some(value),
        }
    }

    fn object<'v>(
        &mut self,
        parent: &'v Map<String, Value>,
        prefix: &str,
        key: &str,
        presence: Presence,
    ) -> Option<&'v Map<String, Value>> {
        let field = path(prefix, key);
        match self.present(parent, &field, key, presence)? {
            Value::Object(object) => Some(object),
            other => {
                self.error(field, format!("must be an object, found {}", kind(other)));
                None
            }
        }
    }

    /// A non-blank string of at most `max_chars` characters without control characters,
    /// trimmed.
    fn string(
        &mut self,
        parent: &Map<String, Value>,
        prefix: &str,
        key: &str,
        presence: Presence,
        max_chars: usize,
    ) -> Option<String> {
        let field = path(prefix, key);
        let value = self.present(parent, &field, key, presence)?;
        let Value::String(text) = value else {
            self.error(field, format!("must be a string, found {}", kind(value)));
            return None;
        };
        let text = text.trim();
        if text.is_empty() {
            self.error(field, "must not be empty");
            return None;
        }
        if text.chars().count() > max_chars {
            self.error(field, format!("must be at most {max_chars} characters"));
            return None;
        }
        if text.chars().any(char::is_control) {
            self.error(field, "must not contain control characters");
            return None;
        }
        Some(text.to_owned())
    }

    fn boolean(&mut self, parent: &Map<String, Value>, prefix: &str, key: &str) -> Option<bool> {
        let field = path(prefix, key);
        match self.present(parent, &field, key, Presence::Optional)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(field, format!("must be a boolean, found {}", kind(other)));
                None
            }
        }
    }

    fn event(&mut self, body: &Map<String, Value>) -> Option<String> {
        let event = self.string(body, "", "event", Presence::Required, MAX_NAME_CHARS)?;
        if event == SCAN_COMPLETED_EVENT {
            Some(event)
        } else {
            self.error(
                "event".to_owned(),
                format!("must be \"{SCAN_COMPLETED_EVENT}\""),
            );
            None
        }
    }

    fn timestamp(
        &mut self,
        body: &Map<String, Value>,
        header_timestamp: Option<Timestamp>,
    ) -> Option<Timestamp> {
        let presence = if header_timestamp.is_some() {
            Presence::Optional
        } else {
            Presence::Required
        };
        let field_was_sent = !matches!(body.get("timestamp"), None | Some(Value::Null));
        let Some(text) = self.string(body, "", "timestamp", presence, 64) else {
            return if field_was_sent {
                None
            } else {
                header_timestamp
            };
        };
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(t.to_utc()),
            Err(_) => {
                self.error(
                    "timestamp".to_owned(),
                    "must be an ISO 8601 date-time with offset, such as 2025-01-15T10:35:00Z",
                );
                None
            }
        }
    }

    fn repository(&mut self, body: &Map<String, Value>) -> Option<Repository> {
        let repo = self.object(body, "", "repository", Presence::Required)?;
        let p = "repository";
        let url = self
            .string(repo, p, "url", Presence::Required, MAX_URL_CHARS)
            .and_then(|text| match RepoUrl::parse(&text) {
                Ok(url) => Some(url),
                Err(e) => {
                    self.error(
                        path(p, "url"),
                        format!("must be a repository URL ({})", e.reason()),
                    );
                    None
                }
            });
        let name = self.string(repo, p, "name", Presence::Optional, MAX_NAME_CHARS);
        let provider = self.string(repo, p, "provider", Presence::Optional, MAX_NAME_CHARS);

        let url = url?;
        let name = name.unwrap_or_else(|| url.name().to_owned());
        Some(Repository {
            name,
            url,
            provider,
        })
    }

    fn scan(&mut self, body: &Map<String, Value>) -> Option<Scan> {
        let scan = self.object(body, "", "scan", Presence::Required)?;
        let p = "scan";
        let revision = self
            .string(scan, p, "revision", Presence::Required, MAX_NAME_CHARS)
            .and_then(|rev| {
                let plausible = REVISION_HEX_DIGITS.contains(&rev.len())
                    && rev.bytes().all(|b| b.is_ascii_hexdigit());
                if plausible {
                    Some(rev.to_ascii_lowercase())
                } else {
                    self.error(
                        path(p, "revision"),
                        "must be a commit id of 6 to 64 hexadecimal characters",
                    );
                    None
                }
            });
        let branch = self.string(scan, p, "branch", Presence::Required, MAX_NAME_CHARS);
        let status = self
            .string(scan, p, "status", Presence::Required, MAX_NAME_CHARS)
            .and_then(|status| match status.as_str() {
                "passed" => Some(ScanStatus::Passed),
                "failed" => Some(ScanStatus::Failed),
                _ => {
                    self.error(path(p, "status"), "must be \"passed\" or \"failed\"");
                    None
                }
            });
        let issues_found = self.boolean(scan, p, "issues_found");

        Some(Scan {
            revision: revision?,
            branch: branch?,
            status: status?,
            issues_found,
        })
    }

    fn pipeline(&mut self, body: &Map<String, Value>) -> Option<Pipeline> {
        let pipeline = self.object(body, "", "pipeline", Presence::Optional)?;
        let p = "pipeline";
        let id = self.string(pipeline, p, "id", Presence::Optional, MAX_NAME_CHARS);
        let url = self
            .string(pipeline, p, "url", Presence::Optional, MAX_URL_CHARS)
            .and_then(|text| {
                let url = web_url(&text);
                if url.is_none() {
                    self.error(path(p, "url"), "must be an http or https URL");
                }
                url
            });
        let provider = self.string(pipeline, p, "provider", Presence::Optional, MAX_NAME_CHARS);
        Some(Pipeline { id, url, provider })
    }

    fn metadata(&mut self, body: &Map<String, Value>) -> Option<Metadata> {
        let metadata = self.object(body, "", "metadata", Presence::Optional)?;
        let p = "metadata";
        Some(Metadata {
            triggered_by: self.string(
                metadata,
                p,
                "triggered_by",
                Presence::Optional,
                MAX_NAME_CHARS,
            ),
            actor: self.string(metadata, p, "actor", Presence::Optional, MAX_NAME_CHARS),
        })
    }
}

/// A link the dashboard may render: http or https with a host, in the parser's normal form
/// (so `https:/host` is kept as `https://host/`, the link a browser would follow) and without
/// user info. Anything else (`javascript:` included) is refused.
fn web_url(text: &str) -> Option<String> {
    let mut url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    // Both only fail for URLs that cannot have credentials, which http(s) with a host can.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url.into())
}

pub(super) fn webhook(
    value: &Value,
    header_timestamp: Option<Timestamp>,
) -> Result<ValidatedWebhook, PayloadError> {
    let Value::Object(body) = value else {
        return Err(PayloadError::Invalid(vec![FieldError::new(
            "body",
            format!("must be a JSON object, found {}", kind(value)),
        )]));
    };

    let mut checker = Checker::default();
    let event = checker.event(body);
    let timestamp = checker.timestamp(body, header_timestamp);
    let repository = checker.repository(body);
    let scan = checker.scan(body);
    let pipeline = checker.pipeline(body);
    let metadata = checker.metadata(body);

    // Every `None` of a required part has recorded an error; the errors decide.
    match (event, timestamp, repository, scan) {
        (Some(event), Some(timestamp), Some(repository), Some(scan))
            if checker.errors.is_empty() =>
        {
            Ok(ValidatedWebhook {
                event,
                timestamp,
                repository,
                scan,
                pipeline,
                metadata,
            })
        }
        _ => Err(PayloadError::Invalid(checker.errors)),
    }
}
