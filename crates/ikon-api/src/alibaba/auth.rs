//! Alibaba Cloud request signatures (reference §1.3, §1.4): RPC V1 (HMAC-SHA1 over the
//! sorted, RFC 3986-encoded parameters, keyed with `secret&`) and V3 (ACS3-HMAC-SHA256 over a
//! canonical request covering the headers the client lists), the `YYYY-MM-DDThh:mm:ssZ`
//! timestamps both use, and a replay guard for signature nonces.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// Allowed clock skew between client and server, seconds (Alibaba uses 15 minutes).
pub const MAX_SKEW_SECS: i64 = 900;
/// The V3 algorithm name.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Why authentication failed (mapped to Alibaba codes by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The `Authorization` header or a signature parameter is malformed.
    #[error("{0}")]
    Incomplete(String),
    /// `SignatureMethod` / `SignatureVersion` / algorithm not supported.
    #[error("{0}")]
    Unsupported(String),
    /// The timestamp cannot be parsed.
    #[error("{0}")]
    IllegalTimestamp(String),
    /// The timestamp is outside the window.
    #[error("{0}")]
    Expired(String),
    /// The signature does not match; carries the server's string to sign.
    #[error("signature mismatch")]
    Mismatch(String),
    /// The nonce was seen before.
    #[error("nonce used")]
    NonceUsed,
}

/// RFC 3986 percent-encoding of UTF-8 text: unreserved characters kept, everything else
/// `%XY` with upper-case hex (so space is `%20`, `*` is `%2A`, `~` stays).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sorted_encoded(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut enc: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    enc.sort();
    enc
}

/// The V1 StringToSign of a request's parameters (`Signature` itself is left out).
pub fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let canonical: Vec<String> = sorted_encoded(params)
        .into_iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{method}&%2F&{}", percent_encode(&canonical.join("&")))
}

fn v1_mac(secret: &str) -> Result<HmacSha1, AuthError> {
    HmacSha1::new_from_slice(format!("{secret}&").as_bytes())
        .map_err(|_| AuthError::Incomplete("unusable key".into()))
}

/// The base64 V1 signature a client computes.
pub fn v1_sign(secret: &str, string_to_sign: &str) -> String {
    match v1_mac(secret) {
        Ok(mut m) => {
            m.update(string_to_sign.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Verifies a V1 signature (constant time).
pub fn v1_verify(
    secret: &str,
    method: &str,
    params: &[(String, String)],
    signature: &str,
) -> Result<(), AuthError> {
    let sts = v1_string_to_sign(method, params);
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| AuthError::Mismatch(sts.clone()))?;
    let mut m = v1_mac(secret)?;
    m.update(sts.as_bytes());
    m.verify_slice(&given).map_err(|_| AuthError::Mismatch(sts))
}

/// The parsed V3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Authorization {
    /// AccessKeyId.
    pub access_key_id: String,
    /// Lower-case signed header names, in the client's order.
    pub signed_headers: Vec<String>,
    /// 32-byte signature.
    pub signature: Vec<u8>,
}

/// Parses `ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=a;b,Signature=HEX`.
pub fn parse_v3(h: &str) -> Result<V3Authorization, AuthError> {
    let bad = |m: &str| AuthError::Incomplete(m.to_string());
    let (alg, rest) = h
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("the Authorization header is malformed"))?;
    if alg != V3_ALGORITHM {
        return Err(AuthError::Unsupported(format!(
            "signature algorithm {alg} is not supported; use {V3_ALGORITHM}"
        )));
    }
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
    let cred = cred
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("Credential missing from the Authorization header"))?;
    let signed =
        signed.ok_or_else(|| bad("SignedHeaders missing from the Authorization header"))?;
    let sig = sig.ok_or_else(|| bad("Signature missing from the Authorization header"))?;
    let signed_headers: Vec<String> = signed
        .split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(bad("SignedHeaders must name the signed headers"));
    }
    let signature = hex::decode(sig)
        .ok()
        .filter(|s| s.len() == 32)
        .ok_or_else(|| bad("Signature must be 64 hex digits"))?;
    Ok(V3Authorization {
        access_key_id: cred.to_string(),
        signed_headers,
        signature,
    })
}

/// What a V3 signature covers.
pub struct V3Request<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Decoded URL query parameters.
    pub query: &'a [(String, String)],
    /// A header's raw value by lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Lower-case hex SHA-256 of the body (as sent in `x-acs-content-sha256`).
    pub payload_hash: &'a str,
}

/// The V3 canonical request.
pub fn v3_canonical_request(signed_headers: &[String], req: &V3Request<'_>) -> String {
    let query: Vec<String> = sorted_encoded(req.query)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut names = signed_headers.to_vec();
    names.sort();
    let mut headers = String::new();
    for h in &names {
        headers.push_str(h);
        headers.push(':');
        headers.push_str((req.header)(h).unwrap_or_default().trim());
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        if req.path.is_empty() { "/" } else { req.path },
        query.join("&"),
        headers,
        names.join(";"),
        req.payload_hash
    )
}

/// The V3 StringToSign.
pub fn v3_string_to_sign(signed_headers: &[String], req: &V3Request<'_>) -> String {
    format!(
        "{V3_ALGORITHM}\n{}",
        hex::encode(Sha256::digest(
            v3_canonical_request(signed_headers, req).as_bytes()
        ))
    )
}

fn v3_mac(secret: &str) -> Result<HmacSha256, AuthError> {
    HmacSha256::new_from_slice(secret.as_bytes())
        .map_err(|_| AuthError::Incomplete("unusable key".into()))
}

/// The hex V3 signature a client computes.
pub fn v3_sign(secret: &str, signed_headers: &[String], req: &V3Request<'_>) -> String {
    match v3_mac(secret) {
        Ok(mut m) => {
            m.update(v3_string_to_sign(signed_headers, req).as_bytes());
            hex::encode(m.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Verifies a V3 signature (constant time).
pub fn v3_verify(
    secret: &str,
    auth: &V3Authorization,
    req: &V3Request<'_>,
) -> Result<(), AuthError> {
    let sts = v3_string_to_sign(&auth.signed_headers, req);
    let mut m = v3_mac(secret)?;
    m.update(sts.as_bytes());
    m.verify_slice(&auth.signature)
        .map_err(|_| AuthError::Mismatch(sts))
}

/// Parses `YYYY-MM-DDThh:mm:ssZ` (UTC) into unix seconds.
pub fn parse_timestamp(s: &str) -> Result<i64, AuthError> {
    let bad = || {
        AuthError::IllegalTimestamp(format!(
            "the timestamp {s:?} must be YYYY-MM-DDThh:mm:ssZ in UTC"
        ))
    };
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, AuthError> {
        let t = s.get(r).ok_or_else(bad)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    Ok(ikon_service::ids::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Checks a request timestamp against the server clock.
pub fn check_time(timestamp: &str, now: i64) -> Result<(), AuthError> {
    let t = parse_timestamp(timestamp)?;
    if (now - t).abs() > MAX_SKEW_SECS {
        return Err(AuthError::Expired(
            "Specified time stamp or date value is expired.".into(),
        ));
    }
    Ok(())
}

/// Nonces seen within the timestamp window, per access key: a signed request is accepted
/// once. Entries older than twice the window are dropped (older timestamps fail anyway).
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: Mutex<HashMap<(String, String), i64>>,
}

/// Entries kept before a sweep of expired ones.
const SWEEP_AT: usize = 4096;

impl NonceCache {
    /// An empty cache.
    pub fn new() -> NonceCache {
        NonceCache::default()
    }

    /// Records `nonce` for `key_id`; false when it was already used.
    pub fn first_use(&self, key_id: &str, nonce: &str, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, t| now - *t <= 2 * MAX_SKEW_SECS);
        }
        let k = (key_id.to_string(), nonce.to_string());
        if seen.contains_key(&k) {
            return false;
        }
        seen.insert(k, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Reference §1.3 test vectors.
    #[test]
    fn v1_test_vectors() {
        let doc = pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        let sts = v1_string_to_sign("GET", &doc);
        assert!(
            sts.contains("Timestamp%3D2016-02-23T12%253A46%253A24Z"),
            "{sts}"
        );
        assert_eq!(v1_sign("testsecret", &sts), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        let post = pairs(&[
            ("Action", "DescribeImages"),
            ("Version", "2014-05-26"),
            ("Format", "JSON"),
            ("AccessKeyId", "testid"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "abc123"),
            ("Timestamp", "2024-01-01T00:00:00Z"),
            ("RegionId", "cn-hangzhou"),
            ("ImageName", "a b*~"),
        ]);
        let sts = v1_string_to_sign("POST", &post);
        assert_eq!(v1_sign("testsecret", &sts), "/iFErCJS/grg+zwQZ9HrCTVdDRs=");
        let mut signed = post.clone();
        signed.push(("Signature".into(), "/iFErCJS/grg+zwQZ9HrCTVdDRs=".into()));
        assert_eq!(
            v1_verify(
                "testsecret",
                "POST",
                &signed,
                "/iFErCJS/grg+zwQZ9HrCTVdDRs="
            ),
            Ok(())
        );
        assert!(matches!(
            v1_verify("wrong", "POST", &signed, "/iFErCJS/grg+zwQZ9HrCTVdDRs="),
            Err(AuthError::Mismatch(s)) if s.starts_with("POST&%2F&")
        ));
        assert!(v1_verify("testsecret", "GET", &signed, "/iFErCJS/grg+zwQZ9HrCTVdDRs=").is_err());
    }

    /// Reference §1.4 test vector.
    #[test]
    fn v3_test_vector() {
        let query = pairs(&[
            ("ImageId", "m-abc"),
            ("ImageName", "a b*~"),
            ("RegionId", "cn-hangzhou"),
        ]);
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let header = |h: &str| {
            Some(
                match h {
                    "host" => "127.0.0.1:8080",
                    "x-acs-action" => "DescribeImages",
                    "x-acs-content-sha256" => empty,
                    "x-acs-date" => "2024-01-01T00:00:00Z",
                    "x-acs-signature-nonce" => "abc123",
                    "x-acs-version" => "2014-05-26",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let signed: Vec<String> = [
            "host",
            "x-acs-action",
            "x-acs-content-sha256",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-version",
        ]
        .map(String::from)
        .to_vec();
        let req = V3Request {
            method: "POST",
            path: "/",
            query: &query,
            header: &header,
            payload_hash: empty,
        };
        let canonical = v3_canonical_request(&signed, &req);
        assert!(canonical.contains("\nImageId=m-abc&ImageName=a%20b%2A~&RegionId=cn-hangzhou\n"));
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "d1f2f81b7d445b57e12002fe051211b2df5885216a78ada63d5d15d097f44fd9"
        );
        let want = "0ef13ced2833b9a26d64193ccfbe17697c705da427675ec82d67d97b3abbeaa1";
        assert_eq!(v3_sign("testsecret", &signed, &req), want);
        let auth = parse_v3(&format!(
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={},Signature={want}",
            signed.join(";")
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(auth.access_key_id, "testid");
        assert_eq!(v3_verify("testsecret", &auth, &req), Ok(()));
        assert!(matches!(
            v3_verify("wrong", &auth, &req),
            Err(AuthError::Mismatch(_))
        ));
        for bad in [
            "ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=zz",
            "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00",
            "nonsense",
        ] {
            assert!(parse_v3(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_and_nonces() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_timestamp("2019-02-25T16:44:25Z"), Ok(1_551_113_065));
        assert_eq!(parse_timestamp("2000-02-29T00:00:00Z"), Ok(951_782_400));
        for bad in [
            "2019-02-25 16:44:25Z",
            "2019-13-01T00:00:00Z",
            "x",
            "2019-02-25T16:44:2aZ",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            check_time("2019-02-25T16:44:25Z", 1_551_113_065 + 901),
            Err(AuthError::Expired(_))
        ));
        assert_eq!(
            check_time("2019-02-25T16:44:25Z", 1_551_113_065 - 900),
            Ok(())
        );
        let c = NonceCache::new();
        assert!(c.first_use("k", "n1", 0));
        assert!(!c.first_use("k", "n1", 1));
        assert!(c.first_use("k2", "n1", 1));
        assert_eq!(percent_encode("a b*~/é"), "a%20b%2A~%2F%C3%A9");
    }
}
