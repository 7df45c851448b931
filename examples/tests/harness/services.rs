//! PostgreSQL and Redis for the fault suites, each test on its own: a database of its own
//! (whose connections alone it terminates) and a Redis user and key prefix of its own (whose
//! clients alone it kills). Other tests sharing the servers are left alone.
//!
//! The URLs come from `COMPLIANCE_TEST_POSTGRES_URL` and `COMPLIANCE_TEST_REDIS_URL`; a test
//! skips with a message where one is unset, and fails instead when
//! `COMPLIANCE_TEST_REQUIRE_SERVICES=1`.

use std::process::Command;

/// Whether a missing service fails the test rather than skipping it.
pub(crate) fn required() -> bool {
    std::env::var("COMPLIANCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The URL in `var`, or `None` after saying why the test skips (panics when required).
pub(crate) fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(!required(), "{var} is unset");
            println!("skipped: {var} is unset");
            None
        }
    }
}

/// Whether the server binary has `feature`; `None` after saying why the test skips
/// (panics when required).
pub(crate) fn feature(enabled: bool, feature: &str) -> Option<()> {
    if enabled {
        return Some(());
    }
    assert!(
        !required(),
        "compliance-server built without the {feature} feature"
    );
    println!("skipped: built without the {feature} feature (cargo test --features {feature})");
    None
}

/// A PostgreSQL database created for one test and dropped after it.
pub(crate) struct PgDatabase {
    /// The URL of the database `COMPLIANCE_TEST_POSTGRES_URL` names, for administration.
    admin: String,
    /// The database's name.
    pub(crate) name: String,
    /// Its URL, for the server.
    pub(crate) url: String,
}

impl PgDatabase {
    /// Creates `reliability_<label>_<random>` next to the database `base` names.
    pub(crate) fn create(base: &str, label: &str) -> Self {
        let name = format!("reliability_{label}_{:016x}", rand::random::<u64>());
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("COMPLIANCE_TEST_POSTGRES_URL has no database part"),
        };
        let db = Self {
            admin: base.to_owned(),
            name,
            url,
        };
        db.sql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    /// Runs `sql` on the administration database; returns psql's unaligned output.
    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                &self.admin,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Ends every server connection to this database (and to no other); returns how many.
    pub(crate) fn terminate_connections(&self) -> u64 {
        self.sql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))
        .parse()
        .expect("a count")
    }

    /// Lets connections to this database in, or keeps every new one out: with
    /// [`PgDatabase::terminate_connections`], an outage of this database alone.
    pub(crate) fn allow_connections(&self, allow: bool) {
        self.sql(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allow}",
            self.name
        ));
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-X",
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A Redis user of one test, allowed only keys and channels under its prefix, removed with
/// its keys after the test.
pub(crate) struct RedisUser {
    /// The URL `COMPLIANCE_TEST_REDIS_URL` gives, for administration.
    admin: String,
    /// The user's name.
    name: String,
    /// The key prefix the server is given.
    pub(crate) prefix: String,
    /// The URL the server connects with, as this user.
    pub(crate) url: String,
}

impl RedisUser {
    /// Creates a user `reliability-<label>-<random>` with keys and channels under the prefix
    /// `reliability-<label>-<random>:`.
    pub(crate) fn create(base: &str, label: &str) -> Self {
        let name = format!("reliability-{label}-{:016x}", rand::random::<u64>());
        let password = format!("{:032x}", rand::random::<u128>());
        let prefix = format!("{name}:");
        let mut url = url::Url::parse(base).expect("COMPLIANCE_TEST_REDIS_URL parses");
        url.set_username(&name).expect("user in URL");
        url.set_password(Some(&password)).expect("password in URL");
        let user = Self {
            admin: base.to_owned(),
            name,
            prefix,
            url: url.to_string(),
        };
        user.command(&[
            "ACL",
            "SETUSER",
            &user.name,
            "on",
            &format!(">{password}"),
            &format!("~{}*", user.prefix),
            &format!("&{}*", user.prefix),
            "+@all",
        ]);
        user
    }

    /// Runs one command as the administrator; returns redis-cli's output.
    fn command(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-u", &self.admin, "--no-raw"])
            .args(args)
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success() && !text.starts_with("(error)"),
            "redis-cli {args:?}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// Drops every connection of this user (and of no other); returns how many.
    pub(crate) fn kill_clients(&self) -> u64 {
        let out = self.command(&["CLIENT", "KILL", "USER", &self.name]);
        out.trim_start_matches("(integer)")
            .trim()
            .parse()
            .expect("a count")
    }

    /// Lets the user in, or refuses its new connections: with [`RedisUser::kill_clients`],
    /// Redis going down for this user alone.
    pub(crate) fn enable(&self, on: bool) {
        self.command(&["ACL", "SETUSER", &self.name, if on { "on" } else { "off" }]);
    }

    /// Deletes every key under the prefix, as a restart of a Redis without persistence
    /// would; returns how many there were.
    pub(crate) fn delete_keys(&self) -> u64 {
        let out = self.command(&[
            "EVAL",
            "local keys = redis.call('KEYS', ARGV[1]) \
             for _, key in ipairs(keys) do redis.call('DEL', key) end \
             return #keys",
            "0",
            &format!("{}*", self.prefix),
        ]);
        out.trim_start_matches("(integer)")
            .trim()
            .parse()
            .expect("a count")
    }
}

impl Drop for RedisUser {
    fn drop(&mut self) {
        // Without asserting: this also runs while a failed test unwinds.
        let pattern = format!("{}*", self.prefix);
        for args in [
            vec!["ACL", "SETUSER", &self.name, "off"],
            vec!["CLIENT", "KILL", "USER", &self.name],
            vec![
                "EVAL",
                "for _, key in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', key) end",
                "0",
                &pattern,
            ],
            vec!["ACL", "DELUSER", &self.name],
        ] {
            let _ = Command::new("redis-cli")
                .args(["-u", &self.admin])
                .args(args)
                .output();
        }
    }
}
