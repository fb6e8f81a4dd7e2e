//! API dialects: parse, authenticate, translate to one service operation, translate back.
//!
//! [`app`] builds the whole HTTP surface as an axum `Router` (tested without a socket): two
//! dialects on the same listener — Alibaba ECS 2014-05-26 for requests in Alibaba's shape
//! (an `x-acs-action` header, or an `Action` parameter in the query or form body without a
//! Tencent `X-TC-Action` header), Tencent CVM 2017-03-12 for everything else — and
//! Prometheus metrics on `/metrics`, and `PUT /ikon/upload` for `ikon image import FILE`. No
//! rule of the domain is enforced here.

pub mod alibaba;
pub mod core;
pub mod metrics;
pub mod tencent;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use ikon_service::Service;
use std::sync::Arc;

/// Shared state of the HTTP server.
#[derive(Clone)]
pub struct AppState {
    /// The service.
    pub svc: Service,
    /// Metrics registry.
    pub metrics: Arc<metrics::Metrics>,
    /// Alibaba signature nonces already used.
    pub nonces: Arc<alibaba::auth::NonceCache>,
    /// The listener serves HTTPS (the console's cookie is then `Secure`).
    pub tls: bool,
}

impl AppState {
    /// State over a service with fresh metrics.
    pub fn new(svc: Service) -> AppState {
        AppState {
            svc,
            metrics: Arc::new(metrics::Metrics::new()),
            nonces: Arc::new(alibaba::auth::NonceCache::new()),
            tls: false,
        }
    }
}

/// The router: every API dialect, `/metrics`, and the console under `/console/` (a bare
/// `GET /` from a browser — no query, no action header, `Accept: text/html` — is sent there).
pub fn app(state: AppState) -> Router {
    let core = axum::middleware::from_fn_with_state(state.metrics.clone(), core::layer);
    let console = ikon_console::router(state.svc.clone(), state.tls);
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/ikon/upload", put(tencent::upload).post(tencent::upload))
        .fallback(route)
        .layer(core)
        .with_state(state)
        .merge(console)
}

/// Largest Alibaba form body read (parameters travel in the query; the body is rare).
const MAX_FORM_BODY: usize = 1 << 20;

/// A browser opening the service's address: `GET /`, no query string, no action header, and
/// HTML accepted.
fn is_browser_home(p: &axum::http::request::Parts) -> bool {
    p.method == axum::http::Method::GET
        && p.uri.path() == "/"
        && p.uri.query().is_none()
        && !p.headers.contains_key("x-tc-action")
        && !p.headers.contains_key("x-acs-action")
        && p.headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

fn has_action_param(s: &str) -> bool {
    s.split('&')
        .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == "Action")
}

/// Sends a request to the dialect whose shape it has.
async fn route(State(st): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if is_browser_home(&parts) {
        return axum::response::Redirect::to("/console/").into_response();
    }
    let id = core::RequestId::of(&parts.extensions);
    let h: &HeaderMap = &parts.headers;
    let tencent_shaped = h.contains_key("x-tc-action");
    let alibaba_shaped = !tencent_shaped
        && (h.contains_key("x-acs-action") || parts.uri.query().is_some_and(has_action_param));
    if alibaba_shaped || (!tencent_shaped && alibaba::is_form(h)) {
        let bytes = match axum::body::to_bytes(body, MAX_FORM_BODY).await {
            Ok(b) => b,
            Err(_) => return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "").into_response(),
        };
        let form_action = std::str::from_utf8(&bytes).is_ok_and(has_action_param);
        if alibaba_shaped || form_action {
            return alibaba::handle(&st, &id, &parts.method, &parts.uri, h, &bytes).await;
        }
        return tencent::handle(
            &st,
            &id,
            parts.method,
            parts.uri,
            parts.headers,
            Body::from(bytes),
        )
        .await;
    }
    tencent::handle(&st, &id, parts.method, parts.uri, parts.headers, body).await
}

async fn render_metrics(State(st): State<AppState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}
