//! FOSSA locators (`fetcher+package$revision`) and how they go into a URL.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Everything except RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded, so
/// a locator stays one path segment: `+`→`%2B`, `/`→`%2F`, `$`→`%24`, `:`→`%3A`.
///
/// `Url::path_segments_mut().push` is not enough: it leaves `+`, `$` and `:` as they are.
pub const LOCATOR_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A locator percent-encoded as one URL path segment.
#[must_use]
pub fn encode_segment(locator: &str) -> String {
    percent_encoding::utf8_percent_encode(locator, LOCATOR_SEGMENT).to_string()
}

/// The revision locator `project$revision`.
#[must_use]
pub fn revision_locator(project: &str, revision: &str) -> String {
    format!("{project}${revision}")
}

/// The bare revision FOSSA's `scope[revision]` wants, also when given a full revision
/// locator of `project` (FOSSA answers 404 to a full locator there).
#[must_use]
pub fn bare_revision<'a>(project: &str, revision: &'a str) -> &'a str {
    revision
        .strip_prefix(project)
        .and_then(|rest| rest.strip_prefix('$'))
        .unwrap_or(revision)
}

/// The revision part of a revision locator of `project`, for example the
/// `latestRevision.locator` of a project.
///
/// Splits after `project$` when the locator starts with it, else at the first `$` (as
/// fossa-cli's parser does); `None` when there is no revision part.
#[must_use]
pub fn revision_of<'a>(project: &str, revision_locator: &'a str) -> Option<&'a str> {
    let revision = revision_locator
        .strip_prefix(project)
        .and_then(|rest| rest.strip_prefix('$'))
        .or_else(|| revision_locator.split_once('$').map(|(_, r)| r))?;
    (!revision.is_empty()).then_some(revision)
}

/// A locator split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locator<'a> {
    /// The fetcher (`npm`, `pip`, `custom`, `git`, …); `None` for the `NULL` placeholder.
    pub fetcher: Option<&'a str>,
    /// The package (or project name).
    pub package: &'a str,
    /// The revision, when present.
    pub revision: Option<&'a str>,
}

impl<'a> Locator<'a> {
    /// Splits on the first `+`, then on the first `$` after it.
    #[must_use]
    pub fn parse(locator: &'a str) -> Self {
        let (fetcher, rest) = match locator.split_once('+') {
            Some((fetcher, rest)) => (Some(fetcher), rest),
            None => (None, locator),
        };
        let (package, revision) = match rest.split_once('$') {
            Some((package, revision)) => (package, Some(revision)),
            None => (rest, None),
        };
        Self {
            fetcher,
            package,
            revision,
        }
    }
}

impl fmt::Display for Locator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fetcher) = self.fetcher {
            write!(f, "{fetcher}+")?;
        }
        f.write_str(self.package)?;
        if let Some(revision) = self.revision {
            write!(f, "${revision}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "custom+48213/github.com/acme-corp/payments-api";

    #[test]
    fn encodes_as_one_segment() {
        assert_eq!(
            encode_segment("custom+1234/example"),
            "custom%2B1234%2Fexample"
        );
        assert_eq!(
            encode_segment("git+github.com/acme/payment-service$abc123"),
            "git%2Bgithub.com%2Facme%2Fpayment-service%24abc123"
        );
        assert_eq!(
            encode_segment("mvn+com.example:lib$1.0.0"),
            "mvn%2Bcom.example%3Alib%241.0.0"
        );
        assert_eq!(encode_segment("a b?#%~_-."), "a%20b%3F%23%25~_-.");
    }

    #[test]
    fn bare_revision_strips_the_project() {
        assert_eq!(bare_revision(PROJECT, "c41d9e0"), "c41d9e0");
        assert_eq!(
            bare_revision(PROJECT, &format!("{PROJECT}$c41d9e0")),
            "c41d9e0"
        );
        assert_eq!(bare_revision(PROJECT, "other$c41d9e0"), "other$c41d9e0");
    }

    #[test]
    fn revision_of_a_revision_locator() {
        let locator = revision_locator(PROJECT, "c41d9e0");
        assert_eq!(revision_of(PROJECT, &locator), Some("c41d9e0"));
        assert_eq!(revision_of("other+x", &locator), Some("c41d9e0"));
        assert_eq!(revision_of(PROJECT, PROJECT), None);
        assert_eq!(revision_of(PROJECT, &format!("{PROJECT}$")), None);
    }

    #[test]
    fn parses_and_displays() {
        let l = Locator::parse("go+github.com/pkg/errors$v0.9.1");
        assert_eq!(l.fetcher, Some("go"));
        assert_eq!(l.package, "github.com/pkg/errors");
        assert_eq!(l.revision, Some("v0.9.1"));
        assert_eq!(l.to_string(), "go+github.com/pkg/errors$v0.9.1");

        let null = Locator::parse("NULL");
        assert_eq!(null.fetcher, None);
        assert_eq!(null.package, "NULL");
        assert_eq!(null.revision, None);
    }
}
