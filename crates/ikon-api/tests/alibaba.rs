//! The Alibaba dialect through `ikon_api::app()` without a socket: requests signed with V1
//! (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256) as the SDKs sign them, HTTP statuses and codes of
//! the error paths, visibility, sharing rules, dry runs, and the same image seen through
//! both dialects. The real SDKs are driven by tests/e2e-alibaba.

use axum::body::Body;
use axum::http::Request;
use ikon_api::alibaba::auth::{percent_encode, v1_sign, v1_string_to_sign, v3_sign, V3Request};
use ikon_service::{ids, Config, Credentials, Image, Service};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

struct Env {
    svc: Service,
    app: axum::Router,
}

async fn env_with(config: Config) -> Env {
    let dir = std::env::temp_dir().join(format!("ikon-ali-test-{}", ids::uuid4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("sqlite://{}", dir.join("c.db").display());
    let cat = ikon_catalog::Catalog::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let svc = Service::new(cat, config, store);
    let app = ikon_api::app(ikon_api::AppState::new(svc.clone()));
    Env { svc, app }
}

async fn env() -> Env {
    env_with(Config::default()).await
}

const HOST: &str = "127.0.0.1:8780";
const REGION: &str = "ap-guangzhou";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sig {
    /// ACS3-HMAC-SHA256, params in the query, action in headers (Tea default).
    V3,
    /// RPC V1, POST with everything in the query (legacy SDK).
    V1,
    /// RPC V1 over GET.
    V1Get,
    /// RPC V1 with the parameters in a form body.
    V1Form,
}

struct Req<'a> {
    key: &'a Credentials,
    action: &'a str,
    params: Vec<(String, String)>,
    sig: Sig,
    secret: Option<&'a str>,
    time: i64,
    nonce: String,
    version: &'a str,
}

impl<'a> Req<'a> {
    fn new(key: &'a Credentials, action: &'a str, params: &[(&str, &str)]) -> Req<'a> {
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

    fn sig(mut self, sig: Sig) -> Self {
        self.sig = sig;
        self
    }
}

fn form(pairs: &[(String, String)]) -> String {
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

struct Resp {
    status: u16,
    body: Value,
    code: String,
}

async fn send(env: &Env, r: Req<'_>) -> Resp {
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

async fn call(env: &Env, key: &Credentials, action: &str, params: &[(&str, &str)]) -> Resp {
    send(env, Req::new(key, action, params)).await
}

fn img(id: &str, kind: &str, owner: &str, name: &str) -> Image {
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

async fn add(env: &Env, i: Image) {
    env.svc
        .add_image(&i)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

async fn account(env: &Env, name: &str) -> Credentials {
    env.svc
        .create_account(name, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn image_ids(r: &Resp) -> Vec<String> {
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

#[tokio::test]
async fn signatures_v1_and_v3_and_their_failures() {
    let env = env().await;
    let alice = account(&env, "alice").await;
    for sig in [Sig::V3, Sig::V1, Sig::V1Get, Sig::V1Form] {
        let r = send(&env, Req::new(&alice, "DescribeRegions", &[]).sig(sig)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let regions = &r.body["Regions"]["Region"];
        assert_eq!(regions[0]["RegionId"], "ap-guangzhou");
        assert_eq!(regions[0]["Status"], "available");
        assert_eq!(regions.as_array().map(Vec::len), Some(6));
        // Spaces, '*' and '~' in values are signed in their RFC 3986 form.
        let r = send(
            &env,
            Req::new(&alice, "DescribeImages", &[("ImageName", "a b*~")]).sig(sig),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = send(
            &env,
            Req {
                secret: Some("wrong"),
                ..Req::new(&alice, "DescribeRegions", &[]).sig(sig)
            },
        )
        .await;
        assert_eq!((r.status, r.code.as_str()), (400, "SignatureDoesNotMatch"));
        // The legacy SDK splits this message on ':'.
        let msg = r.body["Message"].as_str().unwrap_or("");
        assert!(msg.contains("server string to sign is:"), "{msg}");
        let r = send(
            &env,
            Req {
                time: ids::now() - 1000,
                ..Req::new(&alice, "DescribeRegions", &[]).sig(sig)
            },
        )
        .await;
        assert_eq!(
            (r.status, r.code.as_str()),
            (400, "InvalidTimeStamp.Expired")
        );
    }
    // A nonce is accepted once.
    let first = Req::new(&alice, "DescribeRegions", &[]);
    let nonce = first.nonce.clone();
    assert_eq!(send(&env, first).await.status, 200);
    let r = send(
        &env,
        Req {
            nonce,
            ..Req::new(&alice, "DescribeRegions", &[])
        },
    )
    .await;
    assert_eq!(r.code, "SignatureNonceUsed");
    let ghost = Credentials {
        secret_id: "LTAInobody".into(),
        ..alice.clone()
    };
    let r = call(&env, &ghost, "DescribeRegions", &[]).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidAccessKeyId.NotFound")
    );
    let r = send(
        &env,
        Req {
            version: "2016-01-01",
            ..Req::new(&alice, "DescribeRegions", &[])
        },
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (400, "InvalidVersion"));
    let r = call(&env, &alice, "RunInstances", &[]).await;
    assert_eq!((r.status, r.code.as_str()), (404, "InvalidAction.NotFound"));
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("RegionId", "cn-nowhere")],
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidRegionId.NotFound")
    );
    env.svc
        .catalog()
        .set_key_enabled(&alice.secret_id, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = call(&env, &alice, "DescribeRegions", &[]).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (403, "Forbidden.AccessKeyDisabled")
    );
    // An x-acs-* header left out of the signature is refused.
    let req = Request::builder()
        .method("POST")
        .uri("/?RegionId=ap-guangzhou")
        .header("host", HOST)
        .header("x-acs-action", "DescribeRegions")
        .header("x-acs-version", "2014-05-26")
        .header("x-acs-date", ids::iso8601(ids::now()))
        .header("x-acs-signature-nonce", "n")
        .header(
            "authorization",
            format!("ACS3-HMAC-SHA256 Credential=x,SignedHeaders=host;x-acs-date;x-acs-signature-nonce,Signature={}", "0".repeat(64)),
        )
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = env
        .app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 400);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert_eq!(v["Code"], "IncompleteSignature");
    // Requests in Tencent's shape still reach the Tencent dialect.
    let req = Request::builder()
        .method("POST")
        .uri("/")
        .header("x-tc-action", "DescribeRegions")
        .header("x-tc-version", "2017-03-12")
        .header("x-tc-timestamp", ids::now().to_string())
        .body(Body::from("{}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = env
        .app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert_eq!(
        v["Response"]["Error"]["Code"],
        "AuthFailure.InvalidAuthorization"
    );
}

#[tokio::test]
async fn describe_images_visibility_filters_and_paging() {
    let env = env().await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    add(&env, img("img-pub00001", "PUBLIC", "", "CentOS 7.9")).await;
    add(&env, img("img-mkt00001", "MARKET", "", "Market thing")).await;
    for n in 1..=3 {
        add(
            &env,
            img(
                &format!("img-alice00{n}"),
                "PRIVATE",
                &alice.account_id,
                &format!("alice-{n}"),
            ),
        )
        .await;
    }
    add(
        &env,
        img("img-bob00001", "PRIVATE", &bob.account_id, "bob-1"),
    )
    .await;
    let r = call(&env, &alice, "DescribeImages", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Default: system + self + others, not marketplace; never another account's image.
    assert_eq!(
        image_ids(&r),
        ["m-alice001", "m-alice002", "m-alice003", "m-pub00001"]
    );
    assert_eq!(
        (
            r.body["TotalCount"].as_u64(),
            r.body["PageNumber"].as_u64(),
            r.body["PageSize"].as_u64()
        ),
        (Some(4), Some(1), Some(10))
    );
    assert_eq!(r.body["RegionId"], REGION);
    let one = r.body["Images"]["Image"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["ImageId"] == "m-alice001"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(one["ImageOwnerAlias"], "self");
    assert_eq!(one["Status"], "Available");
    assert_eq!(one["Size"], 20);
    assert_eq!(one["OSType"], "linux");
    assert_eq!(one["IsSelfShared"], "false");
    assert_eq!(one["Progress"], "100%");
    assert_eq!(
        one["ImageOwnerId"].as_u64().map(|v| v.to_string()),
        Some(alice.account_id.clone())
    );
    let m = &one["DiskDeviceMappings"]["DiskDeviceMapping"][0];
    assert_eq!(
        (
            m["Size"].as_str(),
            m["Device"].as_str(),
            m["SnapshotId"].as_str()
        ),
        (Some("20"), Some("/dev/xvda"), Some("s-abcd1234"))
    );
    assert!(one["Tags"]["Tag"].is_array());
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageOwnerAlias", "system")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-pub00001"]);
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageOwnerAlias", "marketplace")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-mkt00001"]);
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageOwnerAlias", "others")],
    )
    .await;
    assert_eq!(image_ids(&r), Vec::<String>::new());
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageOwnerAlias", "friends")],
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (400, "InvalidImageOwnerAlias.ValueNotSupported")
    );
    // Ids: other accounts' and malformed ones are simply absent.
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageId", "m-alice002,m-bob00001,img-alice001,centos.vhd")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-alice002"]);
    let r = call(&env, &alice, "DescribeImages", &[("ImageName", "alice-3")]).await;
    assert_eq!(image_ids(&r), ["m-alice003"]);
    // Paging.
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[
            ("ImageOwnerAlias", "self"),
            ("PageNumber", "2"),
            ("PageSize", "2"),
        ],
    )
    .await;
    assert_eq!(
        (r.body["TotalCount"].as_u64(), image_ids(&r).len()),
        (Some(3), 1)
    );
    assert_eq!(r.body["PageNumber"], 2);
    let r = call(&env, &alice, "DescribeImages", &[("PageSize", "101")]).await;
    assert_eq!((r.status, r.code.as_str()), (400, "InvalidParamter"));
    let r = call(&env, &alice, "DescribeImages", &[("Status", "Broken")]).await;
    assert_eq!((r.status, r.code.as_str()), (400, "InvalidParamter"));
    let r = call(&env, &alice, "DescribeImages", &[("OSType", "linux")]).await;
    assert_eq!(r.code, "UnsupportedParameter");
    // Dry run.
    let r = call(&env, &alice, "DescribeImages", &[("DryRun", "True")]).await;
    assert_eq!((r.status, r.code.as_str()), (400, "DryRunOperation"));
    // Deprecated images show only when asked for.
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-alice001"), ("Status", "Deprecated")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageOwnerAlias", "self")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-alice002", "m-alice003"]);
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[
            ("ImageOwnerAlias", "self"),
            ("Status", "Available,Deprecated"),
        ],
    )
    .await;
    assert_eq!(image_ids(&r).len(), 3);
    let dep = r.body["Images"]["Image"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["ImageId"] == "m-alice001"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(dep["Status"], "Deprecated");
    // Families.
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-alice002"), ("ImageFamily", "web")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &env,
        &alice,
        "DescribeImageFromFamily",
        &[("ImageFamily", "web")],
    )
    .await;
    assert_eq!(r.body["Image"]["ImageId"], "m-alice002");
    let r = call(
        &env,
        &bob,
        "DescribeImageFromFamily",
        &[("ImageFamily", "web")],
    )
    .await;
    assert_eq!(r.body["Image"], serde_json::json!({}));
    let r = call(&env, &alice, "DescribeImageFromFamily", &[]).await;
    assert_eq!((r.status, r.code.as_str()), (400, "MissingParameter"));
    let r = call(&env, &alice, "DescribeImages", &[("ImageFamily", "web")]).await;
    assert_eq!(image_ids(&r), ["m-alice002"]);
}

#[tokio::test]
async fn modify_delete_and_other_accounts() {
    let env = env().await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    add(
        &env,
        img("img-alice001", "PRIVATE", &alice.account_id, "alice-1"),
    )
    .await;
    add(
        &env,
        img("img-alice002", "PRIVATE", &alice.account_id, "alice-2"),
    )
    .await;
    add(&env, img("img-pub00001", "PUBLIC", "", "CentOS 7.9")).await;
    // Bob cannot see, change or delete Alice's image.
    for (action, extra) in [
        ("ModifyImageAttribute", ("ImageName", "mine")),
        ("DeleteImage", ("Force", "false")),
        ("DescribeImageSharePermission", ("PageNumber", "1")),
    ] {
        let r = call(&env, &bob, action, &[("ImageId", "m-alice001"), extra]).await;
        assert_eq!(
            (r.status, r.code.as_str()),
            (404, "InvalidImageId.NotFound"),
            "{action}"
        );
    }
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-pub00001"), ("ImageName", "mine")],
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (403, "OperationDenied"));
    let r = call(&env, &alice, "DeleteImage", &[("ImageId", "m-nothere1")]).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidImageId.NotFound")
    );
    let r = call(&env, &alice, "DeleteImage", &[]).await;
    assert_eq!((r.status, r.code.as_str()), (400, "MissingParameter"));
    // Form checks, then the rename.
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-alice001"), ("ImageName", "1abc")],
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (400, "InvalidImageName.Malformed")
    );
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-alice001"), ("Description", "http://x")],
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (400, "InvalidDescription.Malformed")
    );
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-alice001"), ("ImageName", "alice-2")],
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (400, "InvalidImageName.Duplicated")
    );
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[
            ("ImageId", "m-alice001"),
            ("ImageName", "renamed"),
            ("DryRun", "true"),
        ],
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (400, "DryRunOperation"));
    let r = call(&env, &alice, "DescribeImages", &[("ImageId", "m-alice001")]).await;
    assert_eq!(r.body["Images"]["Image"][0]["ImageName"], "alice-1");
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[
            ("ImageId", "m-alice001"),
            ("ImageName", "renamed"),
            ("Description", "new words"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&env, &alice, "DescribeImages", &[("ImageId", "m-alice001")]).await;
    let i = &r.body["Images"]["Image"][0];
    assert_eq!(
        (i["ImageName"].as_str(), i["Description"].as_str()),
        (Some("renamed"), Some("new words"))
    );
    // Delete: dry run first, then for real (legacy V1 encoding).
    let r = call(
        &env,
        &alice,
        "DeleteImage",
        &[("ImageId", "m-alice002"), ("DryRun", "True")],
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (400, "DryRunOperation"));
    let r = send(
        &env,
        Req::new(&alice, "DeleteImage", &[("ImageId", "m-alice002")]).sig(Sig::V1),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageOwnerAlias", "self")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-alice001"]);
}

#[tokio::test]
async fn sharing_rules_and_limits() {
    let mut config = Config::default();
    config.limits.share_accounts_max = 2;
    let env = env_with(config).await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    let carol = account(&env, "carol").await;
    let dave = account(&env, "dave").await;
    add(
        &env,
        img("img-alice001", "PRIVATE", &alice.account_id, "alice-1"),
    )
    .await;
    let share = |add: Vec<&str>, remove: Vec<&str>| {
        let mut p: Vec<(String, String)> = vec![("ImageId".into(), "m-alice001".into())];
        for (i, a) in add.iter().enumerate() {
            p.push((format!("AddAccount.{}", i + 1), a.to_string()));
        }
        for (i, a) in remove.iter().enumerate() {
            p.push((format!("RemoveAccount.{}", i + 1), a.to_string()));
        }
        p
    };
    let r = send(
        &env,
        run(&alice, share(vec![alice.account_id.as_str()], vec![])),
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidAccount.Forbbiden")
    );
    let r = send(&env, run(&alice, share(vec!["999999999999"], vec![]))).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidAccount.NotFound")
    );
    let r = send(
        &env,
        run(&alice, vec![("ImageId".into(), "m-alice001".into())]),
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (400, "MissingParameter"));
    // Dry run changes nothing.
    let mut dry = share(vec![bob.account_id.as_str()], vec![]);
    dry.push(("DryRun".into(), "True".into()));
    let r = send(&env, run(&alice, dry)).await;
    assert_eq!((r.status, r.code.as_str()), (400, "DryRunOperation"));
    let r = call(
        &env,
        &bob,
        "DescribeImages",
        &[("ImageOwnerAlias", "others")],
    )
    .await;
    assert_eq!(image_ids(&r), Vec::<String>::new());
    let r = send(
        &env,
        run(
            &alice,
            share(
                vec![bob.account_id.as_str(), carol.account_id.as_str()],
                vec![],
            ),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Bob sees it as "others", through the same id.
    let r = call(
        &env,
        &bob,
        "DescribeImages",
        &[("ImageOwnerAlias", "others")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-alice001"]);
    assert_eq!(r.body["Images"]["Image"][0]["ImageOwnerAlias"], "others");
    let r = call(&env, &alice, "DescribeImages", &[("ImageId", "m-alice001")]).await;
    assert_eq!(r.body["Images"]["Image"][0]["IsSelfShared"], "true");
    // The limit (2 here) counts after the withdrawals of the same call.
    let r = send(
        &env,
        run(&alice, share(vec![dave.account_id.as_str()], vec![])),
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (403, "QuotaExceed.ShareImageUser")
    );
    let r = send(
        &env,
        run(
            &alice,
            share(
                vec![dave.account_id.as_str()],
                vec![carol.account_id.as_str()],
            ),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &env,
        &alice,
        "DescribeImageSharePermission",
        &[("ImageId", "m-alice001")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["TotalCount"], 2);
    assert_eq!(r.body["ImageId"], "m-alice001");
    let mut got: Vec<String> = r.body["Accounts"]["Account"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["AliyunId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    got.sort();
    let mut want = vec![bob.account_id.clone(), dave.account_id.clone()];
    want.sort();
    assert_eq!(got, want);
    // The recipient cannot modify, delete, re-share or list the shares.
    let r = call(
        &env,
        &bob,
        "ModifyImageAttribute",
        &[("ImageId", "m-alice001"), ("ImageName", "bobs")],
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (403, "OperationDenied"));
    let r = call(&env, &bob, "DeleteImage", &[("ImageId", "m-alice001")]).await;
    assert_eq!((r.status, r.code.as_str()), (403, "OperationDenied"));
    let r = send(
        &env,
        run(&bob, share(vec![carol.account_id.as_str()], vec![])),
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (403, "OperationDenied"));
    let r = call(
        &env,
        &bob,
        "DescribeImageSharePermission",
        &[("ImageId", "m-alice001")],
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (403, "OperationDenied"));
    // A shared image cannot be deleted until it is unshared.
    let r = call(&env, &alice, "DeleteImage", &[("ImageId", "m-alice001")]).await;
    assert_eq!((r.status, r.code.as_str()), (403, "ImageUseShared"));
    let r = send(
        &env,
        run(
            &alice,
            share(
                vec![],
                vec![bob.account_id.as_str(), dave.account_id.as_str()],
            ),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&env, &bob, "DescribeImages", &[("ImageId", "m-alice001")]).await;
    assert_eq!(image_ids(&r), Vec::<String>::new());
    let r = call(&env, &alice, "DeleteImage", &[("ImageId", "m-alice001")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn run(key: &Credentials, p: Vec<(String, String)>) -> Req<'_> {
    let mut r = Req::new(key, "ModifyImageSharePermission", &[]);
    r.params.extend(p);
    r
}

/// Signs and sends one Tencent request (TC3, JSON body).
async fn tencent(env: &Env, key: &Credentials, action: &str, body: Value) -> Value {
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

#[tokio::test]
async fn one_image_through_both_dialects() {
    let env = env().await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    add(
        &env,
        img("img-both0001", "PRIVATE", &alice.account_id, "both"),
    )
    .await;
    // Renamed through Alibaba, seen through Tencent under its img- id.
    let r = call(
        &env,
        &alice,
        "ModifyImageAttribute",
        &[("ImageId", "m-both0001"), ("ImageName", "renamed")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = tencent(
        &env,
        &alice,
        "DescribeImages",
        serde_json::json!({"ImageIds": ["img-both0001"]}),
    )
    .await;
    assert_eq!(t["ImageSet"][0]["ImageName"], "renamed", "{t}");
    // Shared through Tencent, seen by the recipient through Alibaba under its m- id.
    let t = tencent(
        &env,
        &alice,
        "ModifyImageSharePermission",
        serde_json::json!({"ImageId": "img-both0001", "AccountIds": [bob.account_id], "Permission": "SHARE"}),
    )
    .await;
    assert!(t["Error"].is_null(), "{t}");
    let r = call(&env, &bob, "DescribeImages", &[("ImageId", "m-both0001")]).await;
    assert_eq!(image_ids(&r), ["m-both0001"]);
    assert_eq!(r.body["Images"]["Image"][0]["ImageOwnerAlias"], "others");
    let t = tencent(
        &env,
        &bob,
        "DescribeImages",
        serde_json::json!({"ImageIds": ["img-both0001"]}),
    )
    .await;
    assert_eq!(t["ImageSet"][0]["ImageType"], "SHARED_IMAGE", "{t}");
    // Unshared through Alibaba: gone for Bob in both.
    let r = call(
        &env,
        &alice,
        "ModifyImageSharePermission",
        &[
            ("ImageId", "m-both0001"),
            ("RemoveAccount.1", &bob.account_id),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t = tencent(
        &env,
        &bob,
        "DescribeImages",
        serde_json::json!({"ImageIds": ["img-both0001"]}),
    )
    .await;
    assert_eq!(t["TotalCount"], 0, "{t}");
}
