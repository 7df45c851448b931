//! Best-effort reading of a body that may be invalid, so the event log can say what a
//! refused request was about.

use serde::Serialize;
use serde_json::Value;

use super::without_user_info;

/// Longest value kept by [`peek`], in characters; longer ones are cut.
const MAX_PEEK_CHARS: usize = 512;

/// What could be read from a body, each field independently; `None` where it is absent or
/// unreadable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PayloadPeek {
    /// `event`.
    pub event_type: Option<String>,
    /// `repository.url`, as sent but without user info.
    pub repository_url: Option<String>,
    /// `scan.revision`.
    pub revision: Option<String>,
    /// `scan.branch`.
    pub branch: Option<String>,
    /// `pipeline.id` (a number is written out).
    pub pipeline_id: Option<String>,
    /// `pipeline.url`, without user info.
    pub pipeline_url: Option<String>,
    /// `metadata.actor`.
    pub actor: Option<String>,
}

/// Reads what it can from `body`; never fails.
///
/// Unlike [`parse_webhook`](super::parse_webhook), values of the wrong type are written out
/// when they are numbers or booleans, invalid UTF-8 is replaced, and each value is cut to 512
/// characters. User info (where CI systems put tokens) is removed from URLs.
#[must_use]
pub fn peek(body: &[u8]) -> PayloadPeek {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return PayloadPeek::default();
    };
    PayloadPeek {
        event_type: text_at(&value, &["event"]),
        repository_url: text_at(&value, &["repository", "url"]).map(|u| without_user_info(&u)),
        revision: text_at(&value, &["scan", "revision"]),
        branch: text_at(&value, &["scan", "branch"]),
        pipeline_id: text_at(&value, &["pipeline", "id"]),
        pipeline_url: text_at(&value, &["pipeline", "url"]).map(|u| without_user_info(&u)),
        actor: text_at(&value, &["metadata", "actor"]),
    }
}

fn text_at(value: &Value, keys: &[&str]) -> Option<String> {
    let mut at = value;
    for key in keys {
        at = at.as_object()?.get(*key)?;
    }
    let text = match at {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    Some(text.chars().take(MAX_PEEK_CHARS).collect())
}
