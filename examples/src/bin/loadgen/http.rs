//! One keep-alive HTTP/1.1 connection per sending task, signed webhook requests, and the
//! component registration that comes before a run.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use bytes::Bytes;
use compliance_core::signature::{sign, SIGNATURE_HEADER, SOURCE_HEADER, TIMESTAMP_HEADER};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::fleet::Repo;

/// The webhook route.
pub(crate) const WEBHOOK_PATH: &str = "/api/webhooks/fossa-scan";

/// A client that keeps one connection open and reopens it after a failure.
pub(crate) struct Connection {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Body>>,
}

/// A response: status and body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Connection {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    /// A request to `path` with the `Host` header filled in.
    pub(crate) fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.as_str())
    }

    /// Sends `request` and reads the whole answer. A failure drops the connection; the next
    /// call opens a new one.
    pub(crate) async fn send(&mut self, request: Request<Body>) -> Result<Answer, String> {
        let result = self.exchange(request).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, request: Request<Body>) -> Result<Answer, String> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(open(self.addr).await?),
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Answer { status, body })
    }
}

async fn open(addr: SocketAddr) -> Result<SendRequest<Body>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the sender is dropped.
        let _ = connection.await;
    });
    Ok(sender)
}

/// A signed webhook request for `body`; signed with `secret`, or with a wrong one when
/// `valid` is false.
pub(crate) fn webhook(
    conn: &Connection,
    secret: &str,
    body: String,
    valid: bool,
) -> Result<Request<Body>, String> {
    let timestamp = chrono::Utc::now().timestamp();
    let key: &[u8] = if valid {
        secret.as_bytes()
    } else {
        b"not-the-webhook-secret"
    };
    let signature = sign(key, timestamp, body.as_bytes());
    conn.request("POST", WEBHOOK_PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SOURCE_HEADER, "loadgen")
        .body(Body::from(body))
        .map_err(|e| e.to_string())
}

/// The part of a 202 answer the load generator keeps.
#[derive(Deserialize)]
pub(crate) struct Accepted {
    pub(crate) sync_id: String,
}

/// Registers every repository as a component (an existing one counts as registered).
pub(crate) async fn register_all(
    addr: SocketAddr,
    token: &str,
    repos: &[std::sync::Arc<Repo>],
    concurrency: usize,
) -> Result<(), String> {
    let chunk = repos.len().div_ceil(concurrency.max(1)).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for part in repos.chunks(chunk) {
        let part: Vec<_> = part.to_vec();
        let token = token.to_owned();
        tasks.spawn(async move {
            let mut conn = Connection::new(addr);
            for repo in part {
                register(&mut conn, &token, &repo).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn register(conn: &mut Connection, token: &str, repo: &Repo) -> Result<(), String> {
    let body = serde_json::json!({
        "name": repo.name,
        "repository_url": repo.url,
        "fossa_locator": repo.locator,
        "default_branch": "main",
    })
    .to_string();
    let request = conn
        .request("POST", "/api/components")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let answer = conn.send(request).await?;
    match answer.status {
        StatusCode::CREATED | StatusCode::OK | StatusCode::CONFLICT => Ok(()),
        status => Err(format!(
            "registering {} answered {status}: {}",
            repo.url,
            String::from_utf8_lossy(&answer.body)
        )),
    }
}
