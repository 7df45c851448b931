//! The simulator's HTTP side: FOSSA's endpoints, routed on the raw path so that a locator's
//! `%2F` stays inside its segment, with FOSSA's paging, auth and error shapes, and the
//! scripted faults applied on top.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::faults::{Endpoint, Fault, InStreamPlacement};
use super::model::{AuthScheme, RecordedRequest, SimState};
use super::render::{self, Reply};

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Clone, Copy, Debug)]
struct DropConnection;

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a scripted fault")]
struct ConnectionDropped;

#[derive(Clone)]
struct App {
    state: SimState,
    token: Arc<str>,
}

/// What the raw path names.
enum Route {
    Projects,
    ProjectAlias(String),
    Issues,
    Dependencies(String),
    Unknown,
}

impl Route {
    // Limitation: only the endpoints the client calls are served; FOSSA's
    // `/api/v2/issues/statuses`, v1 project and v2 dependency endpoints answer 404 here.
    fn parse(path: &str) -> Self {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        match segments.as_slice() {
            ["api", "v2", "projects"] => Self::Projects,
            ["api", "v2", "issues"] => Self::Issues,
            ["api", "v2", "projects", locator] => {
                decode(locator).map_or(Self::Unknown, Self::ProjectAlias)
            }
            ["api", "revisions", locator, "dependencies"] => {
                decode(locator).map_or(Self::Unknown, Self::Dependencies)
            }
            _ => Self::Unknown,
        }
    }

    fn endpoint(&self) -> Option<Endpoint> {
        match self {
            Self::Projects => Some(Endpoint::Projects),
            Self::ProjectAlias(_) => Some(Endpoint::ProjectAlias),
            Self::Issues => Some(Endpoint::Issues),
            Self::Dependencies(_) => Some(Endpoint::Dependencies),
            Self::Unknown => None,
        }
    }
}

fn decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The router: everything goes to one handler that routes on the raw path.
pub(crate) fn router(state: SimState, token: Arc<str>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(App { state, token })
}

/// Serves connections until `shutdown` fires, with hyper directly so that a handler can
/// close a connection without answering.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::debug!(%error, "simulator accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                connections.spawn(serve_connection(stream, router.clone()));
            }
        }
        while connections.try_join_next().is_some() {}
    }
    // Dropping the set aborts the connections still open.
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let response = match router.oneshot(request.map(Body::new)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if response.extensions().get::<DropConnection>().is_some() {
                Err(ConnectionDropped)
            } else {
                Ok(response)
            }
        }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::trace!(%error, "simulator connection ended");
    }
}

async fn dispatch(State(app): State<App>, request: Request) -> Response {
    let _in_flight = app.state.enter();
    // The body is not needed, and holding it across an await would make the future !Send.
    let (parts, _) = request.into_parts();
    let route = Route::parse(parts.uri.path());
    let (auth, authorized) = check_token(&parts.headers, &app.token);
    let header_text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        endpoint: route.endpoint(),
        status: 0,
        auth,
        authorized,
        user_agent: header_text(header::USER_AGENT),
        accept: header_text(header::ACCEPT),
    };

    let response = respond(&app, &parts.method, parts.uri.query(), route, authorized).await;
    if response.extensions().get::<DropConnection>().is_none() {
        record.status = response.status().as_u16();
    }
    app.state.record(record);
    response
}

async fn respond(
    app: &App,
    method: &Method,
    query: Option<&str>,
    route: Route,
    authorized: bool,
) -> Response {
    let Some(endpoint) = route.endpoint() else {
        return finish(render::not_found_json("NotFoundError", 2004, "Not found"));
    };
    if method != Method::GET {
        return finish(render::error(
            StatusCode::METHOD_NOT_ALLOWED,
            2003,
            "BadRequestError",
            "Only GET is supported by this endpoint",
        ));
    }

    let latency = app.state.lock().faults.latency(endpoint);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if !authorized {
        return finish(render::error(
            StatusCode::UNAUTHORIZED,
            2010,
            "UnauthorizedError",
            "API token is invalid",
        ));
    }

    let fault = app.state.lock().faults.take(endpoint);
    let pairs = query_pairs(query);
    let reply = {
        let inner = app.state.lock();
        match &route {
            Route::Projects => render::projects(&inner.projects, &pairs),
            Route::ProjectAlias(locator) => render::project_alias(&inner.projects, locator),
            Route::Issues => render::issues(&inner.projects, &pairs),
            Route::Dependencies(locator) => render::dependencies(&inner.projects, locator, &pairs),
            Route::Unknown => render::not_found_json("NotFoundError", 2004, "Not found"),
        }
    };

    match fault {
        None => finish(reply),
        Some(fault) => apply(fault, reply),
    }
}

/// The token check: `Bearer <token>` or FOSSA's legacy `token <token>`.
fn check_token(headers: &HeaderMap, token: &str) -> (AuthScheme, bool) {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return (AuthScheme::None, false);
    };
    let (scheme, presented) = value.trim().split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        AuthScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("token") {
        AuthScheme::Token
    } else {
        AuthScheme::Other
    };
    let ok = scheme != AuthScheme::Other && !token.is_empty() && presented.trim() == token;
    (scheme, ok)
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn finish(reply: Reply) -> Response {
    let (status, content_type, body) = reply.into_parts();
    with_body(status, content_type, Body::from(body))
}

fn with_body(status: StatusCode, content_type: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn with_retry_after(mut response: Response, retry_after: Option<&str>) -> Response {
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn apply(fault: Fault, reply: Reply) -> Response {
    match fault {
        Fault::RateLimited { retry_after } => with_retry_after(
            finish(render::error(
                StatusCode::TOO_MANY_REQUESTS,
                2029,
                "TooManyRequestsError",
                "Too many requests, slow down",
            )),
            retry_after.as_deref(),
        ),
        Fault::Status {
            status,
            retry_after,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let name = match status.as_u16() {
                400 => "BadRequestError",
                403 => "ForbiddenError",
                404 => "NotFoundError",
                503 => "ServiceUnavailableError",
                _ => "InternalServerError",
            };
            let message = status.canonical_reason().unwrap_or("error");
            with_retry_after(
                finish(render::error(status, 2009, name, message)),
                retry_after.as_deref(),
            )
        }
        Fault::Respond {
            status,
            content_type,
            body,
        } => with_body(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            &content_type,
            Body::from(body),
        ),
        Fault::DropConnection => {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(DropConnection);
            response
        }
        Fault::MalformedJson => {
            let (status, content_type, body) = reply.into_parts();
            let mut cut = body.len() / 2;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            let truncated = body.get(..cut).unwrap_or_default().to_owned();
            with_body(status, content_type, Body::from(truncated))
        }
        Fault::InStreamError {
            after,
            placement,
            message,
        } => {
            let error = serde_json::json!({ "error": message }).to_string();
            let body = match reply {
                Reply::Items(items) => {
                    let written = items.get(..after.min(items.len())).unwrap_or_default();
                    let mut body = String::from("[");
                    body.push_str(&render::join(written));
                    match placement {
                        InStreamPlacement::AfterArray => {
                            body.push(']');
                            body.push_str(&error);
                        }
                        InStreamPlacement::InsideArray => {
                            if !written.is_empty() {
                                body.push(',');
                            }
                            body.push_str(&error);
                            body.push(']');
                        }
                        InStreamPlacement::Truncated => body.push_str(&error),
                    }
                    body
                }
                other => {
                    let (_, _, mut body) = other.into_parts();
                    body.push_str(&error);
                    body
                }
            };
            with_body(StatusCode::OK, "application/json", Body::from(body))
        }
        Fault::SlowBody { chunk, delay } => {
            let (status, content_type, body) = reply.into_parts();
            let chunks: Vec<Bytes> = body
                .as_bytes()
                .chunks(chunk.max(1))
                .map(Bytes::copy_from_slice)
                .collect();
            let stream = futures::stream::iter(chunks).then(move |chunk| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, Infallible>(chunk)
            });
            with_body(status, content_type, Body::from_stream(stream))
        }
        Fault::AnalysisInProgress => finish(render::analysing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_on_the_raw_path() {
        assert!(matches!(Route::parse("/api/v2/projects"), Route::Projects));
        assert!(matches!(Route::parse("/api/v2/issues/"), Route::Issues));
        match Route::parse("/api/revisions/custom%2B1%2Fx%24abc/dependencies") {
            Route::Dependencies(l) => assert_eq!(l, "custom+1/x$abc"),
            _ => panic!("not the dependencies route"),
        }
        match Route::parse("/api/v2/projects/git%2Bgithub.com%2Fa%2Fb") {
            Route::ProjectAlias(l) => assert_eq!(l, "git+github.com/a/b"),
            _ => panic!("not the alias route"),
        }
        // An unencoded `/` splits the locator and matches nothing, as on FOSSA.
        assert!(matches!(
            Route::parse("/api/revisions/custom+1/x$abc/dependencies"),
            Route::Unknown
        ));
    }

    #[test]
    fn both_token_forms_are_accepted() {
        let mut headers = HeaderMap::new();
        assert_eq!(check_token(&headers, "t0k"), (AuthScheme::None, false));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert_eq!(check_token(&headers, "t0k"), (AuthScheme::Bearer, true));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("token t0k"));
        assert_eq!(check_token(&headers, "t0k"), (AuthScheme::Token, true));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(check_token(&headers, "t0k"), (AuthScheme::Bearer, false));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic t0k"));
        assert_eq!(check_token(&headers, "t0k"), (AuthScheme::Other, false));
    }
}
