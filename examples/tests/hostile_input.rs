//! Hostile input against the running reference server: every malformed, oversized, forged,
//! replayed or slow request gets its documented status, nothing crashes, and the event log
//! grows by at most one bounded row per request.
//!
//! `cargo test -p compliance-examples --test hostile_input`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

mod harness;

use std::time::{Duration, Instant};

use compliance_core::domain::PageRequest;
use compliance_core::domain::WebhookEventQuery;
use compliance_core::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use harness::raw;
use harness::{now_secs, signature, webhook_body, TestServer, SECRET, WEBHOOK_PATH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How much of a refused request's body the event log keeps (core's default).
const REJECTED_PAYLOAD_LIMIT: usize = 4 * 1024;
/// The webhook body limit (compliance-axum's default).
const BODY_LIMIT: usize = 256 * 1024;
/// Longest header-derived text the event log keeps (signature, source system).
const HEADER_FIELD_LIMIT: usize = 1024;
/// The signature window the suite runs with, short so that "after the window" is quick.
const TOLERANCE_SECS: i64 = 3;

struct Case<'a> {
    server: &'a TestServer,
    client: reqwest::Client,
    /// Requests checked so far, by status.
    checked: std::sync::Mutex<std::collections::BTreeMap<u16, usize>>,
    /// Sync jobs in the store after the last check.
    jobs: std::sync::Mutex<u64>,
}

impl<'a> Case<'a> {
    /// Cases against `server`, once the demo's first syncs have settled.
    async fn new(server: &'a TestServer) -> Self {
        harness::audit::wait_settled(&server.stores, Duration::from_secs(30))
            .await
            .expect("demo syncs settle");
        Self {
            server,
            client: reqwest::Client::new(),
            checked: std::sync::Mutex::default(),
            jobs: std::sync::Mutex::new(server.job_count().await),
        }
    }

    /// Checks one answer: the expected status, the server still up, no sync job unless the
    /// answer was 202 (then at most one), and at most one new event-log row whose stored
    /// payload and fields are bounded.
    async fn expect(&self, name: &str, status: u16, expected: u16, events_before: u64) {
        assert_eq!(status, expected, "{name}: status");
        *self.checked.lock().unwrap().entry(status).or_default() += 1;
        assert!(self.server.is_running(), "{name}: the server stopped");
        let jobs_now = self.server.job_count().await;
        let jobs_before = std::mem::replace(&mut *self.jobs.lock().unwrap(), jobs_now);
        let allowed = u64::from(expected == 202);
        assert!(
            jobs_now <= jobs_before + allowed,
            "{name}: {} sync jobs created by one request answered {expected}",
            jobs_now.saturating_sub(jobs_before)
        );
        let events_after = self.server.event_count().await;
        assert!(
            events_after <= events_before + 1,
            "{name}: {} event rows for one request",
            events_after - events_before
        );
        if events_after == events_before + 1 {
            let newest = self
                .server
                .stores
                .events
                .list_events(&WebhookEventQuery {
                    page: PageRequest::new(0, 1),
                    ..WebhookEventQuery::default()
                })
                .await
                .unwrap()
                .items
                .remove(0);
            let limit = if expected == 202 {
                BODY_LIMIT
            } else {
                REJECTED_PAYLOAD_LIMIT
            };
            assert!(
                newest.raw_payload.len() <= limit,
                "{name}: {} payload bytes stored",
                newest.raw_payload.len()
            );
            assert_eq!(newest.http_status, expected, "{name}: logged status");
            for (field, value) in [
                ("signature", &newest.signature),
                ("source_system", &newest.source_system),
                ("repository_url", &newest.repository_url),
                ("branch", &newest.branch),
                ("actor", &newest.actor),
                ("error_message", &newest.error_message),
            ] {
                let len = value.as_deref().map_or(0, str::len);
                assert!(
                    len <= HEADER_FIELD_LIMIT * 4,
                    "{name}: {field} of {len} bytes stored"
                );
            }
            let signature_len = newest.signature.as_deref().map_or(0, str::len);
            let source_len = newest.source_system.as_deref().map_or(0, str::len);
            assert!(
                signature_len <= HEADER_FIELD_LIMIT && source_len <= HEADER_FIELD_LIMIT,
                "{name}: header text stored unbounded ({signature_len}, {source_len} bytes)"
            );
        }
    }

    /// A POST with the given headers and body; returns the status and the JSON body.
    async fn post(
        &self,
        headers: &[(&str, String)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.post(self.server.url(WEBHOOK_PATH));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.body(body).send().await.expect("an answer");
        let status = response.status().as_u16();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    /// POSTs `body` signed now with the suite's secret.
    async fn signed(&self, body: Vec<u8>) -> (u16, serde_json::Value) {
        let (sig, ts) = signature(&body, now_secs());
        self.post(&json_signed(sig, ts), body).await
    }

    /// POSTs `body` signed now, and checks the answer.
    async fn signed_case(&self, name: &str, body: Vec<u8>, expected: u16) -> serde_json::Value {
        let before = self.server.event_count().await;
        let (status, json) = self.signed(body).await;
        self.expect(name, status, expected, before).await;
        json
    }

    /// POSTs `body` with exactly `headers` (plus the JSON content type), and checks the answer.
    async fn headers_case(
        &self,
        name: &str,
        headers: &[(&str, String)],
        body: &str,
        expected: u16,
    ) {
        let mut all = vec![("Content-Type", "application/json".to_owned())];
        all.extend(headers.iter().cloned());
        let before = self.server.event_count().await;
        let (status, _) = self.post(&all, body.to_owned()).await;
        self.expect(name, status, expected, before).await;
    }

    /// Sends raw bytes over TCP and checks the answer.
    async fn raw_case(&self, name: &str, request: Vec<u8>, expected: u16) -> raw::RawResponse {
        let before = self.server.event_count().await;
        let response = raw::send(self.server.addr, request).await;
        self.expect(name, response.status, expected, before).await;
        response
    }
}

fn json_signed(sig: String, ts: String) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        (SIGNATURE_HEADER, sig),
        (TIMESTAMP_HEADER, ts),
    ]
}

/// A valid webhook for the demo's payment-service at its `abc123` revision, told apart by
/// `n`.
fn valid_body(n: u64) -> String {
    webhook_body(
        "https://github.com/acme/payment-service",
        "abc123",
        n,
        now_secs() - 60,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_get_their_documented_status_and_bounded_log_rows() {
    let tolerance = TOLERANCE_SECS.to_string();
    let server = TestServer::demo(&[
        "--rate-per-ip",
        "0",
        "--rate-per-repo",
        "0",
        "--webhook-tolerance-secs",
        &tolerance,
    ])
    .await;
    let case = Case::new(&server).await;

    bodies(&case).await;
    signatures_and_timestamps(&case).await;
    replays(&case).await;
    header_injection(&case).await;

    let checked = case.checked.lock().unwrap().clone();
    println!(
        "hostile input: {} requests answered as documented, by status {checked:?}; {} event rows",
        checked.values().sum::<usize>(),
        server.event_count().await
    );

    server.stop().await;
}

async fn bodies(case: &Case<'_>) {
    case.signed_case("empty body, signed", Vec::new(), 400)
        .await;
    case.headers_case("empty body, unsigned", &[], "", 401)
        .await;

    // The server answers 413 before reading 10 MB and closes; the raw client reads the
    // answer while it writes.
    let ten_mb = vec![b'{'; 10 * 1024 * 1024];
    let (sig, ts) = signature(&ten_mb, now_secs());
    let signed_json = [
        "Content-Type: application/json".to_owned(),
        format!("{SIGNATURE_HEADER}: {sig}"),
        format!("{TIMESTAMP_HEADER}: {ts}"),
    ];
    case.raw_case(
        "10 MB body",
        raw::request(WEBHOOK_PATH, &signed_json, &ten_mb),
        413,
    )
    .await;
    let mut chunked = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{}\r\nTransfer-Encoding: chunked\r\n\r\n",
        signed_json.join("\r\n")
    )
    .into_bytes();
    for chunk in ten_mb.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    case.raw_case("10 MB chunked body", chunked, 413).await;
    let newest = newest_event(case.server).await;
    assert!(newest.payload_truncated, "a 10 MB body stored untruncated");

    let mut invalid_utf8 = valid_body(1).into_bytes();
    invalid_utf8.splice(10..10, [0xff, 0xfe, 0xc3]);
    let answer = case.signed_case("invalid UTF-8", invalid_utf8, 400).await;
    assert!(answer.to_string().contains("UTF-8"), "{answer}");

    let deep_arrays = "[".repeat(100_000).into_bytes();
    case.signed_case("100 000 nested arrays", deep_arrays, 400)
        .await;
    let deep_objects = r#"{"a":"#.repeat(40_000).into_bytes();
    case.signed_case("40 000 nested objects", deep_objects, 400)
        .await;

    // The last of a duplicated key counts, for the signature check and the validation alike.
    let duplicated = format!(
        r#"{{"event":"bogus","event":"fossa.scan.completed","repository":{{"url":"https://github.com/acme/nope"}},"repository":{{"url":"https://github.com/acme/payment-service"}},"scan":{{"revision":"abc123","branch":"main","status":"passed"}},"pipeline":{{"id":"{}"}}}}"#,
        now_secs()
    );
    let answer = case
        .signed_case("duplicate keys", duplicated.into_bytes(), 202)
        .await;
    assert_eq!(answer["component"]["name"], "payment-service", "{answer}");

    let numbers = r#"{"event":"fossa.scan.completed","repository":{"url":42,"name":7},"scan":{"revision":123456,"branch":true,"status":1}}"#;
    let answer = case
        .signed_case("numbers for strings", numbers.into(), 400)
        .await;
    for field in [
        "repository.url",
        "repository.name",
        "scan.revision",
        "scan.branch",
        "scan.status",
    ] {
        assert!(
            answer.to_string().contains(field),
            "{field} not named: {answer}"
        );
    }

    let mut huge: serde_json::Value = serde_json::from_str(&valid_body(2)).unwrap();
    huge["scan"]["branch"] = "b".repeat(200_000).into();
    huge["metadata"]["actor"] = "é".repeat(20_000).into();
    let answer = case
        .signed_case("huge strings", huge.to_string().into_bytes(), 400)
        .await;
    assert!(answer.to_string().contains("scan.branch"), "{answer}");
    let newest = newest_event(case.server).await;
    assert!(newest.payload_truncated, "a 220 kB refused body kept whole");

    case.headers_case("huge strings, unsigned", &[], &huge.to_string(), 401)
        .await;

    let mut unknown_event: serde_json::Value = serde_json::from_str(&valid_body(3)).unwrap();
    unknown_event["event"] = "fossa.scan.started".into();
    let answer = case
        .signed_case("unknown event", unknown_event.to_string().into_bytes(), 400)
        .await;
    assert!(answer.to_string().contains("event"), "{answer}");
    unknown_event["event"] = "<script>alert(1)</script>".into();
    case.signed_case(
        "script as event",
        unknown_event.to_string().into_bytes(),
        400,
    )
    .await;

    let unknown_repo = webhook_body(
        "https://github.com/acme/not-registered",
        "abc123",
        4,
        now_secs(),
    );
    case.signed_case("unknown repository", unknown_repo.into_bytes(), 404)
        .await;

    let before = case.server.event_count().await;
    let body = valid_body(5);
    let (sig, ts) = signature(body.as_bytes(), now_secs());
    let (status, _) = case
        .post(
            &[
                ("Content-Type", "text/plain".to_owned()),
                (SIGNATURE_HEADER, sig),
                (TIMESTAMP_HEADER, ts),
            ],
            body,
        )
        .await;
    case.expect("text/plain", status, 415, before).await;

    // Older than the duplicate-key delivery above, so it is accepted as already covered.
    let answer = case
        .signed_case("valid", valid_body(6).into_bytes(), 202)
        .await;
    assert!(answer["sync_id"].is_string(), "{answer}");
}

async fn signatures_and_timestamps(case: &Case<'_>) {
    let body = valid_body(10);
    let now = now_secs();
    let (good, ts) = signature(body.as_bytes(), now);
    let hex = good.trim_start_matches("sha256=").to_owned();

    case.headers_case(
        "no signature",
        &[(TIMESTAMP_HEADER, ts.clone())],
        &body,
        401,
    )
    .await;
    case.headers_case(
        "no timestamp",
        &[(SIGNATURE_HEADER, good.clone())],
        &body,
        401,
    )
    .await;
    let cases: Vec<(&str, String, String, u16)> = vec![
        (
            "63 hex digits",
            format!("sha256={}", &hex[..63]),
            ts.clone(),
            401,
        ),
        ("65 hex digits", format!("sha256={hex}0"), ts.clone(), 401),
        ("no sha256= prefix", hex.clone(), ts.clone(), 401),
        ("SHA256= prefix", format!("SHA256={hex}"), ts.clone(), 401),
        (
            "upper-case hex",
            format!("sha256={}", hex.to_uppercase()),
            ts.clone(),
            202,
        ),
        (
            "non-hex digits",
            format!("sha256={}", "zz".repeat(32)),
            ts.clone(),
            401,
        ),
        ("empty signature", String::new(), ts.clone(), 401),
        (
            "4 kB signature",
            format!("sha256={}", "a".repeat(4096)),
            ts.clone(),
            401,
        ),
        (
            "other secret",
            signature_with(b"wrong-secret", &body, now),
            ts.clone(),
            401,
        ),
    ];
    for (name, sig, ts, expected) in cases {
        let headers = [(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, ts)];
        // Each accepted case needs its own delivery; change the body's pipeline id.
        let body = if expected == 202 {
            valid_body(11)
        } else {
            body.clone()
        };
        let headers = if expected == 202 {
            let (sig, ts) = signature(body.as_bytes(), now);
            let hex = sig.trim_start_matches("sha256=").to_uppercase();
            [
                (SIGNATURE_HEADER, format!("sha256={hex}")),
                (TIMESTAMP_HEADER, ts),
            ]
        } else {
            headers
        };
        case.headers_case(name, &headers, &body, expected).await;
    }

    for (name, when) in [
        ("ten years ago", now - 10 * 365 * 24 * 3600),
        ("an hour ahead", now + 3600),
        ("just outside the window", now - TOLERANCE_SECS - 5),
    ] {
        let (sig, ts) = signature(body.as_bytes(), when);
        case.headers_case(
            name,
            &[(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, ts)],
            &body,
            401,
        )
        .await;
    }
    for (name, ts) in [
        ("negative timestamp", "-5".to_owned()),
        ("non-numeric timestamp", "yesterday".to_owned()),
        ("fractional timestamp", format!("{now}.5")),
        ("exponent timestamp", "1.7e9".to_owned()),
        ("timestamp past i64", "99999999999999999999999".to_owned()),
        ("empty timestamp", String::new()),
    ] {
        // Signed over the very text sent, so only the timestamp's form is wrong.
        let sig = signature_over(SECRET.as_bytes(), &ts, &body);
        case.headers_case(
            name,
            &[(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, ts)],
            &body,
            401,
        )
        .await;
    }

    // The same header twice: identical copies are one header, different copies are refused.
    let body = valid_body(12);
    let (sig, ts) = signature(body.as_bytes(), now_secs());
    let request = raw::request(
        WEBHOOK_PATH,
        &[
            "Content-Type: application/json".to_owned(),
            format!("{SIGNATURE_HEADER}: {sig}"),
            format!("{SIGNATURE_HEADER}: {sig}"),
            format!("{TIMESTAMP_HEADER}: {ts}"),
        ],
        body.as_bytes(),
    );
    case.raw_case("identical doubled signature", request, 202)
        .await;
    let body = valid_body(13);
    let (sig, ts) = signature(body.as_bytes(), now_secs());
    let request = raw::request(
        WEBHOOK_PATH,
        &[
            "Content-Type: application/json".to_owned(),
            format!("{SIGNATURE_HEADER}: sha256={}", "0".repeat(64)),
            format!("{SIGNATURE_HEADER}: {sig}"),
            format!("{TIMESTAMP_HEADER}: {ts}"),
        ],
        body.as_bytes(),
    );
    case.raw_case("conflicting doubled signature", request, 401)
        .await;
    let request = raw::request(
        WEBHOOK_PATH,
        &[
            "Content-Type: application/json".to_owned(),
            format!("{SIGNATURE_HEADER}: {sig}"),
            format!("{TIMESTAMP_HEADER}: {ts}"),
            format!("{TIMESTAMP_HEADER}: {}", now_secs() - 1),
        ],
        body.as_bytes(),
    );
    case.raw_case("conflicting doubled timestamp", request, 401)
        .await;
}

async fn replays(case: &Case<'_>) {
    let body = valid_body(20).into_bytes();
    let (sig, ts) = signature(&body, now_secs());
    let headers = json_signed(sig, ts);

    let before = case.server.event_count().await;
    let (first_status, first) = case.post(&headers, body.clone()).await;
    case.expect("first delivery", first_status, 202, before)
        .await;
    let before = case.server.event_count().await;
    let (second_status, second) = case.post(&headers, body.clone()).await;
    case.expect("replay inside the window", second_status, 202, before)
        .await;
    assert_eq!(
        first["sync_id"], second["sync_id"],
        "a replay got a new job"
    );
    assert_eq!(second["duplicate"], true, "{second}");

    tokio::time::sleep(Duration::from_secs(TOLERANCE_SECS as u64 + 2)).await;
    let before = case.server.event_count().await;
    let (late_status, _) = case.post(&headers, body).await;
    case.expect("replay after the window", late_status, 401, before)
        .await;
}

async fn header_injection(case: &Case<'_>) {
    let body = valid_body(30);
    let (sig, ts) = signature(body.as_bytes(), now_secs());
    let signed = |extra: &str| {
        vec![
            "Content-Type: application/json".to_owned(),
            format!("{SIGNATURE_HEADER}: {sig}"),
            format!("{TIMESTAMP_HEADER}: {ts}"),
            extra.to_owned(),
        ]
    };

    // hyper refuses a bare CR, a NUL or a folded line before the route runs: nothing logged.
    for (name, header) in [
        (
            "bare CR in a value",
            "X-Webhook-Source: github\rX-Injected: 1",
        ),
        ("NUL in a value", "X-Webhook-Source: git\0hub"),
        (
            "folded header line",
            "X-Webhook-Source: github\r\n injected",
        ),
        ("space before the colon", "X-Webhook-Source : github"),
    ] {
        let before = case.server.event_count().await;
        let response = raw::send(
            case.server.addr,
            raw::request(WEBHOOK_PATH, &signed(header), body.as_bytes()),
        )
        .await;
        assert_eq!(response.status, 400, "{name}: {}", response.head);
        *case.checked.lock().unwrap().entry(400).or_default() += 1;
        assert_eq!(case.server.event_count().await, before, "{name}: logged");
        assert!(case.server.is_running());
    }

    // CR LF encoded in the query string stays data: no header of the answer carries it.
    let mut request = raw::request(
        WEBHOOK_PATH,
        &signed("X-Webhook-Source: ci"),
        body.as_bytes(),
    );
    let path_end = request.windows(9).position(|w| w == b" HTTP/1.1").unwrap();
    request.splice(
        path_end..path_end,
        b"?next=%0d%0aSet-Cookie:%20pwned=1".iter().copied(),
    );
    let response = case.raw_case("CR LF in the query", request, 202).await;
    assert!(
        !response.head.to_ascii_lowercase().contains("pwned"),
        "{}",
        response.head
    );

    // A signature header of non-ASCII bytes is no signature.
    let mut request = raw::request(
        WEBHOOK_PATH,
        &[
            "Content-Type: application/json".to_owned(),
            format!("{TIMESTAMP_HEADER}: {ts}"),
        ],
        valid_body(31).as_bytes(),
    );
    let at = request.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut line = format!("{SIGNATURE_HEADER}: sha256=").into_bytes();
    line.extend_from_slice(&[0xe9; 64]);
    line.extend_from_slice(b"\r\n");
    request.splice(at..at, line);
    case.raw_case("non-ASCII signature header", request, 401)
        .await;

    // Header text the event log keeps (signature, source) is cut, not stored whole.
    let long_source = format!("X-Webhook-Source: {}", "s".repeat(60_000));
    let unsigned = vec![
        "Content-Type: application/json".to_owned(),
        long_source.clone(),
        format!("{SIGNATURE_HEADER}: sha256={}", "ab".repeat(30_000)),
    ];
    case.raw_case(
        "60 kB source and signature headers",
        raw::request(WEBHOOK_PATH, &unsigned, body.as_bytes()),
        401,
    )
    .await;

    // More headers than the server takes is refused whole.
    let many: Vec<String> = (0..200).map(|i| format!("X-Filler-{i}: {i}")).collect();
    let before = case.server.event_count().await;
    let response = raw::send(
        case.server.addr,
        raw::request(WEBHOOK_PATH, &many, body.as_bytes()),
    )
    .await;
    assert_eq!(response.status, 431, "{}", response.head);
    *case.checked.lock().unwrap().entry(431).or_default() += 1;
    assert_eq!(case.server.event_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_keys_do_not_escape_the_repository_rate_limit() {
    // One webhook a second per repository, bursts of ten.
    let server = TestServer::demo(&["--rate-per-ip", "0", "--rate-per-repo", "1"]).await;
    let case = Case::new(&server).await;
    let mut statuses = Vec::new();
    for n in 0..30 {
        // `repository` twice, so a reader that stops at duplicates sees no repository.
        let body = format!(
            r#"{{"event":"fossa.scan.completed","repository":{{"url":"https://github.com/acme/payment-service"}},"repository":{{"url":"https://github.com/acme/payment-service"}},"scan":{{"revision":"abc123","branch":"main","status":"passed"}},"pipeline":{{"id":"{n}"}}}}"#
        );
        statuses.push(case.signed(body.into_bytes()).await.0);
    }
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(limited >= 15, "only {limited} of 30 limited: {statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 202 || s == 429),
        "{statuses:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_loris_connections_neither_block_webhooks_nor_stay_open() {
    // Served by `App::serve`, as the binary serves: it found that the reference server used
    // `axum::serve`, which sets no time limit on request heads.
    let server = TestServer::demo(&["--rate-per-ip", "0", "--rate-per-repo", "0"]).await;
    let client = reqwest::Client::new();

    // 200 connections that send their head one byte every 100 ms, which would take 20 s.
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Webhook-Source: {}\r\n",
        "x".repeat(120)
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let mut lorises = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let head = head.clone().into_bytes();
        let stop = stop.clone();
        lorises.push(tokio::spawn(async move {
            let opened = Instant::now();
            for byte in head {
                if stop.is_cancelled() || stream.write_all(&[byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Closed by the server: a read gives EOF (or an error) rather than blocking.
            let mut buf = [0_u8; 1024];
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .unwrap_or(false);
            (closed, opened.elapsed())
        }));
    }

    // Valid webhooks from other connections are answered promptly meanwhile.
    let mut latencies = Vec::new();
    for n in 0..20 {
        let started = Instant::now();
        let response =
            harness::signed_post(&client, &server.url(WEBHOOK_PATH), valid_body(100 + n))
                .send()
                .await
                .unwrap();
        latencies.push(started.elapsed());
        assert_eq!(response.status(), 202);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(1),
        "a webhook took {slowest:?} beside 200 slow clients"
    );

    // The server closes connections whose head does not arrive in time.
    let mut closed = 0;
    let mut longest = Duration::ZERO;
    for loris in lorises {
        let (was_closed, open_for) = loris.await.unwrap();
        closed += usize::from(was_closed);
        longest = longest.max(open_for);
    }
    stop.cancel();
    assert!(
        longest < Duration::from_secs(16),
        "a slow connection stayed {longest:?}"
    );
    println!("slow loris: 20 webhooks, slowest {slowest:?}; {closed}/200 slow connections closed by the server after at most {longest:?}");
    assert_eq!(closed, 200, "slow connections left open");
    server.stop().await;
}

async fn newest_event(server: &TestServer) -> compliance_core::domain::WebhookEvent {
    server
        .stores
        .events
        .list_events(&WebhookEventQuery {
            page: PageRequest::new(0, 1),
            ..WebhookEventQuery::default()
        })
        .await
        .unwrap()
        .items
        .remove(0)
}

fn signature_with(secret: &[u8], body: &str, at: i64) -> String {
    compliance_core::signature::sign(secret, at, body.as_bytes())
}

/// `sha256=` HMAC over `"{timestamp text}.{body}"`, for timestamp texts `sign` would not write.
fn signature_over(secret: &[u8], timestamp: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
