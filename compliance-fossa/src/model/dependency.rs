//! `GET /api/revisions/{locator}/dependencies` (v1): a bare JSON array, streamed.
//!
//! FOSSA sends the 200 status before the body is complete; when something fails midway it
//! appends `{"error": …}` to what it already wrote. [`decode_dependencies_page`] therefore
//! treats a trailing or embedded error object, and a body that stops early, as a failed page
//! and never as a short list.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::error::FossaError;
use crate::http::DEPENDENCIES;

/// Text borrowed from the response body when it has no escapes, owned otherwise.
///
/// `Option<Cow<str>>` with `#[serde(borrow)]` always copies; this wrapper does not, which
/// keeps decoding of large dependency pages fast.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// One element of the v1 dependency array (the fields the sync reads).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawDependency<'a> {
    /// The locator split into parts; all null for the `NULL` placeholder.
    #[serde(borrow)]
    pub loc: Option<DependencyLoc<'a>>,
    /// `fetcher+package$revision`, or `NULL` for an unresolved placeholder.
    #[serde(borrow)]
    pub locator: Option<Text<'a>>,
    /// Depth in the tree: 1 = direct.
    pub depth: Option<u32>,
    /// The lock entry; its `depth` is used when the top-level one is missing.
    #[serde(rename = "DependencyLock")]
    pub dependency_lock: Option<DependencyLock>,
    /// Whether FOSSA resolved the package.
    pub resolved: Option<bool>,
    /// Ignored in FOSSA.
    pub ignored: Option<bool>,
    /// Licenses found in the package.
    #[serde(borrow)]
    pub licenses: Option<Vec<DependencyLicense<'a>>>,
    /// The package's project entry (display title).
    #[serde(borrow)]
    pub project: Option<DependencyProject<'a>>,
    /// Set only on FOSSA's in-stream error object.
    pub error: Option<serde_json::Value>,
}

/// `loc` of a dependency.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DependencyLoc<'a> {
    /// npm, pip, mvn, go, cargo, gem, …
    #[serde(borrow)]
    pub fetcher: Option<Text<'a>>,
    /// Package name.
    #[serde(borrow)]
    pub package: Option<Text<'a>>,
    /// Version.
    #[serde(borrow)]
    pub revision: Option<Text<'a>>,
}

/// `DependencyLock` of a dependency.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct DependencyLock {
    /// Depth in the tree.
    pub depth: Option<u32>,
}

/// One entry of `licenses[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLicense<'a> {
    /// SPDX-like id (`MIT`, `GPL-3.0`).
    #[serde(borrow)]
    pub license_id: Option<Text<'a>>,
    /// Ignored in FOSSA.
    pub ignored: Option<bool>,
}

/// `project` of a dependency.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DependencyProject<'a> {
    /// Display title.
    #[serde(borrow)]
    pub title: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct InStreamError {
    error: serde_json::Value,
}

/// Decodes one page of the v1 dependencies endpoint, borrowing strings from `bytes`.
///
/// # Errors
///
/// - [`FossaError::InStream`] when FOSSA appended an `{"error": …}` object, after the array,
///   inside it, or in place of its end.
/// - [`FossaError::Decode`] when the body is cut off or does not have the documented shape
///   (naming the field).
pub fn decode_dependencies_page(bytes: &[u8]) -> Result<Vec<RawDependency<'_>>, FossaError> {
    let mut stream =
        serde_json::Deserializer::from_slice(bytes).into_iter::<Vec<RawDependency<'_>>>();
    match stream.next() {
        Some(Ok(items)) => {
            let rest = bytes
                .get(stream.byte_offset()..)
                .unwrap_or_default()
                .trim_ascii();
            if !rest.is_empty() {
                return Err(in_stream_error(rest).unwrap_or_else(|| FossaError::Decode {
                    endpoint: DEPENDENCIES,
                    detail: format!("{} unexpected bytes after the dependency array", rest.len()),
                }));
            }
            if let Some(error) = items.iter().find_map(|d| d.error.as_ref()) {
                return Err(FossaError::InStream {
                    endpoint: DEPENDENCIES,
                    message: error_message(error),
                });
            }
            Ok(items)
        }
        Some(Err(e)) => Err(
            in_stream_error(bytes).unwrap_or_else(|| FossaError::Decode {
                endpoint: DEPENDENCIES,
                detail: super::explain::<Vec<RawDependency<'_>>>(bytes, &e),
            }),
        ),
        None => Err(FossaError::Decode {
            endpoint: DEPENDENCIES,
            detail: "empty body".to_owned(),
        }),
    }
}

/// Finds FOSSA's `{"error": …}` object in a body that did not decode as an array.
fn in_stream_error(bytes: &[u8]) -> Option<FossaError> {
    let key = bytes.windows(7).rposition(|w| w == b"\"error\"")?;
    let open = bytes.get(..key)?.iter().rposition(|&b| b == b'{')?;
    let between = bytes.get(open + 1..key)?;
    if !between.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut stream =
        serde_json::Deserializer::from_slice(bytes.get(open..)?).into_iter::<InStreamError>();
    let found = stream.next()?.ok()?;
    Some(FossaError::InStream {
        endpoint: DEPENDENCIES,
        message: error_message(&found.error),
    })
}

fn error_message(error: &serde_json::Value) -> String {
    let text = match error {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => map
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned),
        other => other.to_string(),
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str =
        r#"{"loc":{"fetcher":"npm","package":"a","revision":"1"},"locator":"npm+a$1","depth":1}"#;

    #[test]
    fn a_complete_array_decodes_and_borrows() {
        let body = format!("[{DEP},{DEP}]");
        let deps = decode_dependencies_page(body.as_bytes()).unwrap();
        assert_eq!(deps.len(), 2);
        let locator = deps[0].locator.as_ref().unwrap();
        assert!(matches!(locator.0, Cow::Borrowed("npm+a$1")));
    }

    #[test]
    fn escaped_strings_are_owned() {
        let body = br#"[{"locator":"go+github.com\/x\/y$v1"}]"#;
        let deps = decode_dependencies_page(body).unwrap();
        assert_eq!(&**deps[0].locator.as_ref().unwrap(), "go+github.com/x/y$v1");
    }

    #[test]
    fn an_error_after_the_array_fails_the_page() {
        let body = format!("[{DEP}]\n{{\"error\": \"database connection lost\"}}");
        let err = decode_dependencies_page(body.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, FossaError::InStream { message, .. } if message == "database connection lost"),
            "{err}"
        );
    }

    #[test]
    fn an_error_in_place_of_the_arrays_end_fails_the_page() {
        let body = format!("[{DEP},{DEP}{{\"error\":{{\"message\":\"timeout\"}}}}");
        let err = decode_dependencies_page(body.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, FossaError::InStream { message, .. } if message == "timeout"),
            "{err}"
        );
    }

    #[test]
    fn an_error_element_inside_the_array_fails_the_page() {
        let body = format!("[{DEP},{{\"error\":\"worker crashed\"}}]");
        let err = decode_dependencies_page(body.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, FossaError::InStream { message, .. } if message == "worker crashed"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_body_is_a_decode_error() {
        let body = format!("[{DEP},{DEP}");
        let cut = &body.as_bytes()[..body.len() - 10];
        let err = decode_dependencies_page(cut).unwrap_err();
        assert!(matches!(err, FossaError::Decode { .. }), "{err}");
        let err = decode_dependencies_page(b"").unwrap_err();
        assert!(matches!(err, FossaError::Decode { .. }), "{err}");
    }

    #[test]
    fn other_trailing_data_is_a_decode_error() {
        let body = format!("[{DEP}] garbage");
        let err = decode_dependencies_page(body.as_bytes()).unwrap_err();
        assert!(matches!(err, FossaError::Decode { .. }), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let body = format!("[{DEP},{{\"depth\":\"deep\"}}]");
        let text = decode_dependencies_page(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(text.contains("[1].depth"), "{text}");
    }

    #[test]
    fn an_object_instead_of_an_array_is_a_decode_error() {
        let err = decode_dependencies_page(br#"{"dependencies":[]}"#).unwrap_err();
        assert!(matches!(err, FossaError::Decode { .. }), "{err}");
    }
}
