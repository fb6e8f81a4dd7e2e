//! The Alibaba Cloud ECS 2014-05-26 dialect (RPC style): `GET`/`POST /`, parameters in the
//! query (or a form body), action and version as `Action`/`Version` parameters (V1
//! signature) or `x-acs-action`/`x-acs-version` headers (V3 signature). Responses are a flat
//! JSON object with `RequestId` (reference §1.5); errors use real HTTP statuses and
//! `{RequestId, HostId, Code, Message, Recommend}`, all strings. A passing `DryRun` is the
//! error `DryRunOperation`, as Alibaba reports it.
//!
//! Ids: every object is shown with the Alibaba prefix and the same 8 characters as its
//! service id (`img-X` is `m-X`, `ins-X` is `i-X`, `disk-X` is `d-X`, `snap-X` is `s-X`,
//! `task-X` is `t-X`), so one object has the same identity in both dialects (see
//! [`views::PREFIXES`]). Actions whose Tea model has no `RegionId` act in the region of the
//! resource they name. Modules: `actions` (dispatch, images, regions, instance types),
//! `tasks`, `instances`, `disks` (snapshots and disks).

mod actions;
pub use actions::all as actions;
pub mod auth;
mod common;
mod disks;
mod errors;
mod instances;
pub mod params;
mod tasks;
mod transfer;
pub mod views;

use crate::core::{Outcome, RequestId};
use crate::AppState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ikon_service::{ids, Caller, KeyLookup};
use params::{missing, Params};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// API version this dialect serves.
pub const VERSION: &str = "2014-05-26";

/// An error in Alibaba's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Error code, e.g. `InvalidImageId.NotFound`.
    pub code: String,
    /// Message for people.
    pub message: String,
    /// For an internal failure: the full error chain (logged by the API core, never sent).
    pub internal: Option<String>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            internal: None,
        }
    }

    /// 500 `InternalError` with the generic message; `chain` is logged, never sent.
    pub fn internal(chain: String) -> ApiError {
        ApiError {
            internal: Some(chain),
            ..ApiError::new(500, "InternalError", crate::core::INTERNAL_MESSAGE)
        }
    }

    /// 400 `InvalidParameter`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidParameter", message)
    }

    /// 400 `DryRunOperation`: what a dry run that would succeed answers.
    pub fn dry_run() -> ApiError {
        ApiError::new(
            400,
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        )
    }
}

/// The authenticated context of one call.
pub struct Call {
    /// Who (region from `RegionId`, empty when absent).
    pub caller: Caller,
    /// Action name.
    pub action: String,
    /// Parameters.
    pub params: Params,
    /// The endpoint the client addressed (`Host`).
    pub host: String,
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

fn envelope(request_id: &str, host: &str, body: Result<Value, ApiError>) -> Response {
    match body {
        Ok(v) => {
            let mut m = match v {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            m.insert("RequestId".into(), Value::String(request_id.to_string()));
            json_response(StatusCode::OK, &Value::Object(m))
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_response(
                status,
                &json!({
                    "RequestId": request_id,
                    "HostId": host,
                    "Code": e.code,
                    "Message": e.message,
                    "Recommend": "",
                }),
            )
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Whether the body is form-encoded parameters.
pub fn is_form(headers: &HeaderMap) -> bool {
    header_str(headers, "content-type").is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// Handles one Alibaba-dialect request whose body has been read; its [`Outcome`] goes to
/// the API core. The request id is shown in upper case, as Alibaba shows them.
pub async fn handle(
    st: &AppState,
    request_id: &RequestId,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let host = header_str(headers, "host").unwrap_or_default();
    let mut action = String::new();
    let result = process(st, method, uri, headers, body, &mut action).await;
    let (code, internal) = match &result {
        Ok(_) => ("Success".to_string(), None),
        Err(e) => (e.code.clone(), e.internal.clone()),
    };
    let mut resp = envelope(&request_id.0.to_ascii_uppercase(), &host, result);
    resp.extensions_mut().insert(Outcome {
        dialect: "alibaba",
        action,
        code,
        internal,
    });
    resp
}

/// Parameters the platform adds to every call; they carry no meaning for the action.
const COMMON: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "SecurityToken",
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
    "callerBid",
];

async fn process(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    action_out: &mut String,
) -> Result<Value, ApiError> {
    if *method != Method::GET && *method != Method::POST {
        return Err(ApiError::new(
            405,
            "UnsupportedHTTPMethod",
            format!("HTTP method {method} is not supported; use GET or POST"),
        ));
    }
    let query = params::parse_form(uri.query().unwrap_or(""))?;
    let mut all = query.clone();
    if is_form(headers) && !body.is_empty() {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::invalid("the request body is not UTF-8"))?;
        all.extend(params::parse_form(text)?);
    }
    let p = Params::from_pairs(&all)?;
    let authz = header_str(headers, "authorization").filter(|a| !a.trim().is_empty());
    let v3 = authz.is_some() && p.str_opt("Signature").is_none();
    let pick = |param: &str, header: &str| {
        if v3 {
            header_str(headers, header).filter(|s| !s.is_empty())
        } else {
            p.str_opt(param).map(str::to_string)
        }
    };
    let action = pick("Action", "x-acs-action").ok_or_else(|| missing("Action"))?;
    *action_out = action.clone();
    let version = pick("Version", "x-acs-version").ok_or_else(|| missing("Version"))?;
    let now = ids::now();
    let (key_id, nonce, time, (account_id, is_admin)) = if v3 {
        let auth = auth::parse_v3(authz.as_deref().unwrap_or_default()).map_err(auth_error)?;
        let date = header_str(headers, "x-acs-date").ok_or_else(|| missing("x-acs-date"))?;
        let nonce = header_str(headers, "x-acs-signature-nonce")
            .ok_or_else(|| missing("x-acs-signature-nonce"))?;
        let hash = hex::encode(Sha256::digest(body));
        if let Some(h) = header_str(headers, "x-acs-content-sha256") {
            if !h.trim().eq_ignore_ascii_case(&hash) {
                return Err(ApiError::new(
                    400,
                    "IncompleteSignature",
                    "The x-acs-content-sha256 header does not match the request body.",
                ));
            }
        }
        for required in ["host", "x-acs-date", "x-acs-signature-nonce"] {
            if !auth.signed_headers.iter().any(|h| h == required) {
                return Err(ApiError::new(
                    400,
                    "IncompleteSignature",
                    format!("The request signature does not conform to Aliyun standards: SignedHeaders must include {required}."),
                ));
            }
        }
        for (name, _) in headers {
            let n = name.as_str();
            if n.starts_with("x-acs-") && !auth.signed_headers.iter().any(|h| h == n) {
                return Err(ApiError::new(
                    400,
                    "IncompleteSignature",
                    format!("The request signature does not conform to Aliyun standards: header {n} must be signed."),
                ));
            }
        }
        let (secret, who) = lookup(st, &auth.access_key_id).await?;
        let header = |name: &str| header_str(headers, name);
        auth::v3_verify(
            &secret,
            &auth,
            &auth::V3Request {
                method: method.as_str(),
                path: uri.path(),
                query: &query,
                header: &header,
                payload_hash: &hash,
            },
        )
        .map_err(auth_error)?;
        (auth.access_key_id, nonce, date, who)
    } else {
        let key_id = p.str_req("AccessKeyId")?.to_string();
        let signature = p.str_req("Signature")?;
        let time = p.str_req("Timestamp")?.to_string();
        let nonce = p.str_req("SignatureNonce")?.to_string();
        match p.str_opt("SignatureMethod") {
            Some("HMAC-SHA1") => {}
            Some(m) => {
                return Err(ApiError::new(
                    400,
                    "UnsupportedParameter",
                    format!("SignatureMethod {m} is not supported; use HMAC-SHA1"),
                ))
            }
            None => return Err(missing("SignatureMethod")),
        }
        if p.str_opt("SignatureVersion").is_some_and(|v| v != "1.0") {
            return Err(ApiError::new(
                400,
                "UnsupportedParameter",
                "SignatureVersion must be 1.0",
            ));
        }
        if p.str_opt("SignatureType").is_some() {
            return Err(ApiError::new(
                400,
                "UnsupportedParameter",
                "SignatureType must be empty: bearer tokens are not issued by this service",
            ));
        }
        let (secret, who) = lookup(st, &key_id).await?;
        auth::v1_verify(&secret, method.as_str(), &all, signature).map_err(auth_error)?;
        (key_id, nonce, time, who)
    };
    auth::check_time(&time, now).map_err(auth_error)?;
    if p.str_opt("SecurityToken").is_some() || headers.contains_key("x-acs-security-token") {
        return Err(ApiError::new(
            400,
            "InvalidSecurityToken.Malformed",
            "temporary (STS) credentials are not issued by this service",
        ));
    }
    if !st.nonces.first_use(&key_id, &nonce, now) {
        return Err(auth_error(auth::AuthError::NonceUsed));
    }
    if version != VERSION {
        return Err(ApiError::new(
            400,
            "InvalidVersion",
            format!("Specified parameter Version is not valid: {version} (this service speaks {VERSION})."),
        ));
    }
    st.svc
        .accounts()
        .admit(&account_id, &action)
        .await
        .map_err(|e| errors::map(&action, e))?;
    let mut rest = all;
    rest.retain(|(k, _)| !COMMON.contains(&k.as_str()));
    let call = Call {
        caller: Caller {
            account_id,
            is_admin,
            region: p.str_opt("RegionId").unwrap_or_default().to_string(),
        },
        action,
        params: Params::from_pairs(&rest)?,
        host: header_str(headers, "host").unwrap_or_default(),
    };
    actions::dispatch(&st.svc, &call).await
}

fn internal(e: ikon_service::Error) -> ApiError {
    errors::map("", e)
}

/// The secret of an access key and who it acts for: (secret, (account id, is admin)).
async fn lookup(st: &AppState, key_id: &str) -> Result<(String, (String, bool)), ApiError> {
    match st
        .svc
        .accounts()
        .lookup_key(key_id)
        .await
        .map_err(internal)?
    {
        KeyLookup::Unknown => Err(ApiError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )),
        KeyLookup::Disabled => Err(ApiError::new(
            403,
            "Forbidden.AccessKeyDisabled",
            "The specified AccessKey is disabled.",
        )),
        KeyLookup::Active {
            secret_key,
            account_id,
            is_admin,
        } => Ok((secret_key, (account_id, is_admin))),
    }
}

fn auth_error(e: auth::AuthError) -> ApiError {
    use auth::AuthError as A;
    match e {
        A::Incomplete(m) => ApiError::new(400, "IncompleteSignature", m),
        A::Unsupported(m) => ApiError::new(400, "UnsupportedParameter", m),
        A::IllegalTimestamp(m) => ApiError::new(400, "IllegalTimestamp", m),
        A::Expired(m) => ApiError::new(400, "InvalidTimeStamp.Expired", m),
        // The legacy SDK splits this message on ':' (reference §1.5).
        A::Mismatch(sts) => ApiError::new(
            400,
            "SignatureDoesNotMatch",
            format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
        ),
        A::NonceUsed => ApiError::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ),
    }
}
