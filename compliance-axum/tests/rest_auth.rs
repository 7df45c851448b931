//! Every protected route without a token, with a wrong token, with too small a scope, and with
//! the right one; sessions from `POST /api/login`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use compliance_axum::auth::SESSION_COOKIE;
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Read,
    Admin,
}

struct Route {
    method: Method,
    uri: String,
    body: Option<Value>,
    needs: Needs,
    ok: StatusCode,
}

fn route(method: Method, uri: String, body: Option<Value>, needs: Needs, ok: StatusCode) -> Route {
    Route {
        method,
        uri,
        body,
        needs,
        ok,
    }
}

/// A harness with one component, one accepted webhook (job and event), and the routes.
async fn routes() -> (Harness, Vec<Route>) {
    let h = Harness::new().await;
    let component = h.register("payment-service", REPO).await;
    let accepted = h
        .send(signed_webhook(&webhook_body(REPO, "abc123")))
        .await
        .json();
    let job = accepted["sync_id"].as_str().unwrap().to_owned();
    let event = accepted["webhook_event_id"].as_str().unwrap().to_owned();
    let c = component.id;
    use Method as M;
    use Needs::{Admin, Read};
    use StatusCode as S;
    let routes = vec![
        route(M::GET, "/api/components".into(), None, Read, S::OK),
        route(
            M::POST,
            "/api/components".into(),
            Some(json!({
                "name": "ledger",
                "repository_url": "https://github.com/acme/ledger",
                "fossa_locator": "custom+1/github.com/acme/ledger"
            })),
            Admin,
            S::CREATED,
        ),
        route(M::GET, format!("/api/components/{c}"), None, Read, S::OK),
        route(
            M::GET,
            format!("/api/components/{c}/compliance"),
            None,
            Read,
            S::OK,
        ),
        route(
            M::GET,
            format!("/api/components/{c}/issues"),
            None,
            Read,
            S::OK,
        ),
        route(
            M::GET,
            format!("/api/components/{c}/dependencies"),
            None,
            Read,
            S::OK,
        ),
        route(
            M::GET,
            format!("/api/components/{c}/scans"),
            None,
            Read,
            S::OK,
        ),
        route(
            M::GET,
            format!("/api/components/{c}/sync-jobs"),
            None,
            Read,
            S::OK,
        ),
        route(
            M::POST,
            format!("/api/components/{c}/sync"),
            None,
            Admin,
            S::ACCEPTED,
        ),
        route(M::GET, format!("/api/sync-jobs/{job}"), None, Read, S::OK),
        route(M::GET, "/api/webhook-events".into(), None, Read, S::OK),
        route(
            M::GET,
            format!("/api/webhook-events/{event}"),
            None,
            Read,
            S::OK,
        ),
        route(
            M::POST,
            format!("/api/webhook-events/{event}/replay"),
            None,
            Admin,
            S::ACCEPTED,
        ),
        route(M::GET, "/api/dead-letters".into(), None, Read, S::OK),
        route(
            M::POST,
            "/api/dead-letters/redrive".into(),
            Some(json!({"all": true})),
            Admin,
            S::OK,
        ),
        // Authorized but not a WebSocket handshake.
        route(M::GET, "/ws".into(), None, Read, S::BAD_REQUEST),
        // Authorized, but this harness has no metrics recorder.
        route(M::GET, "/metrics".into(), None, Read, S::NOT_FOUND),
    ];
    (h, routes)
}

#[tokio::test]
async fn every_protected_route_refuses_requests_without_a_token() {
    let (h, routes) = routes().await;
    for r in &routes {
        let reply = h
            .send(request(r.method.clone(), &r.uri, None, r.body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            r.method,
            r.uri
        );
        assert_eq!(reply.json()["error"], "Missing or invalid API token");
        assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");

        let reply = h
            .send(request(
                r.method.clone(),
                &r.uri,
                Some("not-a-configured-token"),
                r.body.clone(),
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{} {}",
            r.method,
            r.uri
        );
    }
}

#[tokio::test]
async fn admin_routes_refuse_the_read_scope() {
    let (h, routes) = routes().await;
    for r in routes.iter().filter(|r| r.needs == Needs::Admin) {
        let reply = h
            .send(request(
                r.method.clone(),
                &r.uri,
                Some(READ_TOKEN),
                r.body.clone(),
            ))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{} {}",
            r.method,
            r.uri
        );
        assert_eq!(reply.json()["error"], "This action needs the admin scope");
    }
}

#[tokio::test]
async fn every_route_answers_with_the_right_scope() {
    let (h, routes) = routes().await;
    for r in &routes {
        let token = match r.needs {
            Needs::Read => READ_TOKEN,
            Needs::Admin => ADMIN_TOKEN,
        };
        let reply = h
            .send(request(
                r.method.clone(),
                &r.uri,
                Some(token),
                r.body.clone(),
            ))
            .await;
        assert_eq!(reply.status, r.ok, "{} {}: {}", r.method, r.uri, reply.text);
        if r.needs == Needs::Read {
            // Admin includes read.
            let reply = h
                .send(request(
                    r.method.clone(),
                    &r.uri,
                    Some(ADMIN_TOKEN),
                    r.body.clone(),
                ))
                .await;
            assert_eq!(reply.status, r.ok, "{} {} as admin", r.method, r.uri);
        }
    }
}

#[tokio::test]
async fn public_routes_need_no_token() {
    let h = Harness::new().await;
    assert_eq!(
        h.send(get("/healthz", None)).await.json(),
        json!({"status": "ok"})
    );
    let ready = h.send(get("/readyz", None)).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(
        h.send(get("/api/openapi.json", None)).await.status,
        StatusCode::OK
    );
}

fn cookie_of(reply: &Reply) -> String {
    let set = reply.headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn with_cookie(method: Method, uri: &str, cookie: &str, body: Option<Value>) -> Request<Body> {
    let mut request = request(method, uri, None, body);
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    request
}

#[tokio::test]
async fn a_login_session_stands_for_its_token_until_logout() {
    let h = Harness::new().await;
    let login = h
        .send(post("/api/login", None, json!({"token": READ_TOKEN})))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.json(), json!({"scope": "read"}));
    let set_cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly"));
    assert!(set_cookie.contains("SameSite=Strict"));
    assert!(!set_cookie.contains(READ_TOKEN));
    let cookie = cookie_of(&login);
    assert!(cookie.starts_with(SESSION_COOKIE));

    let list = h
        .send(with_cookie(Method::GET, "/api/components", &cookie, None))
        .await;
    assert_eq!(list.status, StatusCode::OK);
    let register = h
        .send(with_cookie(
            Method::POST,
            "/api/components",
            &cookie,
            Some(json!({"name": "x", "repository_url": REPO, "fossa_locator": "l"})),
        ))
        .await;
    assert_eq!(register.status, StatusCode::FORBIDDEN);

    let logout = h
        .send(with_cookie(
            Method::POST,
            "/api/logout",
            &cookie,
            Some(json!({})),
        ))
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert!(logout.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = h
        .send(with_cookie(Method::GET, "/api/components", &cookie, None))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_with_an_unknown_token_is_refused_and_rate_limited() {
    let h = Harness::configured(|b| {
        b.rate_limits(compliance_axum::RateLimits {
            login_per_ip: Some(governor::Quota::per_minute(
                std::num::NonZeroU32::new(2).unwrap(),
            )),
            ..compliance_axum::RateLimits::disabled()
        })
    })
    .await;
    for _ in 0..2 {
        let reply = h
            .send(with_peer(
                post("/api/login", None, json!({"token": "guess"})),
                "192.0.2.9:1000",
            ))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(!reply.headers.contains_key(header::SET_COOKIE));
    }
    let reply = h
        .send(with_peer(
            post("/api/login", None, json!({"token": ADMIN_TOKEN})),
            "192.0.2.9:1000",
        ))
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn metrics_need_a_token_unless_public() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let h = Harness::configured(move |b| b.metrics(handle, compliance_axum::MetricsAccess::Token))
        .await;
    assert_eq!(
        h.send(get("/metrics", None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let reply = h.send(get("/metrics", Some(READ_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let h = Harness::configured(move |b| b.metrics(handle, compliance_axum::MetricsAccess::Public))
        .await;
    assert_eq!(h.send(get("/metrics", None)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn anonymous_access_is_explicit() {
    let h = Harness::configured(|b| b.auth(auth().anonymous(compliance_axum::Scope::Read))).await;
    assert_eq!(
        h.send(get("/api/components", None)).await.status,
        StatusCode::OK
    );
    let reply = h
        .send(post(
            "/api/components",
            None,
            json!({"name": "x", "repository_url": REPO, "fossa_locator": "l"}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}
