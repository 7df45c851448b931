#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Webhook body validation: the document's payloads are accepted, and every bad-input class
//! is refused with field-level details, all at once.

use compliance_core::payload::{parse_webhook, peek, FieldError, PayloadError, ScanStatus};
use compliance_core::Timestamp;
use serde_json::json;

fn header_ts() -> Option<Timestamp> {
    chrono::DateTime::from_timestamp(1_736_937_300, 0)
}

/// The fields named by an `Invalid` error, in order.
fn fields(body: &serde_json::Value) -> Vec<String> {
    match parse_webhook(body.to_string().as_bytes(), header_ts()) {
        Err(PayloadError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected field errors for {body}, got {other:?}"),
    }
}

fn errors(body: &serde_json::Value) -> Vec<FieldError> {
    match parse_webhook(body.to_string().as_bytes(), header_ts()) {
        Err(PayloadError::Invalid(errors)) => errors,
        other => panic!("expected field errors for {body}, got {other:?}"),
    }
}

fn valid() -> serde_json::Value {
    json!({
        "event": "fossa.scan.completed",
        "repository": {"url": "https://github.com/acme/payment-service"},
        "scan": {"revision": "abc123", "branch": "main", "status": "passed"}
    })
}

fn with(mut body: serde_json::Value, pointer: &str, value: serde_json::Value) -> serde_json::Value {
    *body.pointer_mut(pointer).unwrap() = value;
    body
}

fn without(mut body: serde_json::Value, parent: &str, key: &str) -> serde_json::Value {
    body.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    body
}

#[test]
fn the_documents_full_example_body_is_accepted() {
    let body = br#"{
  "event": "fossa.scan.completed",
  "timestamp": "2025-01-15T10:35:00Z",
  
  "repository": {
    "name": "payment-service",
    "url": "https://github.com/acme/payment-service",
    "provider": "github"
  },
  
  "scan": {
    "revision": "abc123def456789",
    "branch": "main",
    "status": "failed",
    "issues_found": true
  },
  
  "pipeline": {
    "id": "12345",
    "url": "https://github.com/acme/payment-service/actions/runs/12345",
    "provider": "github-actions"
  },
  
  "metadata": {
    "triggered_by": "push",
    "actor": "developer@acme.com"
  }
}"#;
    let w = parse_webhook(body, None).unwrap();
    assert_eq!(w.event, "fossa.scan.completed");
    assert_eq!(w.timestamp.to_rfc3339(), "2025-01-15T10:35:00+00:00");
    assert_eq!(w.repository.name, "payment-service");
    assert_eq!(w.repository.url.key(), "github.com/acme/payment-service");
    assert_eq!(w.repository.provider.as_deref(), Some("github"));
    assert_eq!(w.scan.revision, "abc123def456789");
    assert_eq!(w.scan.branch, "main");
    assert_eq!(w.scan.status, ScanStatus::Failed);
    assert_eq!(w.scan.issues_found, Some(true));
    let pipeline = w.pipeline.unwrap();
    assert_eq!(pipeline.id.as_deref(), Some("12345"));
    assert_eq!(pipeline.provider.as_deref(), Some("github-actions"));
    let metadata = w.metadata.unwrap();
    assert_eq!(metadata.triggered_by.as_deref(), Some("push"));
    assert_eq!(metadata.actor.as_deref(), Some("developer@acme.com"));
}

#[test]
fn the_body_timestamp_wins_over_the_header_timestamp() {
    let mut body = valid();
    body["timestamp"] = json!("2025-01-15T12:00:00+02:00");
    let w = parse_webhook(body.to_string().as_bytes(), header_ts()).unwrap();
    assert_ne!(Some(w.timestamp), header_ts());
    assert_eq!(w.timestamp.to_rfc3339(), "2025-01-15T10:00:00+00:00");
}

#[test]
fn the_documents_curl_payload_is_accepted_with_header_timestamp_and_url_name() {
    let body = br#"{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}"#;
    let w = parse_webhook(body, header_ts()).unwrap();
    assert_eq!(w.timestamp, header_ts().unwrap());
    assert_eq!(w.repository.name, "payment-service");
    assert_eq!(w.scan.revision, "abc123");
    assert_eq!(w.scan.status, ScanStatus::Passed);
    assert_eq!(w.scan.issues_found, None);
    assert_eq!(w.pipeline, None);
    assert_eq!(w.metadata, None);
}

#[test]
fn the_azure_devops_template_payload_is_accepted() {
    // The template's single-quoted PAYLOAD with $(Build.Repository.Uri), $(Build.SourceVersion),
    // the branch parameter and $SCAN_STATUS filled in, whitespace kept as the shell sends it.
    let body = r#"{
        "event": "fossa.scan.completed",
        "repository": {"url": "https://dev.azure.com/acme/Payments/_git/payment-service"},
        "scan": {"revision": "3f786850e387550fdab836ed7e6dc881de23001b", "branch": "refs/heads/main", "status": "failed"}
      }"#;
    let w = parse_webhook(body.as_bytes(), header_ts()).unwrap();
    assert_eq!(
        w.repository.url.key(),
        "dev.azure.com/acme/payments/payment-service"
    );
    assert_eq!(w.repository.name, "payment-service");
    assert_eq!(w.scan.branch, "refs/heads/main");
    assert_eq!(w.scan.status, ScanStatus::Failed);
}

#[test]
fn the_gitlab_template_payload_is_accepted() {
    // The heredoc with ${CI_PROJECT_URL}, ${CI_COMMIT_SHA}, ${CI_COMMIT_REF_NAME} and
    // ${SCAN_STATUS} filled in, indentation kept.
    let body = "    {\n      \"event\": \"fossa.scan.completed\",\n      \"repository\": {\"url\": \"https://gitlab.com/acme/platform/payment-service\"},\n      \"scan\": {\"revision\": \"9fceb02d0ae598e95dc970b74767f19372d61af8\", \"branch\": \"feature/checkout\", \"status\": \"passed\"}\n    }";
    let w = parse_webhook(body.as_bytes(), header_ts()).unwrap();
    assert_eq!(
        w.repository.url.key(),
        "gitlab.com/acme/platform/payment-service"
    );
    assert_eq!(w.repository.name, "payment-service");
    assert_eq!(w.scan.branch, "feature/checkout");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut body = valid();
    body["extra"] = json!({"anything": [1, 2, 3]});
    body["scan"]["coverage"] = json!(0.93);
    assert!(parse_webhook(body.to_string().as_bytes(), header_ts()).is_ok());
}

#[test]
fn not_utf8_reports_the_offset_of_the_first_bad_byte() {
    let mut body = br#"{"event":"fossa"#.to_vec();
    body.push(0xff);
    body.extend_from_slice(br#""}"#);
    let err = parse_webhook(&body, header_ts()).unwrap_err();
    assert_eq!(err, PayloadError::NotUtf8 { valid_up_to: 15 });
    assert_eq!(err.details().len(), 1);
    assert_eq!(err.details()[0].field, "body");
}

#[test]
fn not_json_reports_line_and_column() {
    let body = b"{\n  \"event\": \"fossa.scan.completed\",\n  \"scan\": }";
    match parse_webhook(body, header_ts()).unwrap_err() {
        PayloadError::NotJson {
            line,
            column,
            message,
        } => {
            assert_eq!((line, column), (3, 11));
            assert!(!message.contains("line"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    for bad in [&b""[..], b"not json", b"{\"a\":1} trailing", b"{\"a\":"] {
        let err = parse_webhook(bad, header_ts()).unwrap_err();
        assert!(
            matches!(err, PayloadError::NotJson { .. }),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.details()[0].field, "body");
    }
}

#[test]
fn a_leading_byte_order_mark_is_tolerated() {
    let mut body = b"\xef\xbb\xbf".to_vec();
    body.extend_from_slice(valid().to_string().as_bytes());
    assert!(parse_webhook(&body, header_ts()).is_ok());
}

#[test]
fn a_top_level_value_that_is_not_an_object_is_an_error_on_body() {
    for body in [json!([1, 2]), json!("text"), json!(42), json!(null)] {
        let errs = errors(&body);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "body");
        assert!(errs[0].message.contains("object"), "{}", errs[0].message);
    }
}

#[test]
fn an_empty_object_lists_every_required_field() {
    assert_eq!(fields(&json!({})), ["event", "repository", "scan"]);
    match parse_webhook(b"{}", None).unwrap_err() {
        PayloadError::Invalid(errs) => {
            let names: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(names, ["event", "timestamp", "repository", "scan"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_nested_required_fields_are_each_reported() {
    let body = json!({"event": "fossa.scan.completed", "repository": {}, "scan": {}});
    assert_eq!(
        fields(&body),
        [
            "repository.url",
            "scan.revision",
            "scan.branch",
            "scan.status"
        ]
    );
    let body = without(valid(), "/scan", "branch");
    assert_eq!(fields(&body), ["scan.branch"]);
}

#[test]
fn null_counts_as_missing() {
    let body = with(valid(), "/scan/branch", json!(null));
    let errs = errors(&body);
    assert_eq!(errs, [FieldError::new("scan.branch", "is required")]);
}

#[test]
fn wrong_types_name_what_was_found() {
    let body = json!({
        "event": 1,
        "repository": "https://github.com/acme/payment-service",
        "scan": {"revision": 123456, "branch": ["main"], "status": true, "issues_found": "yes"},
        "pipeline": {"id": 12345},
        "metadata": "push"
    });
    let errs = errors(&body);
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.field.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("event", "must be a string, found number"),
            ("repository", "must be an object, found string"),
            ("scan.revision", "must be a string, found number"),
            ("scan.branch", "must be a string, found array"),
            ("scan.status", "must be a string, found boolean"),
            ("scan.issues_found", "must be a boolean, found string"),
            ("pipeline.id", "must be a string, found number"),
            ("metadata", "must be an object, found string"),
        ]
    );
}

#[test]
fn wrong_event_and_status_values_are_refused() {
    let body = with(
        with(valid(), "/event", json!("fossa.scan.started")),
        "/scan/status",
        json!("PASSED"),
    );
    let errs = errors(&body);
    assert_eq!(
        errs,
        [
            FieldError::new("event", "must be \"fossa.scan.completed\""),
            FieldError::new("scan.status", "must be \"passed\" or \"failed\""),
        ]
    );
}

#[test]
fn empty_and_blank_strings_are_refused() {
    let body = json!({
        "event": "",
        "repository": {"url": "   ", "name": "", "provider": " "},
        "scan": {"revision": "abc123", "branch": "\t", "status": "passed"},
        "metadata": {"actor": ""}
    });
    assert_eq!(
        fields(&body),
        [
            "event",
            "repository.url",
            "repository.name",
            "repository.provider",
            "scan.branch",
            "metadata.actor"
        ]
    );
    assert!(errors(&body)
        .iter()
        .all(|e| e.message == "must not be empty"));
}

#[test]
fn revision_must_be_a_plausible_commit_id() {
    for bad in [
        "abc12",
        "main",
        "abc123g",
        "HEAD~1",
        &"a".repeat(65),
        "abc 123",
    ] {
        let body = with(valid(), "/scan/revision", json!(bad));
        assert_eq!(fields(&body), ["scan.revision"], "{bad}");
    }
    for good in ["abc123", "ABC123DEF", &"f".repeat(40), &"0".repeat(64)] {
        let body = with(valid(), "/scan/revision", json!(good));
        let w = parse_webhook(body.to_string().as_bytes(), header_ts()).unwrap();
        assert_eq!(w.scan.revision, good.to_ascii_lowercase());
    }
}

#[test]
fn repository_url_must_be_a_repository_url() {
    for bad in [
        "not a url",
        "file:///srv/git/repo",
        "https://github.com",
        "hello",
    ] {
        let body = with(valid(), "/repository/url", json!(bad));
        let errs = errors(&body);
        assert_eq!(errs.len(), 1, "{bad}");
        assert_eq!(errs[0].field, "repository.url");
        assert!(
            errs[0].message.starts_with("must be a repository URL"),
            "{}",
            errs[0].message
        );
    }
}

#[test]
fn timestamp_must_be_iso_8601_with_offset() {
    for bad in [
        json!("yesterday"),
        json!("2025-01-15"),
        json!("2025-01-15T10:35:00"),
        json!(1736937300),
    ] {
        let mut body = valid();
        body["timestamp"] = bad.clone();
        assert_eq!(fields(&body), ["timestamp"], "{bad}");
    }
    let mut body = valid();
    body["timestamp"] = json!("2025-01-15T10:35:00.250Z");
    assert!(parse_webhook(body.to_string().as_bytes(), header_ts()).is_ok());
}

#[test]
fn over_long_strings_are_refused() {
    let long_url = format!("https://github.com/acme/{}", "r".repeat(2100));
    let body = json!({
        "event": "fossa.scan.completed",
        "repository": {"url": long_url, "name": "n".repeat(256)},
        "scan": {"revision": "abc123", "branch": "b".repeat(256), "status": "passed"},
        "pipeline": {"url": format!("https://ci.example.com/{}", "p".repeat(2100))}
    });
    assert_eq!(
        fields(&body),
        [
            "repository.url",
            "repository.name",
            "scan.branch",
            "pipeline.url"
        ]
    );
    let body = with(valid(), "/scan/branch", json!("b".repeat(255)));
    assert!(parse_webhook(body.to_string().as_bytes(), header_ts()).is_ok());
}

#[test]
fn control_characters_are_refused() {
    let body = with(valid(), "/scan/branch", json!("main\u{0}evil"));
    assert_eq!(
        errors(&body),
        [FieldError::new(
            "scan.branch",
            "must not contain control characters"
        )]
    );
}

#[test]
fn pipeline_url_must_be_a_web_link() {
    for bad in ["javascript:alert(1)", "ftp://ci.example.com/1", "/runs/1"] {
        let mut body = valid();
        body["pipeline"] = json!({"url": bad});
        assert_eq!(fields(&body), ["pipeline.url"], "{bad}");
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let body = json!({
        "event": "push",
        "timestamp": "soon",
        "repository": {"url": "nope", "name": 7},
        "scan": {"revision": "xyz", "branch": "", "status": "ok", "issues_found": 1},
        "pipeline": {"id": "", "url": "mailto:a@b.c"},
        "metadata": {"actor": false}
    });
    assert_eq!(
        fields(&body),
        [
            "event",
            "timestamp",
            "repository.url",
            "repository.name",
            "scan.revision",
            "scan.branch",
            "scan.status",
            "scan.issues_found",
            "pipeline.id",
            "pipeline.url",
            "metadata.actor",
        ]
    );
}

#[test]
fn details_and_display_carry_every_field_error() {
    let err = parse_webhook(b"{}", header_ts()).unwrap_err();
    assert_eq!(err.details().len(), 3);
    let text = err.to_string();
    assert!(
        text.contains("event: is required") && text.contains("scan: is required"),
        "{text}"
    );
    let json = serde_json::to_value(err.details()).unwrap();
    assert_eq!(json[0], json!({"field": "event", "message": "is required"}));
}

#[test]
fn peek_reads_what_it_can_from_invalid_bodies() {
    let body = br#"{"event":"push","repository":{"url":"nope"},"scan":{"revision":123,"branch":"main"},
        "pipeline":{"id":98765,"url":"https://ci.example.com/1"},"metadata":{"actor":"dev@acme.com"}}"#;
    let p = peek(body);
    assert_eq!(p.event_type.as_deref(), Some("push"));
    assert_eq!(p.repository_url.as_deref(), Some("nope"));
    assert_eq!(p.revision.as_deref(), Some("123"));
    assert_eq!(p.branch.as_deref(), Some("main"));
    assert_eq!(p.pipeline_id.as_deref(), Some("98765"));
    assert_eq!(p.pipeline_url.as_deref(), Some("https://ci.example.com/1"));
    assert_eq!(p.actor.as_deref(), Some("dev@acme.com"));

    assert_eq!(peek(b"\xff\xfe garbage"), Default::default());
    assert_eq!(peek(b"[1,2]"), Default::default());
    let partial = peek(br#"{"scan":"oops","event":"fossa.scan.completed"}"#);
    assert_eq!(partial.event_type.as_deref(), Some("fossa.scan.completed"));
    assert_eq!(partial.revision, None);

    let long = format!(r#"{{"event":"{}"}}"#, "e".repeat(5000));
    assert_eq!(
        peek(long.as_bytes()).event_type.unwrap().chars().count(),
        512
    );
}

#[test]
fn tokens_in_urls_never_reach_the_validated_webhook_or_the_peek() {
    let mut body = with(
        valid(),
        "/repository/url",
        json!("https://x-access-token:ghs_T0KEN@github.com/acme/payment-service"),
    );
    body["pipeline"] =
        json!({"url": "https://bot:glpat-T0KEN@gitlab.example.com/acme/-/pipelines/7"});
    let bytes = body.to_string();

    let w = parse_webhook(bytes.as_bytes(), header_ts()).unwrap();
    assert_eq!(
        w.repository.url.original(),
        "https://github.com/acme/payment-service"
    );
    assert_eq!(
        w.pipeline.unwrap().url.as_deref(),
        Some("https://gitlab.example.com/acme/-/pipelines/7")
    );

    let p = peek(bytes.as_bytes());
    assert_eq!(
        p.repository_url.as_deref(),
        Some("https://github.com/acme/payment-service")
    );
    assert!(!format!("{p:?}").contains("T0KEN"));
}

/// Found by fuzzing: `https:/host` is a URL the parser accepts (and a browser follows) as
/// `https://host/`; the link kept must be that normal form, and never carry credentials even
/// when the single-slash form hides them from a textual `://` search.
#[test]
fn pipeline_links_are_kept_in_normal_form_without_credentials() {
    for (sent, kept) in [
        ("https:/can.completed", "https://can.completed/"),
        (
            "https:/ci:t0ken@ci.example.com/run/1",
            "https://ci.example.com/run/1",
        ),
        (
            "https://ci:t0ken@ci.example.com/run/1?a=b",
            "https://ci.example.com/run/1?a=b",
        ),
        (
            "https://gitlab.com/acme/payment-service/-/pipelines/12345",
            "https://gitlab.com/acme/payment-service/-/pipelines/12345",
        ),
    ] {
        let mut body = valid();
        body["pipeline"] = json!({ "url": sent });
        let webhook = parse_webhook(body.to_string().as_bytes(), header_ts()).unwrap();
        let url = webhook.pipeline.and_then(|p| p.url);
        assert_eq!(url.as_deref(), Some(kept), "sent {sent}");
    }
}
