//! The simulator's own FOSSA semantics, seen with a plain HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use compliance_fossa::locator::encode_segment;
use compliance_fossa::sim::{FossaSimulator, ProjectSpec, SimConfig, SimHandle, SimState};
use serde_json::Value;

use common::sim;

const P: &str = "custom+5/github.com/acme/sim";

async fn get(sim: &SimHandle, path_and_query: &str) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn deps_path(revision: &str, query: &str) -> String {
    format!(
        "/api/revisions/{}/dependencies{query}",
        encode_segment(&format!("{P}${revision}"))
    )
}

#[tokio::test]
async fn dependencies_without_a_limit_are_all_sent_and_a_limit_is_clamped() {
    let sim = sim().await;
    sim.state()
        .generate_project(&ProjectSpec::new(P, 260, 0, 1).with_revision("r"));
    let count = |body: &str| serde_json::from_str::<Vec<Value>>(body).unwrap().len();

    let (status, _, body) = get(&sim, &deps_path("r", "")).await;
    assert_eq!((status, count(&body)), (200, 260));
    let (_, _, body) = get(&sim, &deps_path("r", "?limit=5")).await;
    assert_eq!(count(&body), 25, "a limit under 25 is raised to 25");
    let (_, _, body) = get(&sim, &deps_path("r", "?limit=1000")).await;
    assert_eq!(count(&body), 100, "a limit over 100 is lowered to 100");
    let (_, _, body) = get(&sim, &deps_path("r", "?limit=100&offset=200")).await;
    assert_eq!(count(&body), 60);
    let (_, _, body) = get(&sim, &deps_path("r", "?limit=100&offset=900")).await;
    assert_eq!(count(&body), 0);
}

#[tokio::test]
async fn an_unknown_revision_is_a_plain_text_not_found() {
    let sim = sim().await;
    sim.state()
        .generate_project(&ProjectSpec::new(P, 1, 0, 1).with_revision("r"));
    let (status, content_type, body) = get(&sim, &deps_path("nope", "")).await;
    assert_eq!((status, body.as_str()), (404, "Not Found"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
}

#[tokio::test]
async fn the_issue_endpoints_validation_matches_fossa() {
    let sim = sim().await;
    sim.state()
        .generate_project(&ProjectSpec::new(P, 5, 5, 1).with_revision("r"));
    let id = encode_segment(P);
    let scope = format!("scope[type]=project&scope[id]={id}");

    for (query, status) in [
        (format!("category=licensing&{scope}&scope[revision]=r"), 200),
        (format!("{scope}&scope[revision]=r"), 400),
        (format!("category=all&{scope}"), 400),
        ("category=licensing".to_owned(), 400),
        ("category=licensing&scope[type]=global".to_owned(), 400),
        (format!("category=licensing&{scope}&count=0"), 400),
        (format!("category=licensing&{scope}&count=1001"), 400),
        (format!("category=licensing&{scope}&page=0"), 400),
        (format!("category=licensing&{scope}&status=open"), 400),
        (
            format!("category=licensing&{scope}&scope[revision]={P}$r"),
            404,
        ),
        (
            "category=licensing&scope[type]=project&scope[id]=custom%2B5%2Fnone".to_owned(),
            404,
        ),
        (format!("category=licensing&{scope}"), 200),
    ] {
        let (got, _, body) = get(&sim, &format!("/api/v2/issues?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        if status != 200 {
            let error: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["httpStatusCode"], status, "{body}");
            assert!(
                error["uuid"].is_string() && error["message"].is_string(),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn the_project_list_wants_an_array_parameter_and_pages() {
    let sim = sim().await;
    for i in 0..5 {
        sim.state()
            .generate_project(&ProjectSpec::new(format!("{P}-{i}"), 1, 0, i));
    }
    let (status, _, _) = get(
        &sim,
        &format!("/api/v2/projects?locators={}", encode_segment(P)),
    )
    .await;
    assert_eq!(status, 400, "plain `locators=` is refused as FOSSA does");

    let (_, _, body) = get(&sim, "/api/v2/projects?count=2&page=3").await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 5);
    assert_eq!(page["projects"].as_array().unwrap().len(), 1);

    let two = format!(
        "/api/v2/projects?locators[]={}&locators[]={}",
        encode_segment(&format!("{P}-1")),
        encode_segment(&format!("{P}-3"))
    );
    let (_, _, body) = get(&sim, &two).await;
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 2);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let sim = sim().await;
    let (status, _, _) = get(&sim, "/api/v2/nothing").await;
    assert_eq!(status, 404);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v2/issues", sim.base_url()))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    let sim = sim().await;
    let response = reqwest::get(format!("{}/api/v2/projects", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "UnauthorizedError");
    assert_eq!(body["code"], 2010);
}

#[tokio::test]
async fn a_shared_state_and_a_fixed_token_serve_a_demo() {
    let state = SimState::new();
    state.load_bundled_fixtures().unwrap();
    let sim =
        FossaSimulator::start_with_state(SimConfig::default().with_token("demo"), state.clone())
            .await
            .unwrap();
    assert_eq!(sim.token(), "demo");
    assert!(!format!("{sim:?}").contains("demo\""), "{sim:?}");

    // The caller keeps changing the state the running server reads.
    state.generate_project(&ProjectSpec::new(P, 3, 1, 1));
    let (_, _, body) = get(&sim, "/api/v2/projects").await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["total"], 2);

    let base = sim.base_url().to_owned();
    sim.shutdown().await;
    assert!(reqwest::get(format!("{base}/api/v2/projects"))
        .await
        .is_err());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let sim = sim().await;
    let base = sim.base_url().to_owned();
    drop(sim);
    let mut refused = false;
    for _ in 0..50 {
        if reqwest::get(format!("{base}/api/v2/projects"))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "the simulator still answers after its handle was dropped"
    );
}
