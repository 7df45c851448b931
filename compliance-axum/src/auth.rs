//! API tokens, login sessions and the scope extractors.
//!
//! Every route except the webhook (signed), `/healthz`, `/readyz` and the OpenAPI document
//! needs a token with scope `read`; registering components, triggering syncs and the
//! operator's repairs need `admin` (which includes `read`). A token comes as
//! `Authorization: Bearer <token>`, or through a session cookie that `POST /api/login`
//! sets in exchange for a token. The cookie carries a random session id mapped to the scope on
//! the server, never the token itself.
//!
//! Tokens are kept only as SHA-256 digests and compared in constant time against every
//! configured token; neither tokens nor session ids are ever logged or shown by `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::ApiState;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "compliance_session";

/// What a credential allows.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read every resource and follow live channels.
    Read,
    /// Everything `read` allows, plus registering components, triggering syncs, replaying
    /// events and redriving dead letters.
    Admin,
}

impl Scope {
    /// Whether a credential with this scope may do what needs `needed`.
    #[must_use]
    pub fn allows(self, needed: Self) -> bool {
        self >= needed
    }

    fn code(self) -> u8 {
        match self {
            Self::Read => 1,
            Self::Admin => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Read),
            2 => Some(Self::Admin),
            _ => None,
        }
    }
}

/// One configured API token.
#[derive(Clone)]
pub struct ApiToken {
    name: String,
    digest: [u8; 32],
    scope: Scope,
}

impl ApiToken {
    /// A token called `name` (for logs and audit) with `scope`. Only a digest of `token` is
    /// kept.
    pub fn new(name: impl Into<String>, token: impl AsRef<str>, scope: Scope) -> Self {
        Self {
            name: name.into(),
            digest: digest(token.as_ref()),
            scope,
        }
    }

    /// The token's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token's scope.
    #[must_use]
    pub fn scope(&self) -> Scope {
        self.scope
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("token", &"***")
            .finish()
    }
}

/// Whether the session cookie is marked `Secure` (sent over HTTPS only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieSecurity {
    /// `Secure`: browsers send it over HTTPS and to `localhost` only. The default.
    SecureOnly,
    /// No `Secure` attribute: for plain-HTTP deployments on a trusted network.
    AllowPlainHttp,
}

/// Who may call the API.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    tokens: Vec<ApiToken>,
    anonymous: Option<Scope>,
    session_ttl: Duration,
    max_sessions: usize,
    cookie: CookieSecurity,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl AuthConfig {
    /// No tokens yet: every protected route answers 401 until tokens are added.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tokens: Vec::new(),
            anonymous: None,
            session_ttl: Duration::from_secs(12 * 3600),
            max_sessions: 10_000,
            cookie: CookieSecurity::SecureOnly,
        }
    }

    /// Adds a token.
    #[must_use]
    pub fn token(mut self, name: impl Into<String>, token: impl AsRef<str>, scope: Scope) -> Self {
        self.tokens.push(ApiToken::new(name, token, scope));
        self
    }

    /// Grants `scope` to requests without credentials. Meant for a server bound to loopback
    /// during development; never use it on a reachable address.
    #[must_use]
    pub fn anonymous(mut self, scope: Scope) -> Self {
        self.anonymous = Some(scope);
        self
    }

    /// How long a login session lasts (default 12 hours).
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// How many sessions are kept at once (default 10 000); the oldest go first.
    #[must_use]
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max.max(1);
        self
    }

    /// Whether the session cookie is `Secure` (default [`CookieSecurity::SecureOnly`]).
    #[must_use]
    pub fn cookie_security(mut self, security: CookieSecurity) -> Self {
        self.cookie = security;
        self
    }

    /// The configured tokens (their digests only).
    #[must_use]
    pub fn tokens(&self) -> &[ApiToken] {
        &self.tokens
    }

    /// Whether requests without credentials are let in (see [`anonymous`](Self::anonymous)).
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.anonymous.is_some()
    }
}

struct Session {
    scope: Scope,
    expires: Instant,
}

/// Checks credentials and keeps login sessions.
pub(crate) struct Authenticator {
    config: AuthConfig,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub(crate) fn new(config: AuthConfig) -> Self {
        Self {
            config,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The scope of a presented token, checked against every configured token in constant
    /// time.
    pub(crate) fn check_token(&self, presented: &str) -> Option<Scope> {
        let presented = digest(presented);
        let mut code = 0u8;
        for token in &self.config.tokens {
            let matches = token.digest.ct_eq(&presented);
            code = u8::conditional_select(&code, &token.scope.code(), matches);
        }
        Scope::from_code(code)
    }

    /// The scope of a request: bearer token first, then session cookie, then anonymous.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Option<Scope> {
        if let Some(token) = bearer(headers) {
            return self.check_token(token);
        }
        if let Some(session) = session_cookie(headers) {
            if let Some(scope) = self.session(session) {
                return Some(scope);
            }
        }
        self.config.anonymous
    }

    /// Starts a session for `token`; the id to put in the cookie, and the scope.
    pub(crate) fn login(&self, token: &str) -> Option<(String, Scope)> {
        let scope = self.check_token(token)?;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let id = hex_string(&raw);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.len() >= self.config.max_sessions {
            sessions.retain(|_, s| s.expires > now);
        }
        while sessions.len() >= self.config.max_sessions {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| *k);
            match oldest {
                Some(key) => sessions.remove(&key),
                None => break,
            };
        }
        sessions.insert(
            digest(&id),
            Session {
                scope,
                expires: now + self.config.session_ttl,
            },
        );
        Some((id, scope))
    }

    /// Ends the session the request carries, if any.
    pub(crate) fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            sessions.remove(&digest(id));
        }
    }

    fn session(&self, id: &str) -> Option<Scope> {
        let key = digest(id);
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.scope),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// The `Set-Cookie` value for a new session.
    pub(crate) fn session_cookie_header(&self, id: &str) -> String {
        let secure = match self.config.cookie {
            CookieSecurity::SecureOnly => "; Secure",
            CookieSecurity::AllowPlainHttp => "",
        };
        format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.config.session_ttl.as_secs()
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub(crate) fn clear_cookie_header(&self) -> String {
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Proof that the request may read: any valid credential.
#[derive(Clone, Copy, Debug)]
pub struct ReadAccess(pub Scope);

/// Proof that the request may change things: a credential with scope `admin`.
#[derive(Clone, Copy, Debug)]
pub struct AdminAccess;

fn required(parts: &Parts, state: &ApiState, needed: Scope) -> Result<Scope, ApiError> {
    let scope = state
        .authenticator()
        .authenticate(&parts.headers)
        .ok_or_else(ApiError::unauthorized)?;
    if scope.allows(needed) {
        Ok(scope)
    } else {
        Err(ApiError::forbidden())
    }
}

impl<S> FromRequestParts<S> for ReadAccess
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = ApiState::from_ref(state);
        required(parts, &state, Scope::Read).map(ReadAccess)
    }
}

impl<S> FromRequestParts<S> for AdminAccess
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = ApiState::from_ref(state);
        required(parts, &state, Scope::Admin).map(|_| AdminAccess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> Authenticator {
        Authenticator::new(
            AuthConfig::new()
                .token("dashboard", "read-token-123", Scope::Read)
                .token("ops", "admin-token-456", Scope::Admin),
        )
    }

    fn headers(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn tokens_map_to_their_scope() {
        let auth = auth();
        assert_eq!(auth.check_token("read-token-123"), Some(Scope::Read));
        assert_eq!(auth.check_token("admin-token-456"), Some(Scope::Admin));
        assert_eq!(auth.check_token("admin-token-45"), None);
        assert_eq!(auth.check_token(""), None);
    }

    #[test]
    fn admin_includes_read() {
        assert!(Scope::Admin.allows(Scope::Read));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Admin));
    }

    #[test]
    fn bearer_header_is_read_case_insensitively() {
        let auth = auth();
        let h = headers(AUTHORIZATION, "bearer admin-token-456");
        assert_eq!(auth.authenticate(&h), Some(Scope::Admin));
        let h = headers(AUTHORIZATION, "Basic admin-token-456");
        assert_eq!(auth.authenticate(&h), None);
    }

    #[test]
    fn a_session_stands_for_the_token_until_logout() {
        let auth = auth();
        let (id, scope) = auth.login("read-token-123").unwrap();
        assert_eq!(scope, Scope::Read);
        assert!(!id.contains("read-token"));
        assert_eq!(id.len(), 64);

        let h = headers(COOKIE, &format!("theme=dark; {SESSION_COOKIE}={id}"));
        assert_eq!(auth.authenticate(&h), Some(Scope::Read));
        auth.logout(&h);
        assert_eq!(auth.authenticate(&h), None);
        assert!(auth.login("wrong").is_none());
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let auth = Authenticator::new(
            AuthConfig::new()
                .token("t", "token-1", Scope::Read)
                .session_ttl(Duration::ZERO)
                .max_sessions(2),
        );
        let (id, _) = auth.login("token-1").unwrap();
        let h = headers(COOKIE, &format!("{SESSION_COOKIE}={id}"));
        assert_eq!(auth.authenticate(&h), None);
        for _ in 0..5 {
            auth.login("token-1").unwrap();
        }
        assert!(auth.sessions.lock().unwrap().len() <= 2);
    }

    #[test]
    fn cookie_attributes_protect_the_session() {
        let auth = auth();
        let cookie = auth.session_cookie_header("abc");
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Strict"));
        assert!(cookie.contains("Secure"));
        assert!(cookie.starts_with("compliance_session=abc;"));
    }

    #[test]
    fn debug_output_never_shows_a_token() {
        let config = AuthConfig::new().token("ops", "super-secret-token", Scope::Admin);
        let shown = format!("{config:?} {:?}", Authenticator::new(config.clone()));
        assert!(!shown.contains("super-secret-token"));
        assert!(shown.contains("ops"));
    }

    #[test]
    fn anonymous_scope_applies_only_without_credentials() {
        let auth = Authenticator::new(
            AuthConfig::new()
                .token("t", "token-1", Scope::Admin)
                .anonymous(Scope::Read),
        );
        assert_eq!(auth.authenticate(&HeaderMap::new()), Some(Scope::Read));
        let wrong = headers(AUTHORIZATION, "Bearer nope");
        assert_eq!(auth.authenticate(&wrong), None);
    }
}
