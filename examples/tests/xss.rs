//! XSS through data from FOSSA: an issue whose title and package name carry `<script>` and an
//! `<img onerror>` comes in through the simulator, is synced, and the dashboard in headless
//! Chromium shows it as plain text: no script runs, no element is created from it.
//!
//! Skips (saying so) when Chromium is not installed, unless
//! `COMPLIANCE_TEST_REQUIRE_SERVICES=1`, where a missing browser fails the test.
//!
//! `cargo test -p compliance-examples --test xss -- --nocapture`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod support;

use std::time::{Duration, Instant};

use clap::Parser;
use compliance_core::domain::{ComponentQuery, IssueCategory};
use compliance_core::signature::sign;
use compliance_examples::{App, Config};
use compliance_fossa::sim::SimIssue;
use support::cdp::{chromium_path, Browser};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "xss-test-secret";
const TOKEN: &str = "xss-test-token";
/// What FOSSA sends as the issue's title: a script, and an image whose error handler runs.
const TITLE: &str = r#"<script>window.__xss = "title script"</script><img src=x onerror="window.__xss = 'title img'">"#;
/// What FOSSA sends as the package name.
const PACKAGE: &str = r#"<img src=x onerror="window.__xss = 'package img'"><script>window.__xss = "package script"</script>"#;

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_in_a_package_name_and_an_issue_title_from_fossa_is_rendered_inert() {
    let Some(chromium) = chromium_path() else {
        if let Ok(reason) = std::env::var("COMPLIANCE_TEST_BROWSER_UNAVAILABLE") {
            eprintln!("skipping the XSS test: {reason}");
            return;
        }
        assert!(
            std::env::var("COMPLIANCE_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "Chromium is required (COMPLIANCE_TEST_REQUIRE_SERVICES=1) but not installed"
        );
        eprintln!("skipping the XSS test: Chromium not installed (apt-get install chromium)");
        return;
    };

    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse_from([
        "compliance-server",
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &format!("sqlite://{}", dir.path().join("xss.db").display()),
        "--webhook-secrets",
        SECRET,
        "--admin-tokens",
        TOKEN,
        "--resync-after-secs",
        "0",
    ]);
    let app = App::build(&config).await.unwrap();
    let handle = app.handle();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(app.serve(listener));
    let stores = handle.stores.clone();
    let sim = handle.sim.clone().expect("demo mode");

    wait_until("demo components synced", || async {
        let page = stores
            .components
            .list(&ComponentQuery::default())
            .await
            .unwrap();
        !page.items.is_empty()
            && page
                .items
                .iter()
                .all(|c| c.component.last_synced_at.is_some())
    })
    .await;
    let component = stores
        .components
        .list(&ComponentQuery::default())
        .await
        .unwrap()
        .items
        .remove(0)
        .component;

    // FOSSA's next revision of the project: the latest one plus a vulnerability whose title and
    // package name are hostile.
    let project = sim.project(&component.fossa_locator).unwrap();
    let latest = project.latest().unwrap().clone();
    let revision = format!("{:040x}", rand::random::<u128>());
    let template = latest
        .issues
        .iter()
        .find(|i| i.category == IssueCategory::Vulnerability)
        .or_else(|| latest.issues.first())
        .expect("the demo project has issues")
        .clone();
    let id = 990_000_000 + u64::from(rand::random::<u16>());
    let mut json: serde_json::Value =
        serde_json::from_str(&template.json.replace(&latest.revision, &revision)).unwrap();
    json["id"] = id.into();
    json["type"] = "vulnerability".into();
    json["title"] = TITLE.into();
    json["cve"] = "CVE-2031-0001".into();
    json["source"]["name"] = PACKAGE.into();
    let hostile = SimIssue {
        id,
        category: IssueCategory::Vulnerability,
        ignored: false,
        package_locator: template.package_locator.clone(),
        json: json.to_string().into(),
    };
    let mut next = latest.clone();
    next.revision = revision.clone();
    next.issues = latest
        .issues
        .iter()
        .map(|i| SimIssue {
            json: i.json.replace(&latest.revision, &revision).into(),
            ..i.clone()
        })
        .chain(std::iter::once(hostile))
        .collect();
    sim.push_revision(&component.fossa_locator, next).unwrap();

    // The CI's webhook for that revision.
    let body = serde_json::json!({
        "event": "fossa.scan.completed",
        "repository": { "url": component.repository_url },
        "scan": { "revision": revision, "branch": "main", "status": "failed" }
    })
    .to_string();
    let ts = chrono::Utc::now().timestamp();
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/webhooks/fossa-scan"))
        .header("Content-Type", "application/json")
        .header(
            "X-Webhook-Signature",
            sign(SECRET.as_bytes(), ts, body.as_bytes()),
        )
        .header("X-Webhook-Timestamp", ts.to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    wait_until("the hostile revision synced", || async {
        stores
            .components
            .get(component.id)
            .await
            .unwrap()
            .is_some_and(|c| c.last_revision.as_deref() == Some(revision.as_str()))
    })
    .await;

    // The stored issue carries the text as FOSSA sent it: the defence is in the rendering.
    let view = reqwest::Client::new()
        .get(format!(
            "http://{addr}/api/components/{}/issues?limit=1000",
            component.id
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let stored = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["fossa_id"].as_str() == Some(id.to_string().as_str()))
        .unwrap_or_else(|| panic!("the hostile issue was not stored: {view}"))
        .clone();
    assert_eq!(stored["title"], TITLE);
    assert_eq!(stored["package_name"], PACKAGE);

    let browser = Browser::launch(&chromium).await.expect("chromium starts");
    browser
        .navigate(&format!("http://{addr}/#token={TOKEN}"))
        .await
        .unwrap();
    browser
        .wait_for(
            "document.querySelectorAll('tr[data-component]').length > 0",
            WAIT,
            "component rows",
        )
        .await
        .unwrap();
    browser
        .eval(&format!("location.hash = '#/components/{}'", component.id))
        .await
        .unwrap();
    let literal = serde_json::to_string(TITLE).unwrap();
    browser
        .wait_for(
            &format!(
                "[...document.querySelectorAll('section[role=tabpanel] td')].some(td => td.textContent === {literal})"
            ),
            WAIT,
            "the hostile title shown as text",
        )
        .await
        .unwrap();
    let package = serde_json::to_string(PACKAGE).unwrap();
    assert_eq!(
        browser
            .eval(&format!(
                "[...document.querySelectorAll('section[role=tabpanel] td')].some(td => td.textContent.startsWith({package}))"
            ))
            .await
            .unwrap(),
        true,
        "the hostile package name is shown as text"
    );
    // Give an image's error handler time to fire, had one been created.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ran = browser
        .eval("window.__xss === undefined ? null : String(window.__xss)")
        .await
        .unwrap();
    assert_eq!(ran, serde_json::Value::Null, "injected code ran: {ran}");
    let created = browser
        .eval("document.querySelectorAll('img[onerror], img[src=x]').length + [...document.scripts].filter(s => !s.src).length")
        .await
        .unwrap();
    assert_eq!(created, 0, "elements were created from FOSSA's text");
    browser
        .screenshot(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("screenshots/xss.png"),
        )
        .await
        .unwrap();
    println!(
        "xss: issue title and package name with <script> and <img onerror> synced from the \
         simulator, shown as text in Chromium; no script ran, no element created"
    );

    browser.close().await;
    handle.shutdown.cancel();
    server.await.unwrap().unwrap();
}
