//! The reference server's configuration: every flag is also an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Which parts of the product this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// HTTP API, WebSocket hub and sync workers.
    Serve,
    /// Only the HTTP API and WebSocket hub (scale out with separate workers).
    Api,
    /// Only the sync workers (and the sweeper and scheduler).
    Worker,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object a line.
    Json,
}

/// Webhook-driven FOSSA compliance sync: the reference server.
#[derive(Clone, Parser)]
#[command(name = "compliance-server", version, about)]
pub struct Config {
    /// Which parts to run.
    #[arg(long, env = "COMPLIANCE_ROLE", value_enum, default_value = "serve")]
    pub role: Role,

    /// Address to listen on. A non-loopback address needs API tokens and a webhook secret.
    #[arg(long, env = "COMPLIANCE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Database: `sqlite://path` (default, a file in the working directory) or
    /// `postgres://…` (feature `postgres`).
    #[arg(
        long,
        env = "COMPLIANCE_DATABASE_URL",
        default_value = "sqlite://compliance.db"
    )]
    pub database_url: String,

    /// SQLite durability: `normal` survives a killed process, `full` survives power loss.
    #[arg(long, env = "COMPLIANCE_SQLITE_SYNCHRONOUS", default_value = "normal")]
    pub sqlite_synchronous: String,

    /// Job queue: `store` (the database's own, default) or `redis://…` (feature `redis`).
    #[arg(long, env = "COMPLIANCE_QUEUE", default_value = "store")]
    pub queue: String,

    /// Prefix of every Redis key and channel (queue and notifier), so that several
    /// deployments can share one Redis.
    #[arg(
        long,
        env = "COMPLIANCE_REDIS_KEY_PREFIX",
        default_value = "compliance:"
    )]
    pub redis_key_prefix: String,

    /// Event fan-out between instances: `local` (one process, default), `postgres` (the
    /// database's LISTEN/NOTIFY) or `redis://…`.
    #[arg(long, env = "COMPLIANCE_NOTIFIER", default_value = "local")]
    pub notifier: String,

    /// Webhook secrets, comma separated; several at once during a rotation. Each may be
    /// `id:secret`.
    #[arg(
        long,
        env = "COMPLIANCE_WEBHOOK_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_secrets: Vec<String>,

    /// Accepted clock skew of webhook timestamps, in seconds, both directions.
    #[arg(long, env = "COMPLIANCE_WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: u64,

    /// API tokens with scope read, comma separated.
    #[arg(
        long,
        env = "COMPLIANCE_READ_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub read_tokens: Vec<String>,

    /// API tokens with scope admin, comma separated.
    #[arg(
        long,
        env = "COMPLIANCE_ADMIN_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_tokens: Vec<String>,

    /// FOSSA API base URL.
    #[arg(long, env = "FOSSA_BASE_URL", default_value = "https://app.fossa.com")]
    pub fossa_base_url: String,

    /// FOSSA API token (a full token, not push-only).
    #[arg(long, env = "FOSSA_API_KEY", hide_env_values = true)]
    pub fossa_api_key: Option<String>,

    /// Sync workers in this process.
    #[arg(long, env = "COMPLIANCE_WORKERS", default_value_t = 4)]
    pub workers: usize,

    /// Webhooks per second allowed per source IP (burst is ten times this).
    #[arg(long, env = "COMPLIANCE_RATE_PER_IP", default_value_t = 50)]
    pub rate_per_ip: u32,

    /// Webhooks per second allowed per repository (burst is ten times this).
    #[arg(long, env = "COMPLIANCE_RATE_PER_REPO", default_value_t = 10)]
    pub rate_per_repo: u32,

    /// Queue depth above which webhooks are answered 429.
    #[arg(long, env = "COMPLIANCE_MAX_QUEUE_DEPTH", default_value_t = 100_000)]
    pub max_queue_depth: u64,

    /// Components whose last sync is older than this many seconds get a scheduled sync.
    /// 0 turns the safety net off.
    #[arg(long, env = "COMPLIANCE_RESYNC_AFTER_SECS", default_value_t = 24 * 3600)]
    pub resync_after_secs: u64,

    /// Days to keep webhook events and finished jobs.
    #[arg(long, env = "COMPLIANCE_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u64,

    /// Log format.
    #[arg(
        long,
        env = "COMPLIANCE_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,

    /// Demo mode: start the FOSSA simulator, register sample components, print a login link
    /// and a curl command that triggers a scan.
    #[arg(long, env = "COMPLIANCE_DEMO")]
    pub demo: bool,

    /// In demo mode, send signed webhooks every few seconds so the dashboard moves.
    #[arg(long, env = "COMPLIANCE_DEMO_TRAFFIC")]
    pub demo_traffic: bool,

    /// Directory for screenshots and other artefacts the demo writes.
    #[arg(long, env = "COMPLIANCE_DATA_DIR", default_value = ".")]
    pub data_dir: PathBuf,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets and tokens are counted, never shown.
        f.debug_struct("Config")
            .field("role", &self.role)
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database_url))
            .field("queue", &redact_url(&self.queue))
            .field("notifier", &redact_url(&self.notifier))
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("read_tokens", &self.read_tokens.len())
            .field("admin_tokens", &self.admin_tokens.len())
            .field("fossa_base_url", &self.fossa_base_url)
            .field("fossa_api_key", &self.fossa_api_key.as_ref().map(|_| "***"))
            .field("workers", &self.workers)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The webhook timestamp tolerance.
    #[must_use]
    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.webhook_tolerance_secs)
    }

    /// Whether any API token is configured.
    #[must_use]
    pub fn has_tokens(&self) -> bool {
        self.read_tokens
            .iter()
            .chain(&self.admin_tokens)
            .any(|t| !t.trim().is_empty())
    }

    /// Refuses a public bind without tokens and a webhook secret.
    ///
    /// # Errors
    ///
    /// A message saying what to set.
    pub fn check_exposure(&self) -> Result<(), String> {
        if self.listen.ip().is_loopback() {
            return Ok(());
        }
        let mut missing = Vec::new();
        if !self.has_tokens() {
            missing.push("an API token (--admin-tokens / COMPLIANCE_ADMIN_TOKENS)");
        }
        if self.webhook_secrets.iter().all(|s| s.trim().is_empty()) {
            missing.push("a webhook secret (--webhook-secrets / COMPLIANCE_WEBHOOK_SECRETS)");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "refusing to listen on {} (not loopback) without {}",
                self.listen,
                missing.join(" and ")
            ))
        }
    }
}

/// A URL with any password replaced by `***`, for logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Setting a password only fails for URLs that cannot carry one.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut full = vec!["compliance-server"];
        full.extend_from_slice(args);
        Config::parse_from(full)
    }

    #[test]
    fn defaults_listen_on_loopback_3000_with_sqlite() {
        let config = parse(&[]);
        assert_eq!(config.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.database_url, "sqlite://compliance.db");
        assert!(config.check_exposure().is_ok());
    }

    #[test]
    fn public_bind_without_tokens_is_refused_with_what_to_set() {
        let config = parse(&["--listen", "0.0.0.0:3000"]);
        let err = config.check_exposure().unwrap_err();
        assert!(err.contains("COMPLIANCE_ADMIN_TOKENS"), "{err}");
        assert!(err.contains("COMPLIANCE_WEBHOOK_SECRETS"), "{err}");

        let config = parse(&[
            "--listen",
            "0.0.0.0:3000",
            "--admin-tokens",
            "t0ken",
            "--webhook-secrets",
            "s3cret",
        ]);
        assert!(config.check_exposure().is_ok());
    }

    #[test]
    fn debug_output_hides_secrets_and_passwords() {
        let config = parse(&[
            "--admin-tokens",
            "very-secret-token",
            "--webhook-secrets",
            "hmac-secret",
            "--database-url",
            "postgres://app:db-password@db/compliance",
        ]);
        let shown = format!("{config:?}");
        for secret in ["very-secret-token", "hmac-secret", "db-password"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }
}
