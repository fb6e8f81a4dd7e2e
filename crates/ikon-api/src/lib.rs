//! API dialects: parse, authenticate, translate to one service operation, translate back.
//!
//! [`app`] builds the whole HTTP surface as an axum `Router` (tested without a socket):
//! the Tencent CVM 2017-03-12 dialect on `/` (requests carrying `X-TC-Action`), and
//! Prometheus metrics on `/metrics`, and `PUT /ikon/upload` for `ikon image import FILE`. No rule of the domain is enforced here.

pub mod metrics;
pub mod tencent;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
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
}

impl AppState {
    /// State over a service with fresh metrics.
    pub fn new(svc: Service) -> AppState {
        AppState {
            svc,
            metrics: Arc::new(metrics::Metrics::new()),
        }
    }
}

/// The router: every API dialect plus `/metrics`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/ikon/upload", put(tencent::upload).post(tencent::upload))
        .fallback(tencent::handle)
        .with_state(state)
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
