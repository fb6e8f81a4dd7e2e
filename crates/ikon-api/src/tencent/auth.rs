//! TC3-HMAC-SHA256 verification (Tencent Cloud API 3.0), rebuilt from the raw request: the
//! raw `Host` header (which may be `http://127.0.0.1:8080` when a client puts a scheme in
//! its endpoint), the raw query string for GET, and the raw body bytes.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Allowed clock skew between client and server, seconds (reference §1.3).
pub const MAX_SKEW_SECS: i64 = 300;

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// SecretId.
    pub secret_id: String,
    /// Credential-scope date `YYYY-MM-DD`.
    pub date: String,
    /// Credential-scope service (`cvm`, `cbs`).
    pub service: String,
    /// Lower-case header names, in order.
    pub signed_headers: Vec<String>,
    /// 32-byte signature.
    pub signature: Vec<u8>,
}

/// Why a request's authentication failed (mapped to `AuthFailure.*` codes by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Header missing or malformed.
    InvalidAuthorization(String),
    /// Timestamp outside the window.
    Expired(String),
    /// Signature does not match.
    SignatureMismatch(String),
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX`.
pub fn parse_authorization(h: &str) -> Result<Authorization, AuthError> {
    let bad = |m: &str| AuthError::InvalidAuthorization(m.to_string());
    let rest = h
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| bad("the Authorization header must use the TC3-HMAC-SHA256 algorithm"))?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        } else if !part.is_empty() {
            return Err(bad("unexpected field in the Authorization header"));
        }
    }
    let cred = cred.ok_or_else(|| bad("Credential missing from the Authorization header"))?;
    let signed =
        signed.ok_or_else(|| bad("SignedHeaders missing from the Authorization header"))?;
    let sig = sig.ok_or_else(|| bad("Signature missing from the Authorization header"))?;
    let parts: Vec<&str> = cred.split('/').collect();
    let [secret_id, date, service, "tc3_request"] = parts.as_slice() else {
        return Err(bad("Credential must be SecretId/Date/Service/tc3_request"));
    };
    if secret_id.is_empty() || service.is_empty() || date.len() != 10 {
        return Err(bad(
            "Credential must be SecretId/YYYY-MM-DD/Service/tc3_request",
        ));
    }
    let signed_headers: Vec<String> = signed
        .split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) || !signed_headers.iter().any(|h| h == "host") {
        return Err(bad(
            "SignedHeaders must name the signed headers, host included",
        ));
    }
    let signature = hex::decode(sig).map_err(|_| bad("Signature must be 64 hex digits"))?;
    if signature.len() != 32 {
        return Err(bad("Signature must be 64 hex digits"));
    }
    Ok(Authorization {
        secret_id: secret_id.to_string(),
        date: date.to_string(),
        service: service.to_string(),
        signed_headers,
        signature,
    })
}

/// What the signature covers, taken verbatim from the request.
pub struct SignedRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Request path (`/`).
    pub path: &'a str,
    /// Raw query string (GET), empty for POST.
    pub query: &'a str,
    /// Looks up a header's raw value by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Raw body.
    pub body: &'a [u8],
    /// `X-TC-Timestamp`.
    pub timestamp: i64,
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The string to sign for `req` under `auth`'s scope.
pub fn string_to_sign(auth: &Authorization, req: &SignedRequest<'_>) -> String {
    let payload_hash = match (req.header)("x-tc-content-sha256") {
        Some(v) if v.trim() == "UNSIGNED-PAYLOAD" => {
            hex::encode(Sha256::digest(b"UNSIGNED-PAYLOAD"))
        }
        _ => hex::encode(Sha256::digest(req.body)),
    };
    let mut canonical_headers = String::new();
    for h in &auth.signed_headers {
        let v = (req.header)(h).unwrap_or_default();
        canonical_headers.push_str(h);
        canonical_headers.push(':');
        canonical_headers.push_str(v.trim());
        canonical_headers.push('\n');
    }
    let query = if req.method == "GET" { req.query } else { "" };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        query,
        canonical_headers,
        auth.signed_headers.join(";"),
        payload_hash
    );
    format!(
        "TC3-HMAC-SHA256\n{}\n{}/{}/tc3_request\n{}",
        req.timestamp,
        auth.date,
        auth.service,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// The signing key for a secret, date and service.
fn signing_key(secret_key: &str, date: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac(&k_date, service.as_bytes());
    hmac(&k_service, b"tc3_request")
}

/// Computes the hex signature a client would send (used by tests and benchmarks).
pub fn sign(secret_key: &str, auth: &Authorization, req: &SignedRequest<'_>) -> String {
    let key = signing_key(secret_key, &auth.date, &auth.service);
    hex::encode(hmac(&key, string_to_sign(auth, req).as_bytes()))
}

/// Verifies a request: timestamp window, scope date, then the signature (constant time).
pub fn verify(
    secret_key: &str,
    auth: &Authorization,
    req: &SignedRequest<'_>,
    now: i64,
    utc_date: impl Fn(i64) -> String,
) -> Result<(), AuthError> {
    if now.abs_diff(req.timestamp) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(AuthError::Expired(format!(
            "X-TC-Timestamp {} is more than {MAX_SKEW_SECS} s away from the server time {now}",
            req.timestamp
        )));
    }
    if auth.date != utc_date(req.timestamp) {
        return Err(AuthError::SignatureMismatch(
            "the credential date is not the UTC date of X-TC-Timestamp".into(),
        ));
    }
    let key = signing_key(secret_key, &auth.date, &auth.service);
    let matches = |r: &SignedRequest<'_>| {
        HmacSha256::new_from_slice(&key).is_ok_and(|mut mac| {
            mac.update(string_to_sign(auth, r).as_bytes());
            mac.verify_slice(&auth.signature).is_ok()
        })
    };
    if matches(req) {
        return Ok(());
    }
    // Some SDKs sign the endpoint's host name without its port while sending `name:port`:
    // the same host, so that signature is accepted too (nothing else differs).
    if let Some(bare) = (req.header)("host").as_deref().and_then(host_without_port) {
        let header = |h: &str| {
            if h == "host" {
                Some(bare.clone())
            } else {
                (req.header)(h)
            }
        };
        if matches(&SignedRequest {
            header: &header,
            ..*req
        }) {
            return Ok(());
        }
    }
    Err(AuthError::SignatureMismatch(
        "the request signature does not match (check the SecretKey and the signed Host)".into(),
    ))
}

/// `name` of a `name:port` (or `[v6]:port`) Host value; None when it has no port.
fn host_without_port(host: &str) -> Option<String> {
    let host = host.trim();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        (format!("[{v6}]"), after.strip_prefix(':')?)
    } else {
        let (name, port) = host.rsplit_once(':')?;
        if name.contains(':') {
            return None; // a bare IPv6 address, no port
        }
        (name.to_string(), port)
    };
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference §1.3 test vector (computed with the SDK's `Sign.sign_tc3`).
    #[test]
    fn sdk_test_vector() {
        let body = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        for (ct, want) in [
            (
                "application/json; charset=utf-8",
                "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
            ),
            (
                "application/json",
                "683bd0b53659853c39699162253251192320a09b3937e27bf8e08a559b1465b8",
            ),
        ] {
            let header = |h: &str| match h {
                "content-type" => Some(ct.to_string()),
                "host" => Some("cvm.tencentcloudapi.com".to_string()),
                _ => None,
            };
            let auth = Authorization {
                secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE".into(),
                date: "2019-02-25".into(),
                service: "cvm".into(),
                signed_headers: vec!["content-type".into(), "host".into()],
                signature: vec![0; 32],
            };
            let req = SignedRequest {
                method: "POST",
                path: "/",
                query: "",
                header: &header,
                body,
                timestamp: 1_551_113_065,
            };
            assert_eq!(sign("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &auth, &req), want);
            let mut good = auth.clone();
            good.signature = hex::decode(want).unwrap_or_default();
            let date = |_| "2019-02-25".to_string();
            assert_eq!(
                verify(
                    "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                    &good,
                    &req,
                    1_551_113_100,
                    date
                ),
                Ok(())
            );
            assert!(matches!(
                verify("wrong", &good, &req, 1_551_113_100, date),
                Err(AuthError::SignatureMismatch(_))
            ));
            assert!(matches!(
                verify(
                    "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
                    &good,
                    &req,
                    1_551_113_065 + 301,
                    date
                ),
                Err(AuthError::Expired(_))
            ));
        }
    }

    #[test]
    fn parses_the_sdk_header() {
        let a = parse_authorization(
            "TC3-HMAC-SHA256 Credential=AKIDx/2024-01-02/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        );
        let a = a.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.secret_id, "AKIDx");
        assert_eq!(a.service, "cvm");
        assert_eq!(a.signed_headers, ["content-type", "host"]);
        for bad in [
            "HMAC-SHA1 x",
            "TC3-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=AKID/2024-01-02/cvm/tc3_request, SignedHeaders=host, Signature=zz",
            "TC3-HMAC-SHA256 Credential=AKID/2024-01-02/cvm/tc3_request, Signature=00",
        ] {
            assert!(parse_authorization(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_host_signed_without_its_port_is_the_same_host() {
        let signed_as = |host: &'static str| {
            move |h: &str| match h {
                "host" => Some(host.to_string()),
                _ => None,
            }
        };
        let mut auth = Authorization {
            secret_id: "AKIDtest".into(),
            date: "2024-01-02".into(),
            service: "cvm".into(),
            signed_headers: vec!["host".into()],
            signature: vec![],
        };
        let req = |header: &'static dyn Fn(&str) -> Option<String>| SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            header,
            body: b"{}",
            timestamp: 1_704_153_600,
        };
        let date = |_| "2024-01-02".to_string();
        let sent: &'static dyn Fn(&str) -> Option<String> =
            Box::leak(Box::new(signed_as("127.0.0.1:8780")));
        for (signed, ok) in [
            ("127.0.0.1:8780", true),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("127.0.0.1:8781", false),
        ] {
            let h: &'static dyn Fn(&str) -> Option<String> = Box::leak(Box::new(signed_as(signed)));
            auth.signature = hex::decode(sign("secret", &auth, &req(h))).unwrap_or_default();
            assert_eq!(
                verify("secret", &auth, &req(sent), 1_704_153_600, date).is_ok(),
                ok,
                "{signed}"
            );
        }
        assert_eq!(host_without_port("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(host_without_port("::1"), None);
        assert_eq!(host_without_port("example.com"), None);
    }
}
