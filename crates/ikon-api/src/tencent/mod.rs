//! The Tencent Cloud API 3.0 dialect (CVM 2017-03-12, and CBS on the same endpoint): one
//! path, action in `X-TC-Action`, TC3-HMAC-SHA256, and the `{"Response": {…, "RequestId"}}`
//! envelope — HTTP 200 with a bare `application/json` content type even for errors, because
//! the Python SDK ignores error bodies otherwise (reference §1.4).

mod actions;
pub use actions::all as actions;
pub mod auth;
pub mod errors;
mod import;
pub use import::upload;
mod instances;
mod market;
pub mod params;
mod transfer;
mod views;

use crate::core::{Outcome, RequestId};
use crate::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ikon_service::{ids, Caller, KeyLookup};
use serde_json::{json, Value};

/// API version this dialect serves.
pub const VERSION: &str = "2017-03-12";
/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// An error in the dialect's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Error code, e.g. `InvalidImageId.NotFound`.
    pub code: String,
    /// Message for people.
    pub message: String,
    /// For an internal failure: the full error chain (logged by the API core, never sent).
    pub internal: Option<String>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            code: code.into(),
            message: message.into(),
            internal: None,
        }
    }

    /// `InternalError` with the generic message; `chain` is logged, never sent.
    pub fn internal(chain: String) -> ApiError {
        ApiError {
            internal: Some(chain),
            ..ApiError::new("InternalError", crate::core::INTERNAL_MESSAGE)
        }
    }
}

/// The authenticated context of one call.
pub struct Call {
    /// Who.
    pub caller: Caller,
    /// Action name.
    pub action: String,
    /// Parameters as JSON.
    pub params: Value,
    /// Whether the client asked for English messages.
    pub english: bool,
}

pub(crate) fn envelope(request_id: &str, body: Result<Value, ApiError>) -> Response {
    let inner = match body {
        Ok(Value::Object(mut m)) => {
            m.insert("RequestId".into(), Value::String(request_id.to_string()));
            Value::Object(m)
        }
        Ok(_) => json!({ "RequestId": request_id }),
        Err(e) => json!({
            "Error": { "Code": e.code, "Message": e.message },
            "RequestId": request_id,
        }),
    };
    let mut resp = (StatusCode::OK, json!({ "Response": inner }).to_string()).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Handles one Tencent-dialect request; its [`Outcome`] goes to the API core.
pub async fn handle(
    st: &AppState,
    request_id: &RequestId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let action = header_str(&headers, "x-tc-action").unwrap_or_default();
    let result = process(st, &method, &uri, &headers, body).await;
    let outcome = outcome(action, &result);
    let mut resp = envelope(&request_id.0, result);
    resp.extensions_mut().insert(outcome);
    resp
}

/// What the API core records about a request answered with `result`.
pub(crate) fn outcome(action: String, result: &Result<Value, ApiError>) -> Outcome {
    let (code, internal) = match result {
        Ok(_) => ("Success".to_string(), None),
        Err(e) => (e.code.clone(), e.internal.clone()),
    };
    Outcome {
        dialect: "tencent",
        action,
        code,
        internal,
    }
}

async fn process(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    if *method != Method::GET && *method != Method::POST {
        return Err(ApiError::new(
            "UnsupportedProtocol",
            format!("HTTP method {method} is not supported; use GET or POST"),
        ));
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            "RequestSizeLimitExceeded",
            format!("request bodies are limited to {MAX_BODY} bytes"),
        )
    })?;
    let action =
        header_str(headers, "x-tc-action").ok_or_else(|| params::missing("X-TC-Action"))?;
    let version =
        header_str(headers, "x-tc-version").ok_or_else(|| params::missing("X-TC-Version"))?;
    let (account_id, is_admin) = authenticate(st, method, uri, headers, &body).await?;
    if version != VERSION {
        return Err(ApiError::new(
            "NoSuchVersion",
            format!("API version {version} is not supported; use {VERSION}"),
        ));
    }
    let params = if *method == Method::GET {
        params::from_query(uri.query().unwrap_or(""))?
    } else if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                "InvalidParameter",
                format!("the request body is not valid JSON: {e}"),
            )
        })?
    };
    st.svc
        .accounts()
        .admit(&account_id, &action)
        .await
        .map_err(|e| errors::map(&action, e))?;
    let region = header_str(headers, "x-tc-region").unwrap_or_default();
    let english = header_str(headers, "x-tc-language").is_some_and(|l| l == "en-US");
    let call = Call {
        caller: Caller {
            account_id,
            is_admin,
            region,
        },
        action,
        params,
        english,
    };
    actions::dispatch(&st.svc, &call).await
}

/// Verifies a request's TC3-HMAC-SHA256 signature (timestamp window, key, signature over
/// `body`; an `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` request signs no body) and returns the
/// caller's account id and whether it is the platform administrator.
pub(crate) async fn authenticate(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, bool), ApiError> {
    let timestamp =
        header_str(headers, "x-tc-timestamp").ok_or_else(|| params::missing("X-TC-Timestamp"))?;
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| ApiError::new("InvalidParameter", "X-TC-Timestamp must be unix seconds"))?;
    let authz = header_str(headers, "authorization").ok_or_else(|| {
        ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "the Authorization header is missing",
        )
    })?;
    let auth = auth::parse_authorization(&authz).map_err(auth_error)?;
    let lookup = st
        .svc
        .accounts()
        .lookup_key(&auth.secret_id)
        .await
        .map_err(|e| errors::map("", e))?;
    let (secret_key, account_id, is_admin) = match lookup {
        KeyLookup::Unknown => {
            return Err(ApiError::new(
                "AuthFailure.SecretIdNotFound",
                format!("SecretId {} does not exist", auth.secret_id),
            ))
        }
        KeyLookup::Disabled => {
            return Err(ApiError::new(
                "AuthFailure.SecretIdNotFound",
                format!("SecretId {} is disabled", auth.secret_id),
            ))
        }
        KeyLookup::Active {
            secret_key,
            account_id,
            is_admin,
        } => (secret_key, account_id, is_admin),
    };
    {
        let header = |name: &str| header_str(headers, name);
        let signed = auth::SignedRequest {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            header: &header,
            body,
            timestamp,
        };
        auth::verify(&secret_key, &auth, &signed, ids::now(), ids::utc_date).map_err(auth_error)?;
    }
    if headers.contains_key("x-tc-token") {
        return Err(ApiError::new(
            "AuthFailure.TokenFailure",
            "temporary credentials (X-TC-Token) are not issued by this service",
        ));
    }
    Ok((account_id, is_admin))
}

fn auth_error(e: auth::AuthError) -> ApiError {
    match e {
        auth::AuthError::InvalidAuthorization(m) => {
            ApiError::new("AuthFailure.InvalidAuthorization", m)
        }
        auth::AuthError::Expired(m) => ApiError::new("AuthFailure.SignatureExpire", m),
        auth::AuthError::SignatureMismatch(m) => ApiError::new("AuthFailure.SignatureFailure", m),
    }
}
