//! The API core: what every request shares, whichever dialect (or page) answers it. One
//! layer gives each request its id before the dialect runs and, when the answer comes back,
//! records the metrics, writes the one log line per request and applies the internal-error
//! policy, all with the same rules for every dialect:
//! - the request id is a UUID made here ([`RequestId`] in the request's extensions; a
//!   dialect shows it in its own spelling);
//! - a dialect reports what happened as an [`Outcome`] in the response's extensions: its
//!   name, the action as called and the result code;
//! - the action label is the action when it is 1 to 64 ASCII letters and digits, else `-`
//!   (so a client cannot grow the metrics without bound);
//! - an internal failure is answered with a generic message by the dialect; its full error
//!   chain travels in the outcome and is logged here with the request id, never sent.

use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// The id of one request, made by the core before the dialect runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id.
    pub fn new() -> RequestId {
        RequestId(ikon_service::ids::uuid4())
    }

    /// The id of a request the core has seen (a fresh one for a request that bypassed it,
    /// as in unit tests of a single dialect function).
    pub fn of(extensions: &axum::http::Extensions) -> RequestId {
        extensions.get::<RequestId>().cloned().unwrap_or_default()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

/// What a dialect reports about the request it answered.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `tencent`, `alibaba`, …
    pub dialect: &'static str,
    /// The action as the client named it (unchecked).
    pub action: String,
    /// `Success` or the error code answered.
    pub code: String,
    /// For an internal failure: the full error chain (logged, never answered).
    pub internal: Option<String>,
}

/// The metrics label of an action as called.
pub fn action_label(action: &str) -> &str {
    if action.is_empty() || action.len() > 64 || !action.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        "-"
    } else {
        action
    }
}

/// The generic message an internal failure is answered with.
pub const INTERNAL_MESSAGE: &str =
    "An internal error occurred; it has been logged with this request's RequestId. Retry later.";

/// The layer: request id in, metrics and log line out (see the module documentation).
pub async fn layer(State(metrics): State<Arc<Metrics>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    let resp = next.run(req).await;
    let Some(o) = resp.extensions().get::<Outcome>() else {
        return resp;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let action = action_label(&o.action);
    metrics.record(o.dialect, action, &o.code, elapsed);
    if let Some(chain) = &o.internal {
        tracing::error!(
            request_id = %id.0,
            dialect = o.dialect,
            action = %action,
            error = %chain,
            "internal error"
        );
    }
    tracing::info!(
        request_id = %id.0,
        dialect = o.dialect,
        action = %action,
        code = %o.code,
        latency_ms = elapsed * 1000.0,
        "request"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_labels_are_bounded() {
        assert_eq!(action_label("DescribeImages"), "DescribeImages");
        for bad in ["", "Describe Images", "a/b", &"x".repeat(65)] {
            assert_eq!(action_label(bad), "-", "{bad}");
        }
    }
}
