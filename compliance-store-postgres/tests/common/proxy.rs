//! A TCP proxy in front of PostgreSQL that a test can take down and bring back, to see what
//! the store does while the database is unreachable, without touching the shared server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub(crate) struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

struct State {
    up: AtomicBool,
    /// Cancelled to cut every open connection; replaced when the proxy comes back.
    cut: Mutex<CancellationToken>,
}

impl Proxy {
    /// A proxy to `target` (`host:port`), up.
    pub(crate) async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            up: AtomicBool::new(true),
            cut: Mutex::new(CancellationToken::new()),
        });
        let stop = CancellationToken::new();
        let (accept_state, accept_stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = accept_stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else {
                    continue;
                };
                if !accept_state.up.load(Ordering::SeqCst) {
                    // Down: the connection is refused by closing it at once.
                    drop(client);
                    continue;
                }
                let cut = accept_state.cut.lock().unwrap().clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        () = cut.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        Self { addr, state, stop }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub(crate) fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("database URL");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(self.addr.port())).expect("port");
        url.to_string()
    }

    /// Cuts every connection and refuses new ones, as a stopped server would.
    pub(crate) fn down(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        let mut cut = self.state.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Accepts connections again.
    pub(crate) fn up(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.cut.lock().unwrap().cancel();
    }
}

/// `host:port` of a database URL.
pub(crate) fn target_of(url: &str) -> String {
    let url = url::Url::parse(url).expect("database URL");
    format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    )
}
