//! Helpers shared by the Alibaba dialect tests: an `app()` over a fresh SQLite catalog,
//! requests signed with V1 (query, GET, form body) or V3 exactly as the SDKs sign them, the
//! checks every response must pass (content type, upper-case RequestId, string error
//! fields, HostId), image fixtures, and one TC3-signed Tencent call for cross-dialect checks.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::Request;
use ikon_api::alibaba::auth::{percent_encode, v1_sign, v1_string_to_sign, v3_sign, V3Request};
use ikon_service::{ids, Config, Credentials, Image, Service};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub struct Env {
    pub svc: Service,
    /// The catalog beneath the service (for tests that plant rows directly).
    #[allow(dead_code)]
    pub cat: ikon_catalog::Catalog,
    pub app: axum::Router,
}

pub async fn env_with(config: Config) -> Env {
    let dir = std::env::temp_dir().join(format!("ikon-ali-test-{}", ids::uuid4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("sqlite://{}", dir.join("c.db").display());
    let cat = ikon_catalog::Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let svc = Service::new(cat.clone(), config, store);
    let app = ikon_api::app(ikon_api::AppState::new(svc.clone()));
    Env { svc, cat, app }
}

pub async fn env() -> Env {
    env_with(Config::default()).await
}

pub const HOST: &str = "127.0.0.1:8780";
pub const REGION: &str = "ap-guangzhou";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// ACS3-HMAC-SHA256, params in the query, action in headers (Tea default).
    V3,
    /// RPC V1, POST with everything in the query (legacy SDK).
    V1,
    /// RPC V1 over GET.
    V1Get,
    /// RPC V1 with the parameters in a form body.
    V1Form,
}

pub struct Req<'a> {
    pub key: &'a Credentials,
    pub action: &'a str,
    pub params: Vec<(String, String)>,
    pub sig: Sig,
    pub secret: Option<&'a str>,
    pub time: i64,
    pub nonce: String,
    pub version: &'a str,
}

impl<'a> Req<'a> {
    pub fn new(key: &'a Credentials, action: &'a str, params: &[(&str, &str)]) -> Req<'a> {
        let mut p: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if action != "DescribeRegions" && !params.iter().any(|(k, _)| *k == "RegionId") {
            p.push(("RegionId".into(), REGION.into()));
        }
        Req {
            key,
            action,
            params: p,
            sig: Sig::V3,
            secret: None,
            time: ids::now(),
            nonce: ids::uuid4(),
            version: "2014-05-26",
        }
    }

    pub fn sig(mut self, sig: Sig) -> Self {
        self.sig = sig;
        self
    }
}

pub fn form(pairs: &[(String, String)]) -> String {
    // Tea encodes spaces as '+', as urlencode does.
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k),
                percent_encode(v).replace("%20", "+")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub code: String,
}

pub async fn send(env: &Env, r: Req<'_>) -> Resp {
    let secret = r.secret.unwrap_or(&r.key.secret_key).to_string();
    let mut builder = Request::builder().header("host", HOST);
    let (method, uri, body) = match r.sig {
        Sig::V3 => {
            let empty = hex::encode(Sha256::digest(b""));
            let date = ids::iso8601(r.time);
            let hdrs = [
                ("accept", "application/json".to_string()),
                ("host", HOST.to_string()),
                ("user-agent", "AlibabaCloud (test) TeaDSL/2".to_string()),
                ("x-acs-action", r.action.to_string()),
                ("x-acs-content-sha256", empty.clone()),
                ("x-acs-date", date),
                ("x-acs-signature-nonce", r.nonce.clone()),
                ("x-acs-version", r.version.to_string()),
            ];
            let signed: Vec<String> = hdrs.iter().map(|(k, _)| k.to_string()).collect();
            let lookup = hdrs.clone();
            let header =
                move |h: &str| lookup.iter().find(|(k, _)| *k == h).map(|(_, v)| v.clone());
            let sig = v3_sign(
                &secret,
                &signed,
                &V3Request {
                    method: "POST",
                    path: "/",
                    query: &r.params,
                    header: &header,
                    payload_hash: &empty,
                },
            );
            for (k, v) in &hdrs {
                if *k != "host" {
                    builder = builder.header(*k, v);
                }
            }
            builder = builder.header(
                "authorization",
                format!(
                    "ACS3-HMAC-SHA256 Credential={},SignedHeaders={},Signature={sig}",
                    r.key.secret_id,
                    signed.join(";")
                ),
            );
            ("POST", format!("/?{}", form(&r.params)), Vec::new())
        }
        Sig::V1 | Sig::V1Get | Sig::V1Form => {
            let method = if r.sig == Sig::V1Get { "GET" } else { "POST" };
            let mut all: Vec<(String, String)> = [
                ("Action", r.action),
                ("Format", "JSON"),
                ("Version", r.version),
                ("AccessKeyId", r.key.secret_id.as_str()),
                ("SignatureMethod", "HMAC-SHA1"),
                ("SignatureVersion", "1.0"),
                ("SignatureNonce", r.nonce.as_str()),
                ("SignatureType", ""),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            // The legacy SDK sends `SignatureType=` empty; it is signed like the rest.
            all.retain(|(k, _)| k != "SignatureType");
            all.push(("SignatureType".into(), String::new()));
            all.push(("Timestamp".into(), ids::iso8601(r.time)));
            all.extend(r.params.iter().cloned());
            let sig = v1_sign(&secret, &v1_string_to_sign(method, &all));
            all.push(("Signature".into(), sig));
            if r.sig == Sig::V1Form {
                builder = builder.header("content-type", "application/x-www-form-urlencoded");
                ("POST", "/".to_string(), form(&all).into_bytes())
            } else {
                (method, format!("/?{}", form(&all)), Vec::new())
            }
        }
    };
    let req = builder
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = env
        .app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/json;charset=utf-8");
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let rid = body["RequestId"].as_str().unwrap_or("");
    assert!(
        rid.len() == 36 && rid == rid.to_ascii_uppercase(),
        "RequestId is an upper-case UUID: {body}"
    );
    let code = body["Code"].as_str().unwrap_or("").to_string();
    if status == 200 {
        assert!(code.is_empty(), "{body}");
    } else {
        for f in ["HostId", "Code", "Message", "Recommend"] {
            assert!(body[f].is_string(), "{f} must be a string: {body}");
        }
        assert_eq!(body["HostId"], HOST);
    }
    Resp { status, body, code }
}

pub async fn call(env: &Env, key: &Credentials, action: &str, params: &[(&str, &str)]) -> Resp {
    send(env, Req::new(key, action, params)).await
}

pub fn img(id: &str, kind: &str, owner: &str, name: &str) -> Image {
    Image {
        image_id: id.into(),
        kind: kind.into(),
        owner: owner.into(),
        region: REGION.into(),
        name: name.into(),
        description: "d".into(),
        os_name: "CentOS 7.9 64bit".into(),
        os_type: "Linux".into(),
        platform: "CentOS".into(),
        architecture: "x86_64".into(),
        size_bytes: 20 << 30,
        state: "NORMAL".into(),
        state_reason: String::new(),
        source: if kind == "PUBLIC" {
            "OFFICIAL"
        } else {
            "CREATE_IMAGE"
        }
        .into(),
        license_type: "TencentCloud".into(),
        family: String::new(),
        deprecated: false,
        cloudinit: true,
        sync_percent: None,
        share_count: 0,
        disks: vec![ikon_catalog::DiskRef {
            disk_id: "disk-1".into(),
            version: 1,
            usage: "SYSTEM_DISK".into(),
            size_bytes: 20 << 30,
            snapshot_id: "snap-abcd1234".into(),
        }],
        origin: String::new(),
        created_at: ids::now(),
        updated_at: ids::now(),
        version: 1,
        tags: vec![],
    }
}

pub async fn add(env: &Env, i: Image) {
    env.svc
        .images()
        .add_image(&i)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

pub async fn account(env: &Env, name: &str) -> Credentials {
    env.svc
        .accounts()
        .create_account(name, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn image_ids(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = r.body["Images"]["Image"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["ImageId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn run(key: &Credentials, p: Vec<(String, String)>) -> Req<'_> {
    let mut r = Req::new(key, "ModifyImageSharePermission", &[]);
    r.params.extend(p);
    r
}

/// Signs and sends one Tencent request (TC3, JSON body).
pub async fn tencent(env: &Env, key: &Credentials, action: &str, body: Value) -> Value {
    use ikon_api::tencent::auth::{sign, Authorization, SignedRequest};
    let now = ids::now();
    let body = body.to_string().into_bytes();
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
    let sig = sign(
        &key.secret_key,
        &auth,
        &SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            header: &header,
            body: &body,
            timestamp: now,
        },
    );
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("host", HOST)
        .header("content-type", "application/json")
        .header("x-tc-action", action)
        .header("x-tc-version", "2017-03-12")
        .header("x-tc-region", REGION)
        .header("x-tc-timestamp", now.to_string())
        .header(
            "authorization",
            format!("TC3-HMAC-SHA256 Credential={}/{}/cvm/tc3_request, SignedHeaders=content-type;host, Signature={sig}", key.secret_id, auth.date),
        )
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = env
        .app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["Response"].clone()
}
