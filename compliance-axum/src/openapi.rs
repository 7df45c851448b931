//! The OpenAPI 3 document, generated from the handlers' annotations.
//!
//! Served at `GET /api/openapi.json` without credentials. Routes that need a token declare
//! the `bearer` and `session` schemes; the webhook route declares none (it is authenticated
//! by its signature, described in its header parameters).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::rest::{components, events, jobs, ops, session, system};
use crate::{webhook, ws};

/// The API's OpenAPI document; `ApiDoc::openapi()` builds it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Compliance sync API",
        description = "Webhook intake, compliance data, sync jobs, operations and live events \
                       of the webhook-driven FOSSA compliance sync."
    ),
    paths(
        webhook::receive,
        components::list,
        components::register,
        components::get,
        components::compliance,
        components::issues,
        components::dependencies,
        components::scans,
        components::sync_jobs,
        components::trigger_sync,
        jobs::get,
        events::list,
        events::get,
        ops::replay,
        ops::dead_letters,
        ops::redrive,
        session::login,
        session::logout,
        ws::upgrade,
        system::healthz,
        system::readyz,
        system::metrics,
        system::openapi,
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "webhooks", description = "Signed CI notifications"),
        (name = "components", description = "Registered components and their compliance data"),
        (name = "sync jobs", description = "Sync jobs and manual triggers"),
        (name = "webhook events", description = "The audit trail of webhook requests"),
        (name = "operations", description = "Replays and dead letters"),
        (name = "auth", description = "Session cookies"),
        (name = "live", description = "WebSocket channels"),
        (name = "system", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token with scope `read` or `admin`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "The session cookie set by `POST /api/login`",
            ))),
        );
    }
}
