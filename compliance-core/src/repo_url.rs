//! Repository URL normalization, so that every spelling of one repository finds one component.
//!
//! CI systems, humans and FOSSA spell one repository many ways. Every form below normalizes
//! to one key of the shape `host/path`, lower-cased, which the component directory matches on:
//!
//! | form | example | key |
//! | --- | --- | --- |
//! | https / http | `https://github.com/Acme/Payment-Service.git/` | `github.com/acme/payment-service` |
//! | scp-like ssh | `git@github.com:Acme/Payment-Service.git` | `github.com/acme/payment-service` |
//! | ssh URL | `ssh://git@github.com:22/acme/payment-service` | `github.com/acme/payment-service` |
//! | git protocol | `git://github.com/acme/payment-service` | `github.com/acme/payment-service` |
//! | no scheme (a key) | `github.com/acme/payment-service` | `github.com/acme/payment-service` |
//! | GitLab subgroups | `https://gitlab.com/group/sub/repo` | `gitlab.com/group/sub/repo` |
//! | Azure DevOps | `https://org@dev.azure.com/org/project/_git/repo` | `dev.azure.com/org/project/repo` |
//! | Azure DevOps ssh | `git@ssh.dev.azure.com:v3/org/project/repo` | `dev.azure.com/org/project/repo` |
//! | Visual Studio | `https://org.visualstudio.com/DefaultCollection/project/_git/repo` | `dev.azure.com/org/project/repo` |
//!
//! User info, port, query and fragment are dropped; `.git` and trailing slashes are removed;
//! host and path are lower-cased (the hosting services treat owner and repository names
//! case-insensitively); path segments are percent-decoded and re-encoded one canonical way,
//! so `My%20Project` and `my%20project` agree. Parsing a key gives the same key back.
//!
//! The host must be a domain with at least one dot, an IP address or `localhost`: a bare word
//! such as `foo` in `foo/bar` is far more likely a typo than a single-label intranet host.

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use url::Host;

/// The longest URL accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;

/// Characters a key's path segment keeps percent-encoded, so that decoding and re-encoding
/// always gives the same text (non-ASCII characters are always encoded).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A repository URL with its normalized matching key.
///
/// See the [module docs](self) for the forms that normalize to one key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RepoUrl {
    original: String,
    key: String,
    name: String,
}

/// Why a string is not a repository URL.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a repository URL: {reason}")]
pub struct RepoUrlError {
    reason: &'static str,
}

impl RepoUrlError {
    /// What is wrong, in words.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

fn fail<T>(reason: &'static str) -> Result<T, RepoUrlError> {
    Err(RepoUrlError { reason })
}

impl RepoUrl {
    /// Parses and normalizes `input`.
    ///
    /// # Errors
    ///
    /// [`RepoUrlError`] when `input` is empty, longer than [`MAX_URL_CHARS`], contains
    /// whitespace, has no host or no path, uses a scheme other than http, https, ssh or git
    /// (`file://` included), or is not a URL at all.
    pub fn parse(input: &str) -> Result<Self, RepoUrlError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return fail("empty");
        }
        if trimmed.chars().count() > MAX_URL_CHARS {
            return fail("longer than 2048 characters");
        }
        if trimmed.chars().any(char::is_whitespace) {
            return fail("contains whitespace");
        }
        if trimmed.chars().any(char::is_control) {
            return fail("contains control characters");
        }
        if trimmed.contains('\\') {
            return fail("contains a backslash");
        }

        let parts = locate(trimmed)?;
        let host = normalize_host(parts.host)?;
        let segments = path_segments(&parts.path)?;
        let (host, segments) = azure(host, segments)?;

        let name = segments
            .last()
            .map(|s| s.original.clone())
            .unwrap_or_default();
        let mut key = host;
        for segment in &segments {
            key.push('/');
            key.extend(utf8_percent_encode(&segment.lower, SEGMENT));
        }
        // Checked on the key too, so that a key always parses back to itself even when
        // percent-encoding made it longer than the input.
        if key.chars().count() > MAX_URL_CHARS {
            return fail("normalized form is longer than 2048 characters");
        }
        Ok(Self {
            original: parts.display,
            key,
            name,
        })
    }

    /// The URL as given, trimmed, with any credentials removed.
    ///
    /// For http, https and git URLs the whole user info goes (CI systems put tokens there);
    /// for ssh URLs only a password does, since the user name is part of the address.
    #[must_use]
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The normalized key, for example `github.com/acme/payment-service`.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The repository's name as the URL spells it: its last path segment, percent-decoded,
    /// `.git` removed, letter case kept (`Payment-Service` for `…/Acme/Payment-Service.git`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RepoUrl").field(&self.key).finish()
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// The host and path of a URL in any of the accepted forms, before normalization.
struct Located<'a> {
    host: &'a str,
    path: String,
    /// The input with credentials removed, for [`RepoUrl::original`].
    display: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Web,
    Ssh,
}

fn locate(input: &str) -> Result<Located<'_>, RepoUrlError> {
    if let Some((scheme, rest)) = input.split_once("://") {
        return locate_with_scheme(scheme, rest);
    }

    let colon = input.find(':');
    let slash = input.find('/');
    match (colon, slash) {
        // `user@host:path`, the scp-like form git accepts for ssh. A `[` before the colon is
        // an IPv6 literal, which only the schemeless `host/path` form carries.
        (Some(c), s) if s.is_none_or(|s| c < s) && !input.get(..c).unwrap_or("").contains('[') => {
            let authority = input.get(..c).unwrap_or("");
            let path = input.get(c + 1..).unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            Ok(Located {
                host,
                path: cut_query(path).to_owned(),
                display: input.to_owned(),
            })
        }
        (_, Some(s)) => {
            let authority = input.get(..s).unwrap_or("");
            let path = input.get(s..).unwrap_or("");
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let (host, _port) = split_port(host_port);
            let display = format!("{host_port}{path}");
            Ok(Located {
                host,
                path: cut_query(path).to_owned(),
                display,
            })
        }
        (_, None) => fail("not a URL"),
    }
}

fn locate_with_scheme<'a>(scheme: &str, rest: &'a str) -> Result<Located<'a>, RepoUrlError> {
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "https" | "http" | "git" | "git+https" | "git+http" => Scheme::Web,
        "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
        "file" => return fail("file URLs are not repository URLs"),
        other if !other.is_empty() && other.chars().all(is_scheme_char) => {
            return fail("unsupported scheme")
        }
        _ => return fail("not a URL"),
    };

    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or("");
    let after = rest.get(end..).unwrap_or("");
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let (host, port) = split_port(host_port);

    let mut path = cut_query(after).to_owned();
    if let Some(port) = port {
        if !port.chars().all(|c| c.is_ascii_digit()) {
            // `ssh://git@host:owner/repo` mixes the URL and scp forms; git itself refuses it,
            // but it is common enough in hand-written configuration to be worth understanding.
            if kind != Scheme::Ssh {
                return fail("port is not a number");
            }
            path = format!("{port}{path}");
        }
    }

    let display = match (kind, user) {
        (Scheme::Ssh, Some(user)) => {
            let name = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{name}@{host_port}{after}")
        }
        _ => format!("{scheme}://{host_port}{after}"),
    };
    Ok(Located {
        host,
        path,
        display,
    })
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// Splits `host[:port]` (with `[v6]:port` for IPv6 literals). The port is returned as text.
fn split_port(host_port: &str) -> (&str, Option<&str>) {
    if host_port.starts_with('[') {
        return match host_port.find(']') {
            Some(close) => {
                let host = host_port.get(..=close).unwrap_or(host_port);
                let port = host_port.get(close + 1..).and_then(|p| p.strip_prefix(':'));
                (host, port)
            }
            None => (host_port, None),
        };
    }
    match host_port.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    }
}

fn cut_query(path: &str) -> &str {
    path.find(['?', '#'])
        .and_then(|end| path.get(..end))
        .unwrap_or(path)
}

fn normalize_host(host: &str) -> Result<String, RepoUrlError> {
    if host.is_empty() {
        return fail("no host");
    }
    let Ok(parsed) = Host::parse(host) else {
        return fail("invalid host");
    };
    match parsed {
        Host::Domain(domain) => {
            let domain = domain.strip_suffix('.').unwrap_or(&domain);
            // An empty label (`a..b`, `.a.b`, or `a.b..`, whose one trailing dot goes above)
            // would make a key that does not parse back to itself.
            if domain.split('.').any(str::is_empty) {
                fail("host has an empty label")
            } else if domain.contains('.') || domain == "localhost" {
                Ok(domain.to_owned())
            } else {
                fail("host is not a fully qualified domain name")
            }
        }
        Host::Ipv4(_) | Host::Ipv6(_) => Ok(parsed.to_string()),
    }
}

/// One path segment, percent-decoded, in its original case and lower-cased.
struct Segment {
    original: String,
    lower: String,
}

impl Segment {
    fn new(original: String) -> Self {
        let lower = original.to_lowercase();
        Self { original, lower }
    }
}

fn path_segments(path: &str) -> Result<Vec<Segment>, RepoUrlError> {
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let Ok(decoded) = percent_decode_str(raw).decode_utf8() else {
            return fail("path is not valid UTF-8 after percent-decoding");
        };
        if decoded == "." || decoded == ".." {
            return fail("path has a '.' or '..' segment");
        }
        if decoded.chars().any(char::is_control) {
            return fail("path contains control characters");
        }
        segments.push(Segment::new(decoded.into_owned()));
    }

    let Some(last) = segments.pop() else {
        return fail("no path");
    };
    let name = strip_git_suffix(&last.original);
    if name.is_empty() {
        return fail("empty repository name");
    }
    if name == "." || name == ".." {
        return fail("path has a '.' or '..' segment");
    }
    segments.push(Segment::new(name.to_owned()));
    Ok(segments)
}

/// `name` without its `.git` suffixes: all of them, so that the key's name has none left to
/// lose when the key is parsed again (`repo.git.git` would otherwise key as `repo.git`,
/// which parses to `repo`; found by fuzzing).
fn strip_git_suffix(mut name: &str) -> &str {
    loop {
        let cut = name.len().saturating_sub(4);
        match (name.get(..cut), name.get(cut..)) {
            (Some(stem), Some(suffix)) if suffix.eq_ignore_ascii_case(".git") => name = stem,
            _ => return name,
        }
    }
}

const AZURE_HOST: &str = "dev.azure.com";

/// Rewrites every Azure DevOps form to `dev.azure.com/{org}/{project}/{repo}`; other hosts
/// pass through unchanged.
fn azure(host: String, segments: Vec<Segment>) -> Result<(String, Vec<Segment>), RepoUrlError> {
    let (host, segments) = azure_forms(host, segments)?;
    // `_git` only separates project from repository; left in a key it would read as that
    // separator when the key is parsed again (and Azure DevOps names cannot start with `_`).
    if host == AZURE_HOST && segments.iter().any(|s| s.lower == "_git") {
        return fail("Azure DevOps path must be {org}/{project}/_git/{repo}");
    }
    Ok((host, segments))
}

fn azure_forms(
    host: String,
    segments: Vec<Segment>,
) -> Result<(String, Vec<Segment>), RepoUrlError> {
    // Owned copies so the shape can be matched while `segments` is moved into the result.
    let owned: Vec<String> = segments.iter().map(|s| s.lower.clone()).collect();
    let lower: Vec<&str> = owned.iter().map(String::as_str).collect();

    if host == "ssh.dev.azure.com" || host == "vs-ssh.visualstudio.com" {
        return match lower.as_slice() {
            ["v3", _, _, _] => Ok((
                AZURE_HOST.to_owned(),
                segments.into_iter().skip(1).collect(),
            )),
            _ => fail("Azure DevOps ssh path must be v3/{org}/{project}/{repo}"),
        };
    }

    if host == AZURE_HOST {
        return match lower.as_slice() {
            [_, _, "_git", _] => Ok((host, drop_at(segments, 2))),
            // The repository named like its project may be addressed without the project.
            [_, "_git", _] => Ok((host, project_from_repo(drop_at(segments, 1)))),
            [_, _, _] => Ok((host, segments)),
            _ => fail("Azure DevOps path must be {org}/{project}/_git/{repo}"),
        };
    }

    if let Some(org) = host.strip_suffix(".visualstudio.com") {
        if org.is_empty() || org.contains('.') {
            return fail("Visual Studio host must be {org}.visualstudio.com");
        }
        let org = Segment::new(org.to_owned());
        let skip = usize::from(lower.first() == Some(&"defaultcollection"));
        let rest: Vec<&str> = lower.iter().skip(skip).copied().collect();
        let segments: Vec<Segment> = segments.into_iter().skip(skip).collect();
        let tail = match rest.as_slice() {
            [_, "_git", _] => drop_at(segments, 1),
            ["_git", _] => project_from_repo(drop_at(segments, 0)),
            _ => return fail("Visual Studio path must be {project}/_git/{repo}"),
        };
        let mut all = vec![org];
        all.extend(tail);
        return Ok((AZURE_HOST.to_owned(), all));
    }

    Ok((host, segments))
}

fn drop_at(segments: Vec<Segment>, index: usize) -> Vec<Segment> {
    segments
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, s)| s)
        .collect()
}

/// `[.., repo]` → `[.., repo, repo]`: the project takes the repository's name.
fn project_from_repo(mut segments: Vec<Segment>) -> Vec<Segment> {
    if let Some(repo) = segments.last() {
        let project = Segment::new(repo.original.clone());
        let at = segments.len().saturating_sub(1);
        segments.insert(at, project);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_suffix_is_stripped_in_any_case() {
        assert_eq!(strip_git_suffix("repo.git"), "repo");
        assert_eq!(strip_git_suffix("repo.GIT"), "repo");
        assert_eq!(strip_git_suffix(".git"), "");
        assert_eq!(strip_git_suffix("git"), "git");
        assert_eq!(strip_git_suffix("répo.git"), "répo");
        assert_eq!(strip_git_suffix("repo.git.GIT"), "repo");
        assert_eq!(strip_git_suffix(".git.git"), "");
    }

    #[test]
    fn a_name_with_several_git_suffixes_keys_as_a_fixed_point() {
        // Found by fuzzing: the key kept one `.git`, which the next parse removed.
        for url in [
            "https://github.com/acme/shop.git.git",
            "https://xn-.vx-ale/ale/\u{e4}/\u{f6}ttps://xn-.vx-ale/ale/\u{e4}/\u{f6}.git.git",
        ] {
            let key = RepoUrl::parse(url).unwrap().key().to_owned();
            assert!(!key.to_ascii_lowercase().ends_with(".git"), "{url}: {key}");
            assert_eq!(RepoUrl::parse(&key).unwrap().key(), key, "{url}");
        }
        assert_eq!(
            RepoUrl::parse("https://github.com/acme/shop.git.git")
                .unwrap()
                .key(),
            "github.com/acme/shop"
        );
    }

    #[test]
    fn hosts_with_an_empty_label_are_refused() {
        // Found by fuzzing: `githu..` normalized to the key host `githu.`, which then did
        // not parse back to itself.
        for url in [
            "githu..:11/acme/payment-service",
            "https://github..com/acme/shop",
            "https://.github.com/acme/shop",
            "https://github.com../acme/shop",
        ] {
            assert_eq!(
                RepoUrl::parse(url).map(|u| u.key().to_owned()),
                Err(RepoUrlError {
                    reason: "host has an empty label"
                }),
                "{url}"
            );
        }
        let fqdn = RepoUrl::parse("https://github.com./acme/shop").unwrap();
        assert_eq!(fqdn.key(), "github.com/acme/shop");
    }

    #[test]
    fn port_is_split_from_host_and_ipv6_literal() {
        assert_eq!(split_port("host:22"), ("host", Some("22")));
        assert_eq!(split_port("[::1]:22"), ("[::1]", Some("22")));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
        assert_eq!(split_port("host"), ("host", None));
    }
}
