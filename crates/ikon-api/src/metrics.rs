//! Prometheus metrics served at `/metrics`: requests by dialect, action and result code, a
//! latency histogram, and chunk-store figures (stored bytes, logical bytes, dedup ratio)
//! refreshed by the server from the service.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of one request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `tencent` or `alibaba`.
    pub dialect: String,
    /// Action name as called.
    pub action: String,
    /// `Success` or the error code.
    pub code: String,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// `tencent` or `alibaba`.
    pub dialect: String,
}

/// All metrics of a server.
pub struct Metrics {
    registry: Registry,
    /// Requests by dialect, action and code.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency in seconds.
    pub latency: Family<LatencyLabels, Histogram>,
    /// Bytes held by the chunk store.
    pub store_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Guest bytes referenced by all disks (before deduplication and zero elision).
    pub logical_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Referenced data bytes / stored bytes.
    pub dedup_ratio: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ikon");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests by action and result code",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        registry.register(
            "api_request_duration_seconds",
            "API request latency",
            latency.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_bytes",
            "Bytes of chunks held by the chunk store",
            store_bytes.clone(),
        );
        let logical_bytes = Gauge::default();
        registry.register(
            "store_logical_bytes",
            "Data bytes referenced by all disks before deduplication",
            logical_bytes.clone(),
        );
        let dedup_ratio = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "store_dedup_ratio",
            "Referenced data bytes divided by stored bytes",
            dedup_ratio.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            store_bytes,
            logical_bytes,
            dedup_ratio,
        }
    }

    /// Records one request.
    pub fn record(&self, dialect: &str, action: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                dialect: dialect.to_string(),
                action: action.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                dialect: dialect.to_string(),
            })
            .observe(seconds);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
