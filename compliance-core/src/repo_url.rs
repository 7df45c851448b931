//! Repository URL normalization, so that every spelling of one repository finds one component.

use std::fmt;

/// A repository URL with its normalized matching key.
///
/// The key drops the scheme, user info, `.git` suffix and trailing slash, lower-cases the host,
/// and turns `git@host:path` and `ssh://` forms into `host/path`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RepoUrl {
    original: String,
    key: String,
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

impl RepoUrl {
    /// Parses and normalizes `input`.
    ///
    /// # Errors
    ///
    /// [`RepoUrlError`] when `input` is not a repository URL.
    pub fn parse(input: &str) -> Result<Self, RepoUrlError> {
        let original = input.trim();
        if original.is_empty() {
            return Err(RepoUrlError { reason: "empty" });
        }
        let key = normalize(original)?;
        Ok(Self {
            original: original.to_owned(),
            key,
        })
    }

    /// The URL as given (trimmed).
    #[must_use]
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The normalized key, for example `github.com/acme/payment-service`.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The repository's name: the last path segment of the key.
    #[must_use]
    pub fn name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
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

fn normalize(input: &str) -> Result<String, RepoUrlError> {
    // Limitation: first cut; the full set of forms (Azure DevOps, GitLab subgroups, user info in
    // https URLs, case rules) lands with the URL normalization work on the core issue.
    let rest = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))
        .or_else(|| input.strip_prefix("ssh://"))
        .or_else(|| input.strip_prefix("git://"))
        .unwrap_or(input);
    let rest = match rest.split_once('@') {
        Some((_, after)) => after,
        None => rest,
    };
    let rest = rest.replacen(':', "/", 1);
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let Some((host, path)) = rest.split_once('/') else {
        return Err(RepoUrlError { reason: "no path" });
    };
    if host.is_empty() || path.is_empty() {
        return Err(RepoUrlError { reason: "no host or path" });
    }
    Ok(format!("{}/{}", host.to_ascii_lowercase(), path.to_ascii_lowercase()))
}
