//! The API core through `ikon_api::app()`: both dialects answer an internal failure with the
//! same generic message (never the failure's text), the core logs the full error chain with
//! the request id, and metrics record both calls with the same label rules.

mod alibaba_support;

use alibaba_support::*;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut g) = self.0.lock() {
            g.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|g| String::from_utf8_lossy(&g).into_owned())
            .unwrap_or_default()
    }
}

/// The process-wide log sink. A global subscriber (not a per-thread default): tracing
/// caches each call site's interest, so a site first hit on a thread without a subscriber
/// would stay silent for a thread-local one.
fn log_sink() -> Sink {
    static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            panic!("another global subscriber is set");
        }
        sink
    })
    .clone()
}

async fn metrics(env: &Env) -> String {
    let resp = env
        .app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn internal_failures_are_logged_whole_and_answered_generically() {
    let sink = log_sink();
    let env = env().await;
    let alice = account(&env, "alice").await;
    // Break the catalog beneath the service: every image query now fails inside it.
    sqlx::query("ALTER TABLE images RENAME TO images_gone")
        .execute(env.cat.pool())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let t = tencent(&env, &alice, "DescribeImages", json!({})).await;
    assert_eq!(t["Error"]["Code"], "InternalError", "{t}");
    assert_eq!(t["Error"]["Message"], ikon_api::core::INTERNAL_MESSAGE);
    let t_id = t["RequestId"].as_str().unwrap_or_default().to_string();

    let a = call(&env, &alice, "DescribeImages", &[]).await;
    assert_eq!((a.status, a.code.as_str()), (500, "InternalError"));
    assert_eq!(a.body["Message"], ikon_api::core::INTERNAL_MESSAGE);
    let a_id = a.body["RequestId"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();

    // Neither answer leaks the failure; the log has it, whole, under each request id.
    for body in [t.to_string(), a.body.to_string()] {
        assert!(!body.contains("images"), "{body}");
    }
    let log = sink.text();
    for id in [&t_id, &a_id] {
        let line = log
            .lines()
            .find(|l| l.contains(id.as_str()) && l.contains("internal error"))
            .unwrap_or_else(|| panic!("no internal-error line for {id} in:\n{log}"));
        assert!(line.contains("no such table"), "{line}");
        assert!(line.contains("the catalog failed"), "{line}");
        assert!(
            log.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("code=InternalError")),
            "{log}"
        );
    }
    let m = metrics(&env).await;
    for dialect in ["tencent", "alibaba"] {
        let want = format!(
            r#"ikon_api_requests_total{{dialect="{dialect}",action="DescribeImages",code="InternalError"}} 1"#
        );
        assert!(m.contains(&want), "{want} in:\n{m}");
    }
}

#[tokio::test]
async fn action_labels_follow_one_rule_in_both_dialects() {
    log_sink();
    let env = env().await;
    let alice = account(&env, "alice").await;
    let t = tencent(&env, &alice, "No Such/Action", json!({})).await;
    assert!(t["Error"]["Code"].is_string(), "{t}");
    let a = call(&env, &alice, "No-Such-Action", &[]).await;
    assert_eq!(a.status, 404);
    let m = metrics(&env).await;
    for dialect in ["tencent", "alibaba"] {
        assert!(
            m.contains(&format!(r#"dialect="{dialect}",action="-""#)),
            "{dialect} in:\n{m}"
        );
    }
}

#[tokio::test]
async fn the_daily_limit_counts_operations_whichever_dialect_calls_them() {
    // Alibaba's CopyImage is the service's sync_images, so it counts as SyncImages.
    let mut cfg = ikon_service::Config::default();
    cfg.limits.daily_operations = 2;
    cfg.limits.daily_limited_actions = vec!["SyncImages".into()];
    let env = env_with(cfg).await;
    let alice = account(&env, "alice").await;
    // Every call counts, refused or not.
    let sync = || {
        tencent(
            &env,
            &alice,
            "SyncImages",
            json!({"ImageIds": ["img-00000000"], "DestinationRegions": ["ap-shanghai"]}),
        )
    };
    let t = sync().await;
    assert_eq!(t["Error"]["Code"], "InvalidImageId.NotFound", "{t}");
    let copy = || {
        call(
            &env,
            &alice,
            "CopyImage",
            &[
                ("ImageId", "m-00000000"),
                ("DestinationRegionId", "ap-shanghai"),
            ],
        )
    };
    let a = copy().await;
    assert_eq!(a.code, "InvalidImageId.NotFound", "{}", a.body);
    let a = copy().await;
    assert_eq!((a.status, a.code.as_str()), (400, "Throttling.User"));
    let t = sync().await;
    assert_eq!(t["Error"]["Code"], "LimitExceeded", "{t}");
    // Operations the policy does not limit are not counted.
    let t = tencent(&env, &alice, "DescribeImages", json!({})).await;
    assert!(t["Error"].is_null(), "{t}");
}
