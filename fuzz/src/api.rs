//! Bodies of the ikon-api fuzz targets: the two signature parsers (Tencent TC3 and Alibaba
//! V1/V3, with the verification that follows a successful parse) and the two parameter
//! decoders, fed as the dialect modules feed them (`tencent/mod.rs`, `alibaba/mod.rs`).
//! Inputs are text; invalid UTF-8 is replaced (headers and URIs reach these functions as
//! `&str`). The clock is fixed at [`NOW`] so that every input replays the same way.
//!
//! Shared with `crates/ikon-api/tests/fuzz_regressions.rs` (through `#[path]`).

use ikon_api::alibaba::{auth as ali_auth, params as ali_params};
use ikon_api::tencent::{auth as tc_auth, params as tc_params};
use ikon_service::ids;
use serde_json::Value;

/// Every ikon-api target: (cargo-fuzz binary, body).
pub const TARGETS: &[crate::harness::Target] = &[
    ("tencent_auth", tencent_auth),
    ("alibaba_auth", alibaba_auth),
    ("tencent_params", tencent_params),
    ("alibaba_params", alibaba_params),
];

/// The server clock of every body: 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000;
/// The secret every signature is checked against.
const SECRET: &str = "fuzz-secret";
/// Parameter names whose accessors are tried per input (bounds the work on huge inputs).
const NAMES: usize = 64;

/// The `n` first `\n`-separated fields of `data` (the last one keeps the rest).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let mut v: Vec<String> = text.splitn(n, '\n').map(str::to_string).collect();
    v.resize(n, String::new());
    v
}

/// Tencent TC3-HMAC-SHA256. Input: `Authorization` header, `X-TC-Timestamp`, `Host`, query
/// string (non-empty = a GET), body — one per line. A header that parses is then verified
/// (string to sign, signing key, the host-without-port retry) the way `authenticate` does.
pub fn tencent_auth(data: &[u8]) {
    let f = fields(data, 5);
    let Ok(auth) = tc_auth::parse_authorization(&f[0]) else {
        return;
    };
    let Ok(timestamp) = f[1].trim().parse::<i64>() else {
        return;
    };
    let host = f[2].clone();
    let header = move |name: &str| match name {
        "host" => Some(host.clone()),
        "content-type" => Some("application/json; charset=utf-8".to_string()),
        "x-tc-action" => Some("DescribeImages".to_string()),
        _ => None,
    };
    let req = tc_auth::SignedRequest {
        method: if f[3].is_empty() { "POST" } else { "GET" },
        path: "/",
        query: &f[3],
        header: &header,
        body: f[4].as_bytes(),
        timestamp,
    };
    let _ = tc_auth::string_to_sign(&auth, &req);
    let _ = tc_auth::verify(SECRET, &auth, &req, NOW, ids::utc_date);
}

/// Alibaba V1 and V3. Input: `Authorization` header, `Host`, query string, form body — one
/// per line. The query and body go through the form decoder; a V3 header that parses is
/// verified over them (canonical request, string to sign), the V1 signature over the
/// parameters, and the `Timestamp` parameter (or `x-acs-date` = the query's `Date`) is
/// parsed and checked against the clock.
pub fn alibaba_auth(data: &[u8]) {
    let f = fields(data, 4);
    let query = ali_params::parse_form(&f[2]).unwrap_or_default();
    let mut all = query.clone();
    all.extend(ali_params::parse_form(&f[3]).unwrap_or_default());
    let param = |k: &str| {
        all.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if let Ok(auth) = ali_auth::parse_v3(&f[0]) {
        let host = f[1].clone();
        let date = param("Date");
        let header = move |name: &str| match name {
            "host" => Some(host.clone()),
            "x-acs-date" => Some(date.clone()),
            "x-acs-signature-nonce" => Some("nonce".to_string()),
            "x-acs-action" => Some("DescribeImages".to_string()),
            _ => None,
        };
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let req = ali_auth::V3Request {
            method: "POST",
            path: "/",
            query: &query,
            header: &header,
            payload_hash: hash,
        };
        let _ = ali_auth::v3_canonical_request(&auth.signed_headers, &req);
        let _ = ali_auth::v3_verify(SECRET, &auth, &req);
        let _ = ali_auth::check_time(&param("Date"), NOW);
    }
    let _ = ali_auth::v1_string_to_sign("GET", &all);
    let _ = ali_auth::v1_verify(SECRET, "POST", &all, &param("Signature"));
    let _ = ali_auth::parse_timestamp(&param("Timestamp"));
    let _ = ali_auth::check_time(&param("Timestamp"), NOW);
    let nonces = ali_auth::NonceCache::new();
    let _ = nonces.first_use(&param("AccessKeyId"), &param("SignatureNonce"), NOW);
}

/// Tencent parameters. Input: a mode byte (even = a GET query string, flattened the SDK way
/// and rebuilt by `params::from_query`; odd = a POST's JSON body), then the text. Every
/// typed accessor is tried on the first names of the result.
pub fn tencent_params(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let v: Value = if mode % 2 == 0 {
        match tc_params::from_query(&String::from_utf8_lossy(rest)) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        match serde_json::from_slice(rest) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    let _ = tc_params::Params::new(&v, &["Filters", "ImageIds", "Limit"]);
    let names: Vec<String> = v
        .as_object()
        .map(|o| o.keys().take(NAMES).cloned().collect())
        .unwrap_or_default();
    let allowed: Vec<&str> = names.iter().map(String::as_str).collect();
    let Ok(p) = tc_params::Params::new(&v, &allowed) else {
        return;
    };
    for n in &names {
        let _ = p.get(n);
        let _ = p.str_opt(n);
        let _ = p.str_req(n);
        let _ = p.u64_opt(n);
        let _ = p.bool_opt(n);
        let _ = p.str_list(n);
        let _ = p.filters(n);
    }
}

/// Alibaba parameters. Input: the query string, a newline, the form body; decoded and
/// merged like `process` does (`parse_form`, `Params::from_pairs`), then every accessor is
/// tried on the first names and on their `Name.` prefixes (lists, lists of objects).
pub fn alibaba_params(data: &[u8]) {
    let f = fields(data, 2);
    let Ok(mut all) = ali_params::parse_form(&f[0]) else {
        return;
    };
    let Ok(body) = ali_params::parse_form(&f[1]) else {
        return;
    };
    all.extend(body);
    let Ok(p) = ali_params::Params::from_pairs(&all) else {
        return;
    };
    for (k, _) in all.iter().take(NAMES) {
        let prefix = k.split('.').next().unwrap_or_default();
        for n in [k.as_str(), prefix] {
            let _ = p.str_opt(n);
            let _ = p.str_req(n);
            let _ = p.u64_opt(n);
            let _ = p.bool_opt(n);
            let _ = p.list(n);
            let _ = p.objects(n);
            let _ = p.has(n);
        }
    }
}
