//! The OpenAPI document: valid OpenAPI 3, every route described, every reference resolved.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/webhooks/fossa-scan"),
    ("get", "/api/components"),
    ("post", "/api/components"),
    ("get", "/api/components/{id}"),
    ("get", "/api/components/{id}/compliance"),
    ("get", "/api/components/{id}/issues"),
    ("get", "/api/components/{id}/dependencies"),
    ("get", "/api/components/{id}/scans"),
    ("get", "/api/components/{id}/sync-jobs"),
    ("post", "/api/components/{id}/sync"),
    ("get", "/api/sync-jobs/{id}"),
    ("get", "/api/webhook-events"),
    ("get", "/api/webhook-events/{id}"),
    ("post", "/api/webhook-events/{id}/replay"),
    ("get", "/api/dead-letters"),
    ("post", "/api/dead-letters/redrive"),
    ("post", "/api/login"),
    ("post", "/api/logout"),
    ("get", "/api/openapi.json"),
    ("get", "/ws"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

async fn document() -> (String, Value) {
    let h = Harness::new().await;
    let reply = h.send(get("/api/openapi.json", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    (reply.text, json)
}

#[tokio::test]
async fn the_document_is_valid_openapi_3() {
    let (text, json) = document().await;
    assert!(json["openapi"].as_str().unwrap().starts_with("3."));
    let spec = oas3::from_json(&text).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert_eq!(spec.info.title, "Compliance sync API");
    let paths = spec.paths.expect("paths");
    assert!(paths.contains_key("/api/webhooks/fossa-scan"));
}

#[tokio::test]
async fn every_route_is_described() {
    let (_, json) = document().await;
    for (method, path) in ROUTES {
        let operation = &json["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not described");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    let described: usize = json["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        described,
        ROUTES.len(),
        "a route is described but not listed here"
    );
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_schema_reference_resolves() {
    let (_, json) = document().await;
    let mut refs = Vec::new();
    collect_refs(&json, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            json["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
}

#[tokio::test]
async fn security_is_declared_per_route() {
    let (_, json) = document().await;
    let schemes = &json["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    // The webhook is authenticated by its signature only.
    let webhook = &json["paths"]["/api/webhooks/fossa-scan"]["post"];
    assert_eq!(webhook["security"], serde_json::json!([{}]));
    // Protected routes fall back to the document-wide requirement.
    let list = &json["paths"]["/api/components"]["get"];
    assert!(list.get("security").is_none());
    assert_eq!(json["security"][0]["bearer"], serde_json::json!([]));
    // Every documented status of the webhook is there.
    let responses = webhook["responses"].as_object().unwrap();
    for code in ["202", "400", "401", "404", "413", "415", "429", "503"] {
        assert!(responses.contains_key(code), "webhook lacks {code}");
    }
}
