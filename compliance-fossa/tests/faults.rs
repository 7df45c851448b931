//! Each scripted fault class reaches the caller as the right error kind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod common;

use std::time::{Duration, SystemTime};

use compliance_core::domain::IssueCategory;
use compliance_core::ports::ScanSource;
use compliance_core::{RetryClass, ScanSourceError};
use compliance_fossa::sim::{Analysis, Endpoint, Fault, InStreamPlacement, ProjectSpec};
use compliance_fossa::{FossaConfig, FossaError, TransportKind, TOKEN_ENV};

use common::{client, request, sim, strict_client};

const P: &str = "custom+9/github.com/acme/faults";
const R: &str = "0123456789abcdef0123456789abcdef01234567";

async fn project_sim() -> compliance_fossa::sim::SimHandle {
    let sim = sim().await;
    sim.state()
        .generate_project(&ProjectSpec::new(P, 120, 12, 5).with_revision(R));
    sim
}

async fn fetch_err(sim: &compliance_fossa::sim::SimHandle) -> ScanSourceError {
    strict_client(sim)
        .fetch(&request(P, Some(R)))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn analysis_in_progress_is_not_ready_then_results_arrive() {
    let sim = project_sim().await;
    sim.state()
        .set_analysis(P, R, Analysis::InProgress)
        .unwrap();
    let client = strict_client(&sim);

    let err = client.fetch(&request(P, Some(R))).await.unwrap_err();
    assert!(matches!(err, ScanSourceError::NotReady { .. }), "{err}");
    assert_eq!(err.retry_class(), RetryClass::NotReady { after: None });
    assert!(err.to_string().contains("analysis in-progress"), "{err}");

    sim.state().finish_analysis(P, R).unwrap();
    let snapshot = client.fetch(&request(P, Some(R))).await.unwrap();
    assert_eq!(snapshot.issues.len(), 12);
}

#[tokio::test]
async fn a_scripted_202_for_n_calls_then_results() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::AnalysisInProgress, 2);
    let client = strict_client(&sim);

    for _ in 0..2 {
        let err = client
            .issues(P, R, IssueCategory::Quality)
            .await
            .unwrap_err();
        assert!(matches!(err, FossaError::NotReady { .. }), "{err}");
    }
    let issues = client.issues(P, R, IssueCategory::Quality).await.unwrap();
    assert!(!issues.is_empty());
}

#[tokio::test]
async fn a_202_is_never_retried_inside_the_client() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::AnalysisInProgress, 1);
    let err = client(&sim, |c| c.with_request_retries(3))
        .issues(P, R, IssueCategory::Licensing)
        .await
        .unwrap_err();
    assert!(matches!(err, FossaError::NotReady { .. }), "{err}");
    assert_eq!(sim.state().requests_to(Endpoint::Issues).len(), 1);
}

#[tokio::test]
async fn an_in_stream_error_fails_the_dependency_fetch_wherever_it_lands() {
    for placement in [
        InStreamPlacement::AfterArray,
        InStreamPlacement::InsideArray,
        InStreamPlacement::Truncated,
    ] {
        let sim = project_sim().await;
        // The first page stops after 7 of 100 elements: read as a short page, it would
        // look like the end of the list.
        sim.state().inject(
            Endpoint::Dependencies,
            Fault::in_stream_error(7, placement),
            1,
        );

        let err = fetch_err(&sim).await;

        assert!(
            matches!(err, ScanSourceError::Transient { .. }),
            "{placement:?}: {err}"
        );
        assert_eq!(err.retry_class(), RetryClass::Backoff);
        assert!(
            err.to_string().contains("dependency stream interrupted"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_truncated_body_is_a_retryable_decode_error() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Dependencies, Fault::MalformedJson, 1);

    let err = fetch_err(&sim).await;

    assert!(
        matches!(err, ScanSourceError::Decode { ref endpoint, .. } if endpoint == "/api/revisions/{locator}/dependencies"),
        "{err}"
    );
    assert_eq!(err.retry_class(), RetryClass::Backoff);
}

#[tokio::test]
async fn malformed_json_on_every_endpoint_is_a_decode_error() {
    for endpoint in [Endpoint::Projects, Endpoint::Issues, Endpoint::Dependencies] {
        let sim = project_sim().await;
        sim.state().inject(endpoint, Fault::MalformedJson, 1);
        let err = fetch_err(&sim).await;
        assert_eq!(err.kind(), "decode", "{endpoint:?}: {err}");
        assert!(err.to_string().contains(endpoint.template()), "{err}");
    }
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_names_endpoint_and_field() {
    let sim = project_sim().await;
    sim.state().inject(
        Endpoint::Issues,
        Fault::json_body(r#"{"issues":[{"id":1,"depths":{"direct":"yes"}}]}"#),
        1,
    );

    let err = strict_client(&sim)
        .issues(P, R, IssueCategory::Licensing)
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(text.contains("/api/v2/issues"), "{text}");
    assert!(text.contains("issues[0].depths.direct"), "{text}");
    assert_eq!(ScanSourceError::from(err).kind(), "decode");
}

#[tokio::test]
async fn a_200_without_the_issue_list_is_not_zero_issues() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::json_body(r#"{"results":[]}"#), 1);
    let err = strict_client(&sim)
        .issues(P, R, IssueCategory::Licensing)
        .await
        .unwrap_err();
    assert!(matches!(err, FossaError::Decode { .. }), "{err}");
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_missing_optional_fields_default() {
    let sim = project_sim().await;
    sim.state().inject(
        Endpoint::Issues,
        Fault::json_body(
            r#"{"issues":[{"id":"77","type":"brand_new_kind","newField":{"x":[1]}}],"extra":true}"#,
        ),
        1,
    );
    let issues = strict_client(&sim)
        .issues(P, R, IssueCategory::Licensing)
        .await
        .unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].key.fossa_id, "77");
    assert_eq!(issues[0].issue_type, "brand_new_kind");
    assert_eq!(issues[0].package_name, "unknown package");
    assert_eq!(issues[0].detected_at, None);
}

#[tokio::test]
async fn an_unknown_revision_is_a_plain_text_404() {
    let sim = project_sim().await;
    let client = strict_client(&sim);

    let err = client.dependencies(P, "feedface").await.unwrap_err();

    assert!(matches!(err, FossaError::NotFound { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("project or revision not found in FOSSA"),
        "{text}"
    );
    assert!(text.contains("Not Found"), "{text}");
    let core = ScanSourceError::from(err);
    assert_eq!(core.retry_class(), RetryClass::Never);

    let err = client
        .fetch(&request(P, Some("feedface")))
        .await
        .unwrap_err();
    assert!(matches!(err, ScanSourceError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn an_unknown_project_is_not_found() {
    let sim = project_sim().await;
    let err = strict_client(&sim)
        .fetch(&request("custom+9/unknown", Some(R)))
        .await
        .unwrap_err();
    assert!(matches!(err, ScanSourceError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("custom+9/unknown"), "{err}");
}

#[tokio::test]
async fn rate_limiting_carries_retry_after_in_seconds() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::rate_limited("7"), 1);

    let err = fetch_err(&sim).await;

    assert!(
        matches!(err, ScanSourceError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)),
        "{err}"
    );
    assert_eq!(err.retry_class(), RetryClass::After(Duration::from_secs(7)));
}

#[tokio::test]
async fn rate_limiting_carries_retry_after_as_an_http_date() {
    let sim = project_sim().await;
    let at = SystemTime::now() + Duration::from_secs(40);
    sim.state().inject(
        Endpoint::Projects,
        Fault::rate_limited(httpdate::fmt_http_date(at)),
        1,
    );

    let err = fetch_err(&sim).await;

    let ScanSourceError::RateLimited {
        retry_after: Some(delay),
    } = err
    else {
        panic!("expected a rate limit with a delay, got {err}");
    };
    assert!((37..=40).contains(&delay.as_secs()), "{delay:?}");
}

#[tokio::test]
async fn rate_limiting_without_retry_after_backs_off() {
    let sim = project_sim().await;
    sim.state().inject(
        Endpoint::Projects,
        Fault::RateLimited { retry_after: None },
        1,
    );
    let err = fetch_err(&sim).await;
    assert!(
        matches!(err, ScanSourceError::RateLimited { retry_after: None }),
        "{err}"
    );
    assert_eq!(err.retry_class(), RetryClass::Backoff);
}

#[tokio::test]
async fn retry_after_is_clamped() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Projects, Fault::rate_limited("999999"), 1);
    let mut config = sim.client_config().with_request_retries(0);
    config.retry_after_cap = Duration::from_secs(90);
    let err = compliance_fossa::FossaClient::new(config)
        .unwrap()
        .fetch(&request(P, Some(R)))
        .await
        .unwrap_err();
    assert_eq!(
        err.retry_class(),
        RetryClass::After(Duration::from_secs(90))
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    for status in [500, 502, 504, 408] {
        let sim = project_sim().await;
        sim.state()
            .inject(Endpoint::Dependencies, Fault::status(status), 1);
        let err = fetch_err(&sim).await;
        assert!(
            matches!(
                err,
                ScanSourceError::Transient {
                    retry_after: None,
                    ..
                }
            ),
            "{status}: {err}"
        );
        assert!(err.to_string().contains(&status.to_string()), "{err}");
    }
}

#[tokio::test]
async fn a_503_carries_its_retry_after() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::unavailable("12"), 1);
    let err = fetch_err(&sim).await;
    assert!(matches!(err, ScanSourceError::Transient { .. }), "{err}");
    assert_eq!(
        err.retry_class(),
        RetryClass::After(Duration::from_secs(12))
    );
}

#[tokio::test]
async fn a_proxy_html_page_is_summarized_not_quoted() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Projects, Fault::proxy_html(502), 1);
    let err = fetch_err(&sim).await;
    assert!(matches!(err, ScanSourceError::Transient { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("non-JSON body"), "{text}");
    assert!(!text.contains("<html>"), "{text}");
}

#[tokio::test]
async fn other_client_errors_are_rejected_for_good() {
    let sim = project_sim().await;
    sim.state().inject(Endpoint::Issues, Fault::status(400), 1);
    let err = fetch_err(&sim).await;
    assert!(
        matches!(err, ScanSourceError::Rejected { status: 400, .. }),
        "{err}"
    );
    assert_eq!(err.retry_class(), RetryClass::Never);
}

#[tokio::test]
async fn a_dropped_connection_is_transient() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::DropConnection, 1);

    let err = strict_client(&sim)
        .issues(P, R, IssueCategory::Vulnerability)
        .await
        .unwrap_err();

    assert!(matches!(err, FossaError::Transport { .. }), "{err}");
    assert_eq!(
        ScanSourceError::from(err).retry_class(),
        RetryClass::Backoff
    );
    let calls = sim.state().requests_to(Endpoint::Issues);
    assert_eq!(
        calls.last().unwrap().status,
        0,
        "the simulator answered nothing"
    );
}

#[tokio::test]
async fn a_stalled_body_times_out_as_transient() {
    let sim = project_sim().await;
    sim.state().inject(
        Endpoint::Dependencies,
        Fault::SlowBody {
            chunk: 64,
            delay: Duration::from_millis(400),
        },
        1,
    );
    let client = client(&sim, |c| {
        let read = Duration::from_millis(150);
        c.with_request_retries(0).with_timeouts(
            Duration::from_secs(2),
            Duration::from_secs(10),
            read,
        )
    });

    let err = client.dependencies(P, R).await.unwrap_err();

    assert!(
        matches!(
            err,
            FossaError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(ScanSourceError::from(err).kind(), "transient");
}

#[tokio::test]
async fn a_slow_but_steady_body_still_arrives() {
    let sim = project_sim().await;
    sim.state().inject(
        Endpoint::Issues,
        Fault::SlowBody {
            chunk: 512,
            delay: Duration::from_millis(5),
        },
        3,
    );
    let issues = strict_client(&sim)
        .issues(P, R, IssueCategory::Licensing)
        .await
        .unwrap();
    assert!(!issues.is_empty());
}

#[tokio::test]
async fn latency_beyond_the_request_timeout_is_transient() {
    let sim = project_sim().await;
    sim.state()
        .set_latency(Some(Endpoint::Projects), Duration::from_millis(600));
    let client = client(&sim, |c| {
        c.with_request_retries(0).with_timeouts(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(1),
        )
    });
    let err = client.fetch(&request(P, Some(R))).await.unwrap_err();
    assert!(matches!(err, ScanSourceError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn the_client_retries_short_transient_failures_itself() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Issues, Fault::unavailable("0"), 1);
    sim.state()
        .inject(Endpoint::Issues, Fault::rate_limited("0"), 1);
    sim.state()
        .inject(Endpoint::Dependencies, Fault::DropConnection, 1);

    let snapshot = client(&sim, |c| c.with_request_retries(2))
        .fetch(&request(P, Some(R)))
        .await
        .unwrap();

    assert_eq!(snapshot.dependencies.len(), 120);
    assert_eq!(sim.state().pending_faults(), 0);
    let statuses: Vec<u16> = sim.state().requests().iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&503) && statuses.contains(&429) && statuses.contains(&0),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_long_retry_after_goes_to_the_caller_at_once() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Projects, Fault::rate_limited("120"), 1);
    let err = client(&sim, |c| c.with_request_retries(5))
        .fetch(&request(P, Some(R)))
        .await
        .unwrap_err();
    assert_eq!(
        err.retry_class(),
        RetryClass::After(Duration::from_secs(120))
    );
    assert_eq!(sim.state().requests_to(Endpoint::Projects).len(), 1);
}

#[tokio::test]
async fn a_wrong_token_is_reported_without_the_token() {
    let sim = project_sim().await;
    let secret = "wrong-token-5f2c9a7e1d";
    let client = compliance_fossa::FossaClient::new(
        FossaConfig::new(secret)
            .with_base_url(sim.base_url())
            .unwrap()
            .with_request_retries(0),
    )
    .unwrap();

    let err = client.fetch(&request(P, Some(R))).await.unwrap_err();

    assert!(matches!(err, ScanSourceError::Unauthorized { .. }), "{err}");
    assert_eq!(err.retry_class(), RetryClass::Never);
    let text = err.to_string();
    assert!(text.contains(TOKEN_ENV), "{text}");
    assert!(text.contains("API token is invalid"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!format!("{err:?}").contains(secret));
    assert!(!format!("{client:?}").contains(secret));
    assert!(!format!("{:?}", client.config()).contains(secret));
}

#[tokio::test]
async fn a_missing_token_is_reported_as_missing() {
    let sim = project_sim().await;
    let client = compliance_fossa::FossaClient::new(
        FossaConfig::without_token()
            .with_base_url(sim.base_url())
            .unwrap()
            .with_request_retries(0),
    )
    .unwrap();

    let err = client.fetch(&request(P, Some(R))).await.unwrap_err();

    let text = err.to_string();
    assert!(text.contains("no FOSSA API token is configured"), "{text}");
    assert!(text.contains(TOKEN_ENV), "{text}");
    assert_eq!(
        sim.state().requests()[0].auth,
        compliance_fossa::sim::AuthScheme::None
    );
}

#[tokio::test]
async fn a_forbidden_token_names_the_rights_problem() {
    let sim = project_sim().await;
    sim.state()
        .inject(Endpoint::Projects, Fault::status(403), 1);
    let err = fetch_err(&sim).await;
    assert!(matches!(err, ScanSourceError::Unauthorized { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("Push-Only") && text.contains(TOKEN_ENV),
        "{text}"
    );
    assert!(!text.contains(sim.token()), "{text}");
}

#[tokio::test]
async fn a_token_echoed_by_the_server_is_redacted() {
    let sim = project_sim().await;
    let body = format!(
        r#"{{"message":"token {} is not valid for this organization","code":2010}}"#,
        sim.token()
    );
    sim.state().inject(
        Endpoint::Projects,
        Fault::Respond {
            status: 401,
            content_type: "application/json".into(),
            body,
        },
        1,
    );
    let err = fetch_err(&sim).await;
    let text = err.to_string();
    assert!(!text.contains(sim.token()), "{text}");
    assert!(text.contains("token *** is not valid"), "{text}");
}

#[tokio::test]
async fn requests_in_flight_stay_within_the_concurrency_limit() {
    for limit in [1, 2] {
        let sim = project_sim().await;
        sim.state().set_latency(None, Duration::from_millis(40));
        client(&sim, |c| {
            c.with_max_concurrency(limit)
                .with_dependencies_page_size(25)
        })
        .fetch(&request(P, Some(R)))
        .await
        .unwrap();
        assert_eq!(sim.state().peak_in_flight(), limit, "limit {limit}");
    }
}
