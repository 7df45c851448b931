//! The dashboard in a real browser: Debian's headless Chromium against the running server.
//!
//! Opens the dashboard, sends a signed webhook, sees the component's status change and the
//! toast appear without a reload, opens the component page and sees the new issues; then
//! restarts the server and checks the page reconnects and keeps updating. Saves screenshots
//! to `examples/screenshots/`.
//!
//! Skips (saying so) when Chromium is not installed, unless
//! `COMPLIANCE_TEST_REQUIRE_SERVICES=1`, where a missing browser fails the test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use compliance_core::domain::ComponentQuery;
use compliance_core::signature::sign;
use compliance_examples::{App, AppHandle, Config};
use compliance_fossa::sim::RevisionChange;
use support::cdp::{chromium_path, Browser};

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &std::path::Path, port: u16) -> Config {
    Config::parse_from([
        "compliance-server",
        "--demo",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--database-url",
        &format!("sqlite://{}", dir.join("browser.db").display()),
        "--webhook-secrets",
        "browser-test-secret",
        "--admin-tokens",
        "browser-test-token",
        "--resync-after-secs",
        "0",
    ])
}

async fn start(config: &Config) -> (tokio::task::JoinHandle<()>, AppHandle) {
    let app = App::build(config).await.expect("server builds");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let handle = app.handle();
    let server = tokio::spawn(async move {
        app.serve(listener).await.expect("serve");
    });
    (server, handle)
}

/// Moves `repo`'s simulated FOSSA project to a new revision with `added` new issues and sends
/// the signed webhook for it.
async fn scan(app: &AppHandle, addr: SocketAddr, repo: &str, fixed: usize, added: usize) -> String {
    let sim = app.sim.as_ref().expect("demo mode");
    let component = app
        .stores
        .components
        .find_by_repository(&compliance_core::RepoUrl::parse(repo).unwrap())
        .await
        .unwrap()
        .expect("demo component registered");
    let revision = format!("{:032x}{:08x}", rand_u128(), rand_u128() as u32);
    sim.advance_revision(
        &component.fossa_locator,
        &RevisionChange::new(&revision, fixed, added),
    )
    .expect("advance revision");
    let body = format!(
        r#"{{"event":"fossa.scan.completed","repository":{{"url":"{repo}"}},"scan":{{"revision":"{revision}","branch":"main","status":"failed"}}}}"#
    );
    let ts = chrono::Utc::now().timestamp();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/webhooks/fossa-scan"))
        .header("Content-Type", "application/json")
        .header(
            "X-Webhook-Signature",
            sign(b"browser-test-secret", ts, body.as_bytes()),
        )
        .header("X-Webhook-Timestamp", ts.to_string())
        .body(body)
        .send()
        .await
        .expect("webhook sent");
    assert_eq!(
        response.status().as_u16(),
        202,
        "{}",
        response.text().await.unwrap_or_default()
    );
    component.id.to_string()
}

fn rand_u128() -> u128 {
    use rand::Rng;
    rand::rng().random()
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_updates_live_and_survives_a_restart() {
    let Some(chromium) = chromium_path() else {
        if let Ok(reason) = std::env::var("COMPLIANCE_TEST_BROWSER_UNAVAILABLE") {
            // .ci/run tried to install Chromium and could not.
            eprintln!("skipping browser test: {reason}");
            return;
        }
        if std::env::var("COMPLIANCE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("Chromium is required (COMPLIANCE_TEST_REQUIRE_SERVICES=1) but not installed");
        }
        eprintln!("skipping browser test: Chromium not installed (apt-get install chromium)");
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = config(dir.path(), port);
    let (server, app) = start(&config).await;

    // The demo queues a first sync of every sample; wait until all have data.
    wait_until(|| async {
        let page = app
            .stores
            .components
            .list(&ComponentQuery::default())
            .await
            .unwrap();
        page.items.len() >= 6
            && page
                .items
                .iter()
                .all(|c| c.component.last_synced_at.is_some())
    })
    .await;

    let browser = Browser::launch(&chromium).await.expect("chromium starts");
    browser
        .navigate(&format!("http://{addr}/#token=browser-test-token"))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.querySelectorAll('tr[data-component]').length >= 6",
            WAIT,
            "component rows",
        )
        .await
        .unwrap();
    browser
        .wait_for(
            "document.getElementById('conn').textContent === 'live'",
            WAIT,
            "live connection",
        )
        .await
        .unwrap();
    // A marker that a reload would wipe.
    browser.eval("window.__noReload = true").await.unwrap();
    let ledger_row = "[...document.querySelectorAll('tr[data-component]')].find(r => r.textContent.includes('ledger-api'))";
    assert_eq!(
        browser
            .eval(&format!("{ledger_row}.querySelector('.badge').textContent"))
            .await
            .unwrap(),
        "PASSING",
        "ledger-api starts with no issues"
    );
    browser
        .screenshot(&screenshot_dir().join("list.png"))
        .await
        .unwrap();

    // A scan that adds two issues to ledger-api turns it FAILING, live.
    let ledger = scan(
        &app,
        addr,
        "https://dev.azure.com/acme/finance/_git/ledger-api",
        0,
        2,
    )
    .await;
    browser
        .wait_for(
            &format!("{ledger_row}.querySelector('.badge').textContent === 'FAILING'"),
            WAIT,
            "ledger-api FAILING",
        )
        .await
        .unwrap();
    browser
        .wait_for("[...document.querySelectorAll('.toast')].some(t => t.textContent.includes('Scan complete'))", WAIT, "toast")
        .await
        .unwrap();
    assert_eq!(
        browser.eval("window.__noReload === true").await.unwrap(),
        true,
        "no reload"
    );
    browser
        .screenshot(&screenshot_dir().join("list-after-scan.png"))
        .await
        .unwrap();

    // The component page lists the new issues.
    browser
        .eval(&format!("location.hash = '#/components/{ledger}'"))
        .await
        .unwrap();
    browser
        .wait_for("document.querySelectorAll('section[role=tabpanel] tbody tr').length >= 2 && !document.querySelector('section[role=tabpanel] .empty')", WAIT, "issue rows")
        .await
        .unwrap();
    browser
        .screenshot(&screenshot_dir().join("component.png"))
        .await
        .unwrap();

    // Restart the server on the same port and database; the page reconnects by itself.
    app.shutdown.cancel();
    server.await.unwrap();
    browser
        .wait_for(
            "document.getElementById('conn').textContent !== 'live'",
            WAIT,
            "disconnect noticed",
        )
        .await
        .unwrap();
    let (server, app) = start(&config).await;
    browser
        .wait_for(
            "document.getElementById('conn').textContent === 'live'",
            WAIT,
            "reconnect",
        )
        .await
        .unwrap();
    let before = browser
        .eval("document.querySelectorAll('.toast').length")
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    let id = scan(
        &app,
        addr,
        "https://dev.azure.com/acme/finance/_git/ledger-api",
        0,
        1,
    )
    .await;
    browser
        .wait_for(
            &format!("document.querySelectorAll('.toast').length > {before}"),
            WAIT,
            "toast after restart",
        )
        .await
        .unwrap();
    // The page shows what the store now holds.
    let view = app
        .stores
        .compliance
        .compliance_view(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.latest_scan.as_ref().map(|s| s.issues_count as u64),
        Some(view.issues.total)
    );
    browser
        .wait_for(
            &format!(
                "document.querySelector('.stat .v') && document.querySelector('.stat .v').textContent === '{}'",
                view.issues.total
            ),
            WAIT,
            "active issue count after restart",
        )
        .await
        .unwrap();
    assert_eq!(
        browser.eval("window.__noReload === true").await.unwrap(),
        true,
        "no reload"
    );

    browser.close().await;
    app.shutdown.cancel();
    server.await.unwrap();
}

async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
