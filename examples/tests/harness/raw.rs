//! HTTP/1.1 over a bare TCP socket, for requests no well-behaved client would send: header
//! injection, bodies cut short, headers sent a byte at a time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back.
#[derive(Debug)]
pub(crate) struct RawResponse {
    /// The status code.
    pub(crate) status: u16,
    /// The head, as text.
    pub(crate) head: String,
    /// The body (as much as arrived before the server closed).
    pub(crate) body: String,
}

/// Sends `request` as is (the caller writes `Connection: close`) and reads the answer until
/// the server closes the connection. The write runs beside the read, so an answer the server
/// sends before reading a large body is still seen.
///
/// # Panics
///
/// When no status line arrives within 30 s.
pub(crate) async fn send(addr: SocketAddr, request: Vec<u8>) -> RawResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may answer and close before it read everything; that is not an error.
        let _ = write.write_all(&request).await;
        let _ = write.flush().await;
        write
    });

    let mut buffer = Vec::new();
    let read_all = async {
        let mut chunk = [0_u8; 16 * 1024];
        loop {
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            if complete(&buffer) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_all)
        .await
        .expect("an answer within 30 s");
    writer.abort();
    parse(&buffer)
}

/// A request with `headers` (each a full `Name: value` line, CR LF added) and `body`;
/// `Host`, `Content-Length` and `Connection: close` are added.
pub(crate) fn request(path: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Whether `buffer` holds a whole response (head and a body of its Content-Length).
fn complete(buffer: &[u8]) -> bool {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    length.is_some_and(|n| buffer.len() >= end + 4 + n)
}

fn parse(buffer: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(buffer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    RawResponse {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}
