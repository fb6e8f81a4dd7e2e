//! Requests of the authorisation matrix on the wire: one Tencent (TC3) or Alibaba (V3)
//! request, signed properly or in one of the ways authentication must refuse (no signature,
//! a wrong secret, a stale timestamp), reduced to an [`Answer`].

use crate::alibaba_support::{form, send, Env, Req, HOST, REGION};
use axum::body::Body;
use axum::http::Request;
use ikon_service::{ids, Credentials};
use serde_json::Value;
use tower::ServiceExt;

/// How a request is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// As the SDKs sign.
    Good,
    /// No signature at all (no `Authorization`, no `Signature`/`AccessKeyId`).
    Unsigned,
    /// Signed with a secret that is not the key's.
    WrongSecret,
    /// Signed properly [`STALE_SECS`] ago.
    Stale,
}

/// How far in the past a stale request was signed (Tencent allows 300 s of skew, Alibaba
/// 900 s).
pub const STALE_SECS: i64 = 1000;

/// A response reduced to what the matrix judges.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Error code; empty on success.
    pub code: String,
    /// Error message; empty on success.
    pub message: String,
    /// The whole response without its RequestId (what the leak scan reads).
    pub text: String,
}

impl Answer {
    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        self.code.is_empty()
    }

    fn of(mut body: Value, code: String) -> Answer {
        let message = if code.is_empty() {
            String::new()
        } else {
            message_of(&body)
        };
        if let Some(m) = body.as_object_mut() {
            m.remove("RequestId");
        }
        Answer {
            code,
            message,
            text: body.to_string(),
        }
    }
}

/// Tencent's `Error.Message` or Alibaba's `Message`.
fn message_of(body: &Value) -> String {
    body["Error"]["Message"]
        .as_str()
        .or_else(|| body["Message"].as_str())
        .unwrap_or("")
        .to_string()
}

/// One Tencent call (`body` is the JSON parameters) in region ap-guangzhou.
pub async fn tencent(
    env: &Env,
    key: &Credentials,
    action: &str,
    body: &Value,
    how: Signing,
) -> Answer {
    use ikon_api::tencent::auth::{sign, Authorization, SignedRequest};
    let now = match how {
        Signing::Stale => ids::now() - STALE_SECS,
        _ => ids::now(),
    };
    let bytes = body.to_string().into_bytes();
    let auth = Authorization {
        secret_id: key.secret_id.clone(),
        date: ids::utc_date(now),
        service: "cvm".into(),
        signed_headers: vec!["content-type".into(), "host".into()],
        signature: vec![],
    };
    let header = |h: &str| match h {
        "content-type" => Some("application/json".to_string()),
        "host" => Some(HOST.to_string()),
        _ => None,
    };
    let secret = match how {
        Signing::WrongSecret => "wrong",
        _ => key.secret_key.as_str(),
    };
    let sig = sign(
        secret,
        &auth,
        &SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            header: &header,
            body: &bytes,
            timestamp: now,
        },
    );
    let mut req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", HOST)
        .header("content-type", "application/json")
        .header("x-tc-action", action)
        .header("x-tc-version", ikon_api::tencent::VERSION)
        .header("x-tc-region", REGION)
        .header("x-tc-timestamp", now.to_string());
    if how != Signing::Unsigned {
        req = req.header(
            "authorization",
            format!(
                "TC3-HMAC-SHA256 Credential={}/{}/cvm/tc3_request, SignedHeaders=content-type;host, Signature={sig}",
                key.secret_id, auth.date
            ),
        );
    }
    let req = req
        .body(Body::from(bytes))
        .unwrap_or_else(|e| panic!("{e}"));
    let v = body_of(env, req).await;
    let inner = v["Response"].clone();
    assert!(
        inner["RequestId"].is_string(),
        "a Tencent answer without Response.RequestId: {v}"
    );
    let code = inner["Error"]["Code"].as_str().unwrap_or("").to_string();
    Answer::of(inner, code)
}

/// One Alibaba call. A parameter whose value is None is left out (`RegionId`, which
/// [`Req::new`] otherwise adds).
pub async fn alibaba(
    env: &Env,
    key: &Credentials,
    action: &str,
    params: &[(String, Option<String>)],
    how: Signing,
) -> Answer {
    let given: Vec<(&str, &str)> = params
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v)))
        .collect();
    let mut r = Req::new(key, action, &given);
    r.params
        .retain(|(k, _)| !params.iter().any(|(n, v)| n == k && v.is_none()));
    match how {
        Signing::Good => {}
        Signing::WrongSecret => r.secret = Some("wrong"),
        Signing::Stale => r.time = ids::now() - STALE_SECS,
        Signing::Unsigned => return alibaba_unsigned(env, action, &r.params).await,
    }
    let resp = send(env, r).await;
    Answer::of(resp.body, resp.code)
}

/// An Alibaba request in the RPC shape with no credentials at all.
async fn alibaba_unsigned(env: &Env, action: &str, params: &[(String, String)]) -> Answer {
    let mut all: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), ikon_api::alibaba::VERSION.into()),
        ("Format".into(), "JSON".into()),
    ];
    all.extend(params.iter().cloned());
    let req = Request::builder()
        .method("POST")
        .uri(format!("/?{}", form(&all)))
        .header("host", HOST)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let v = body_of(env, req).await;
    let code = v["Code"].as_str().unwrap_or("").to_string();
    Answer::of(v, code)
}

async fn body_of(env: &Env, req: Request<Body>) -> Value {
    let resp = env
        .app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap_or_default();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}
