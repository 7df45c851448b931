//! `POST /api/login` and `POST /api/logout`: a session cookie in exchange for a token, so a
//! browser never has to keep the token itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Scope;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::limits::source_ip;
use crate::metrics as m;
use crate::state::ApiState;

/// The client address of a request (see [`source_ip`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl FromRequestParts<ApiState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self(source_ip(
            peer,
            &parts.headers,
            state.trusted_proxies(),
        )))
    }
}

/// A token to exchange for a session.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// An API token.
    pub token: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("token", &"***")
            .finish()
    }
}

/// The session that was started.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// What the session allows.
    pub scope: Scope,
}

/// Starts a session: sets an `HttpOnly`, `SameSite=Strict` cookie holding a random session
/// id (never the token).
#[utoipa::path(
    post, path = "/api/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse, headers(("Set-Cookie" = String, description = "the session cookie"))),
        (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown token", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ),
    security(()),
)]
pub(crate) async fn login(
    State(api): State<ApiState>,
    ClientIp(ip): ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if let Err(wait) = api.limiters().check_login(ip) {
        metrics::counter!(m::HTTP_RATE_LIMITED, "limit" => "login").increment(1);
        return Err(ApiError::too_many_requests(wait));
    }
    let Some((session, scope)) = api.authenticator().login(&request.token) else {
        tracing::info!(client_ip = ?ip, "login refused");
        return Err(ApiError::unauthorized());
    };
    let cookie = api.authenticator().session_cookie_header(&session);
    let mut response = Json(LoginResponse { scope }).into_response();
    let value = HeaderValue::from_str(&cookie).map_err(|_| ApiError::internal())?;
    response.headers_mut().insert(header::SET_COOKIE, value);
    Ok(response)
}

/// Ends the session the request's cookie names, and clears the cookie.
#[utoipa::path(
    post, path = "/api/logout", tag = "auth",
    responses((status = 204, description = "Session ended")),
    security(()),
)]
pub(crate) async fn logout(State(api): State<ApiState>, headers: HeaderMap) -> Response {
    api.authenticator().logout(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&api.authenticator().clear_cookie_header()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
