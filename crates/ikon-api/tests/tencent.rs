//! The Tencent dialect through `ikon_api::app()` without a socket: requests signed exactly
//! as the SDK signs them (TC3 over the raw Host), every rule's error path, and the
//! envelope details the SDK depends on. The real SDK and tccli are driven by tests/e2e.

use axum::body::Body;
use axum::http::Request;
use ikon_api::tencent::auth::{sign, Authorization, SignedRequest};
use ikon_service::{ids, Config, Credentials, Image, Service};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Env {
    svc: Service,
    app: axum::Router,
}

async fn env_with(config: Config) -> Env {
    let dir = std::env::temp_dir().join(format!("ikon-api-test-{}", ids::uuid4()));
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

struct Req<'a> {
    key: &'a Credentials,
    region: &'a str,
    action: &'a str,
    body: Value,
    host: &'a str,
    timestamp: i64,
    get: bool,
    secret_override: Option<&'a str>,
}

impl<'a> Req<'a> {
    fn new(key: &'a Credentials, action: &'a str, body: Value) -> Req<'a> {
        Req {
            key,
            region: "ap-guangzhou",
            action,
            body,
            host: "127.0.0.1:8780",
            timestamp: ids::now(),
            get: false,
            secret_override: None,
        }
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Bool(b) => out.push((
            prefix.to_string(),
            if *b { "True" } else { "False" }.to_string(),
        )),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

async fn send(env: &Env, r: Req<'_>) -> (Value, String) {
    let ct = if r.get {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let (body, query) = if r.get {
        let mut pairs = Vec::new();
        flatten("", &r.body, &mut pairs);
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace('%', "%25")
                        .replace('&', "%26")
                        .replace(' ', "%20")
                )
            })
            .collect();
        (Vec::new(), q.join("&"))
    } else {
        (r.body.to_string().into_bytes(), String::new())
    };
    let auth = Authorization {
        secret_id: r.key.secret_id.clone(),
        date: ids::utc_date(r.timestamp),
        service: "cvm".into(),
        signed_headers: vec!["content-type".into(), "host".into()],
        signature: vec![],
    };
    let host = r.host.to_string();
    let header = move |h: &str| match h {
        "content-type" => Some(ct.to_string()),
        "host" => Some(host.clone()),
        _ => None,
    };
    let method = if r.get { "GET" } else { "POST" };
    let sig = sign(
        r.secret_override.unwrap_or(&r.key.secret_key),
        &auth,
        &SignedRequest {
            method,
            path: "/",
            query: &query,
            header: &header,
            body: &body,
            timestamp: r.timestamp,
        },
    );
    let uri = if query.is_empty() {
        "/".to_string()
    } else {
        format!("/?{query}")
    };
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", r.host)
        .header("content-type", ct)
        .header("x-tc-action", r.action)
        .header("x-tc-version", "2017-03-12")
        .header("x-tc-region", r.region)
        .header("x-tc-timestamp", r.timestamp.to_string())
        .header(
            "authorization",
            format!("TC3-HMAC-SHA256 Credential={}/{}/cvm/tc3_request, SignedHeaders=content-type;host, Signature={sig}", r.key.secret_id, auth.date),
        )
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    let resp = env
        .app
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(
        ct, "application/json",
        "the SDK reads errors only with this exact content type"
    );
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let inner = v["Response"].clone();
    assert!(
        inner["RequestId"].as_str().is_some_and(|s| s.len() == 36),
        "RequestId always present: {v}"
    );
    let code = inner["Error"]["Code"].as_str().unwrap_or("").to_string();
    (inner, code)
}

async fn call(env: &Env, key: &Credentials, action: &str, body: Value) -> (Value, String) {
    send(env, Req::new(key, action, body)).await
}

async fn call_in(
    env: &Env,
    key: &Credentials,
    region: &str,
    action: &str,
    body: Value,
) -> (Value, String) {
    send(
        env,
        Req {
            region,
            ..Req::new(key, action, body)
        },
    )
    .await
}

fn img(id: &str, kind: &str, owner: &str, region: &str, name: &str) -> Image {
    Image {
        image_id: id.into(),
        kind: kind.into(),
        owner: owner.into(),
        region: region.into(),
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
        disks: vec![],
        origin: String::new(),
        created_at: ids::now(),
        updated_at: ids::now(),
        version: 1,
        tags: vec![],
    }
}

async fn add(env: &Env, i: Image) {
    env.svc
        .images()
        .add_image(&i)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn authentication_failures_have_the_documented_codes() {
    let env = env().await;
    let alice = env
        .svc
        .accounts()
        .create_account("alice", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (r, code) = call(&env, &alice, "DescribeRegions", json!({})).await;
    assert_eq!(code, "");
    assert_eq!(r["TotalCount"], 6);
    assert_eq!(r["RegionSet"][0]["Region"], "ap-guangzhou");
    // The literal Host tccli sends with --endpoint http://… is signed as-is.
    let (_, code) = send(
        &env,
        Req {
            host: "http://127.0.0.1:8780",
            ..Req::new(&alice, "DescribeRegions", json!({}))
        },
    )
    .await;
    assert_eq!(code, "");
    let (_, code) = send(
        &env,
        Req {
            secret_override: Some("wrong-secret"),
            ..Req::new(&alice, "DescribeRegions", json!({}))
        },
    )
    .await;
    assert_eq!(code, "AuthFailure.SignatureFailure");
    let (_, code) = send(
        &env,
        Req {
            timestamp: ids::now() - 600,
            ..Req::new(&alice, "DescribeRegions", json!({}))
        },
    )
    .await;
    assert_eq!(code, "AuthFailure.SignatureExpire");
    let ghost = Credentials {
        secret_id: "AKIDnobody".into(),
        ..alice.clone()
    };
    let (_, code) = call(&env, &ghost, "DescribeRegions", json!({})).await;
    assert_eq!(code, "AuthFailure.SecretIdNotFound");
    env.svc
        .accounts()
        .disable_key(&alice.secret_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, code) = call(&env, &alice, "DescribeRegions", json!({})).await;
    assert_eq!(code, "AuthFailure.SecretIdNotFound");
    // No Authorization header at all.
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
async fn malformed_requests_are_refused_with_codes() {
    let env = env().await;
    let a = env
        .svc
        .accounts()
        .create_account("a", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        call(&env, &a, "DescribeUnicorns", json!({})).await.1,
        "InvalidAction"
    );
    assert_eq!(
        call(&env, &a, "DescribeImages", json!({"Bogus": 1}))
            .await
            .1,
        "UnknownParameter"
    );
    assert_eq!(
        call(&env, &a, "DescribeImages", json!({"Limit": "ten"}))
            .await
            .1,
        "InvalidParameter"
    );
    assert_eq!(
        call(&env, &a, "DescribeImages", json!({"Limit": 101}))
            .await
            .1,
        "InvalidParameterValue.LimitExceeded"
    );
    assert_eq!(
        call(
            &env,
            &a,
            "DescribeImages",
            json!({"ImageIds": ["img-UPPER123"]})
        )
        .await
        .1,
        "InvalidImageId.Malformed"
    );
    assert_eq!(
        call(&env, &a, "DescribeImages", json!({"ImageIds": ["img-12345678"], "Filters": [{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}]})).await.1,
        "InvalidParameter.InvalidParameterCoexistImageIdsFilters"
    );
    assert_eq!(
        call(
            &env,
            &a,
            "DescribeImages",
            json!({"Filters": [{"Name": "colour", "Values": ["x"]}]})
        )
        .await
        .1,
        "InvalidFilter"
    );
    assert_eq!(
        call(
            &env,
            &a,
            "DescribeImages",
            json!({"Filters": [{"Name": "image-name", "Values": ["1","2","3","4","5","6"]}]})
        )
        .await
        .1,
        "InvalidFilterValue.LimitExceeded"
    );
    assert_eq!(
        call(&env, &a, "ModifyImageAttribute", json!({"ImageName": "x"}))
            .await
            .1,
        "MissingParameter"
    );
    assert_eq!(
        call_in(&env, &a, "", "DescribeImages", json!({})).await.1,
        "MissingParameter"
    );
    assert_eq!(
        call_in(&env, &a, "mars-north-1", "DescribeImages", json!({}))
            .await
            .1,
        "UnsupportedRegion"
    );
    assert_eq!(
        call(
            &env,
            &a,
            "ModifyImageSharePermission",
            json!({"ImageId": "img-12345678", "AccountIds": ["1"], "Permission": "MAYBE"})
        )
        .await
        .1,
        "InvalidParameterValue"
    );
}

#[tokio::test]
async fn visibility_sharing_and_deletion_rules() {
    let env = env().await;
    let alice = env
        .svc
        .accounts()
        .create_account("alice", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bob = env
        .svc
        .accounts()
        .create_account("bob", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    add(
        &env,
        img("img-pub00001", "PUBLIC", "", "ap-guangzhou", "CentOS 7.9"),
    )
    .await;
    add(
        &env,
        img(
            "img-alice001",
            "PRIVATE",
            &alice.account_id,
            "ap-guangzhou",
            "web",
        ),
    )
    .await;

    // Bob cannot see or touch Alice's private image: "not found", never "forbidden".
    let (r, code) = call(
        &env,
        &bob,
        "DescribeImages",
        json!({"ImageIds": ["img-alice001"]}),
    )
    .await;
    assert_eq!((code.as_str(), r["TotalCount"].as_i64()), ("", Some(0)));
    assert_eq!(
        call(
            &env,
            &bob,
            "ModifyImageAttribute",
            json!({"ImageId": "img-alice001", "ImageName": "mine"})
        )
        .await
        .1,
        "InvalidImageId.NotFound"
    );
    assert_eq!(
        call(
            &env,
            &bob,
            "DeleteImages",
            json!({"ImageIds": ["img-alice001"]})
        )
        .await
        .1,
        "InvalidImageId.NotFound"
    );
    // Public images: visible everywhere, read-only to accounts.
    let (r, _) = call_in(
        &env,
        &bob,
        "ap-beijing",
        "DescribeImages",
        json!({"Filters": [{"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}]}),
    )
    .await;
    assert_eq!(r["ImageSet"][0]["ImageId"], "img-pub00001");
    assert_eq!(r["ImageSet"][0]["ImageType"], "PUBLIC_IMAGE");
    assert_eq!(
        call(
            &env,
            &bob,
            "DeleteImages",
            json!({"ImageIds": ["img-pub00001"]})
        )
        .await
        .1,
        "InvalidParameterValue.InvalidImageId"
    );

    // Share to Bob. Sharing from another region: the image is not there.
    assert_eq!(
        call_in(&env, &alice, "ap-beijing", "ModifyImageSharePermission", json!({"ImageId": "img-alice001", "AccountIds": [bob.account_id], "Permission": "SHARE"})).await.1,
        "InvalidImageId.NotFound"
    );
    let share =
        json!({"ImageId": "img-alice001", "AccountIds": [bob.account_id], "Permission": "SHARE"});
    assert_eq!(
        call(&env, &alice, "ModifyImageSharePermission", share.clone())
            .await
            .1,
        ""
    );
    assert_eq!(
        call(&env, &alice, "ModifyImageSharePermission", share)
            .await
            .1,
        "FailedOperation.AccountAlreadyExists"
    );
    assert_eq!(
        call(&env, &alice, "ModifyImageSharePermission", json!({"ImageId": "img-alice001", "AccountIds": [alice.account_id], "Permission": "SHARE"})).await.1,
        "InvalidAccountIs.YourSelf"
    );
    assert_eq!(
        call(&env, &alice, "ModifyImageSharePermission", json!({"ImageId": "img-alice001", "AccountIds": ["999999999999"], "Permission": "SHARE"})).await.1,
        "InvalidAccountId.NotFound"
    );
    let (r, _) = call(
        &env,
        &alice,
        "DescribeImageSharePermission",
        json!({"ImageId": "img-alice001"}),
    )
    .await;
    assert_eq!(
        r["SharePermissionSet"][0]["AccountId"],
        bob.account_id.as_str()
    );
    assert!(r["SharePermissionSet"][0]["CreatedTime"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    // Bob sees it as SHARED_IMAGE in Guangzhou only, and may not rename, delete or re-share it.
    let (r, _) = call(
        &env,
        &bob,
        "DescribeImages",
        json!({"Filters": [{"Name": "image-type", "Values": ["SHARED_IMAGE"]}]}),
    )
    .await;
    assert_eq!(
        (
            r["TotalCount"].as_i64(),
            r["ImageSet"][0]["ImageType"].as_str()
        ),
        (Some(1), Some("SHARED_IMAGE"))
    );
    let (r, _) = call_in(
        &env,
        &bob,
        "ap-beijing",
        "DescribeImages",
        json!({"ImageIds": ["img-alice001"]}),
    )
    .await;
    assert_eq!(r["TotalCount"], 0);
    assert_eq!(
        call(
            &env,
            &bob,
            "ModifyImageAttribute",
            json!({"ImageId": "img-alice001", "ImageName": "stolen"})
        )
        .await
        .1,
        "UnsupportedOperation.SharedImageModifyUnsupported"
    );
    assert_eq!(
        call(&env, &bob, "ModifyImageSharePermission", json!({"ImageId": "img-alice001", "AccountIds": [alice.account_id], "Permission": "SHARE"})).await.1,
        "UnauthorizedOperation.ImageNotBelongToAccount"
    );
    // Still shared: cannot be deleted; a dry run says so too, and changes nothing.
    assert_eq!(
        call(
            &env,
            &alice,
            "DeleteImages",
            json!({"ImageIds": ["img-alice001"], "DryRun": true})
        )
        .await
        .1,
        "InvalidImageId.InShared"
    );
    assert_eq!(
        call(
            &env,
            &alice,
            "DeleteImages",
            json!({"ImageIds": ["img-alice001"]})
        )
        .await
        .1,
        "InvalidImageId.InShared"
    );
    // 50 accounts at most.
    let mut many = Vec::new();
    for i in 0..49 {
        many.push(
            env.svc
                .accounts()
                .create_account(&format!("u{i}"), false)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .account_id,
        );
    }
    assert_eq!(
        call(
            &env,
            &alice,
            "ModifyImageSharePermission",
            json!({"ImageId": "img-alice001", "AccountIds": many, "Permission": "SHARE"})
        )
        .await
        .1,
        ""
    );
    let one_more = env
        .svc
        .accounts()
        .create_account("u50", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .account_id;
    assert_eq!(
        call(
            &env,
            &alice,
            "ModifyImageSharePermission",
            json!({"ImageId": "img-alice001", "AccountIds": [one_more], "Permission": "SHARE"})
        )
        .await
        .1,
        "OverQuota"
    );
    // Unshare everyone, then a dry run leaves the image, a real deletion removes it.
    let mut all = many.clone();
    all.push(bob.account_id.clone());
    for chunk in all.chunks(100) {
        assert_eq!(
            call(
                &env,
                &alice,
                "ModifyImageSharePermission",
                json!({"ImageId": "img-alice001", "AccountIds": chunk, "Permission": "CANCEL"})
            )
            .await
            .1,
            ""
        );
    }
    assert_eq!(
        call(
            &env,
            &alice,
            "DeleteImages",
            json!({"ImageIds": ["img-alice001"], "DryRun": true})
        )
        .await
        .1,
        ""
    );
    let (r, _) = call(
        &env,
        &alice,
        "DescribeImages",
        json!({"ImageIds": ["img-alice001"]}),
    )
    .await;
    assert_eq!(r["TotalCount"], 1);
    assert_eq!(
        call(
            &env,
            &alice,
            "DeleteImages",
            json!({"ImageIds": ["img-alice001"]})
        )
        .await
        .1,
        ""
    );
    let (r, _) = call(
        &env,
        &alice,
        "DescribeImages",
        json!({"ImageIds": ["img-alice001"]}),
    )
    .await;
    assert_eq!(r["TotalCount"], 0);
}

#[tokio::test]
async fn describe_images_pages_filters_and_shapes() {
    let env = env().await;
    let a = env
        .svc
        .accounts()
        .create_account("a", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for i in 0..7 {
        let mut im = img(
            &format!("img-page000{i}"),
            "PRIVATE",
            &a.account_id,
            "ap-guangzhou",
            &format!("page-{i}"),
        );
        im.created_at = 1_700_000_000 + i;
        if i == 3 {
            im.tags = vec![("env".into(), "prod".into())];
            im.platform = "Ubuntu".into();
            im.family = "web".into();
        }
        add(&env, im).await;
    }
    let (r, _) = call(&env, &a, "DescribeImages", json!({"Offset": 2, "Limit": 3})).await;
    assert_eq!(r["TotalCount"], 7);
    let page: Vec<&str> = r["ImageSet"]
        .as_array()
        .map(|s| s.iter().filter_map(|i| i["ImageId"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(page, ["img-page0004", "img-page0003", "img-page0002"]);
    let i = &r["ImageSet"][1];
    for (field, kind) in [
        ("ImageSize", "n"),
        ("CreatedTime", "s"),
        ("IsSupportCloudinit", "b"),
        ("SnapshotSet", "a"),
        ("Tags", "a"),
        ("ImageDeprecated", "b"),
    ] {
        let ok = match kind {
            "n" => i[field].is_u64(),
            "s" => i[field].is_string(),
            "b" => i[field].is_boolean(),
            _ => i[field].is_array(),
        };
        assert!(ok, "{field} has the wrong JSON type: {i}");
    }
    assert_eq!(i["ImageSize"], 20);
    assert_eq!(i["CreatedTime"], "2023-11-14T22:13:23Z");
    assert_eq!(i["Tags"][0], json!({"Key": "env", "Value": "prod"}));
    for (filter, want) in [
        (json!({"Name": "tag:env", "Values": ["prod"]}), 1),
        (json!({"Name": "tag-key", "Values": ["env"]}), 1),
        (json!({"Name": "platform", "Values": ["ubun"]}), 1),
        (json!({"Name": "image-name", "Values": ["page-"]}), 7),
        (
            json!({"Name": "image-id", "Values": ["img-page0001", "img-page0002"]}),
            2,
        ),
        (json!({"Name": "image-type", "Values": ["PUBLIC_IMAGE"]}), 0),
    ] {
        let (r, code) = call(
            &env,
            &a,
            "DescribeImages",
            json!({"Filters": [filter.clone()]}),
        )
        .await;
        assert_eq!(
            (code.as_str(), r["TotalCount"].as_i64()),
            ("", Some(want)),
            "{filter}"
        );
    }
    // The GET form with 0-based flattened lists and capitalised booleans.
    let (r, code) = send(&env, Req { get: true, ..Req::new(&a, "DescribeImages", json!({"Filters": [{"Name": "image-id", "Values": ["img-page0001", "img-page0005"]}], "Limit": 1})) }).await;
    assert_eq!(
        (
            code.as_str(),
            r["TotalCount"].as_i64(),
            r["ImageSet"].as_array().map(Vec::len)
        ),
        ("", Some(2), Some(1))
    );
    let (r, _) = call(
        &env,
        &a,
        "DescribeImageFromFamily",
        json!({"ImageFamily": "web"}),
    )
    .await;
    assert_eq!(r["Image"]["ImageId"], "img-page0003");
    let (r, _) = call(
        &env,
        &a,
        "DescribeImageFromFamily",
        json!({"ImageFamily": "none"}),
    )
    .await;
    assert!(r["Image"].is_null());
    assert_eq!(
        call(
            &env,
            &a,
            "ModifyImageAttribute",
            json!({"ImageId": "img-page0001", "ImageName": "page-2"})
        )
        .await
        .1,
        "InvalidImageName.Duplicate"
    );
    assert_eq!(
        call(
            &env,
            &a,
            "ModifyImageAttribute",
            json!({"ImageId": "img-page0001", "ImageName": "x".repeat(61)})
        )
        .await
        .1,
        "InvalidParameterValue.TooLong"
    );
    assert_eq!(
        call(
            &env,
            &a,
            "ModifyImageAttribute",
            json!({"ImageId": "img-page0001", "ImageName": "renamed", "ImageDescription": "new"})
        )
        .await
        .1,
        ""
    );
    let (r, _) = call(
        &env,
        &a,
        "DescribeImages",
        json!({"ImageIds": ["img-page0001"]}),
    )
    .await;
    assert_eq!(
        (
            r["ImageSet"][0]["ImageName"].as_str(),
            r["ImageSet"][0]["ImageDescription"].as_str()
        ),
        (Some("renamed"), Some("new"))
    );
}

#[tokio::test]
async fn quota_limits_and_metrics() {
    let mut cfg = Config::default();
    cfg.limits.custom_images_per_region = 2;
    cfg.limits.daily_operations = 3;
    cfg.limits.daily_limited_actions = vec!["ModifyImageAttribute".into()];
    let env = env_with(cfg).await;
    let a = env
        .svc
        .accounts()
        .create_account("a", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (r, _) = call(&env, &a, "DescribeImageQuota", json!({})).await;
    assert_eq!(r["ImageNumQuota"], 2);
    add(
        &env,
        img(
            "img-quota001",
            "PRIVATE",
            &a.account_id,
            "ap-guangzhou",
            "q1",
        ),
    )
    .await;
    add(
        &env,
        img(
            "img-quota002",
            "PRIVATE",
            &a.account_id,
            "ap-guangzhou",
            "q2",
        ),
    )
    .await;
    let err = env
        .svc
        .images()
        .add_image(&img(
            "img-quota003",
            "PRIVATE",
            &a.account_id,
            "ap-guangzhou",
            "q3",
        ))
        .await
        .err();
    assert_eq!(
        err.map(|e| e.kind),
        Some(ikon_service::ErrorKind::ImageQuotaExceeded)
    );
    // Another region has its own quota.
    add(
        &env,
        img("img-quota004", "PRIVATE", &a.account_id, "ap-beijing", "q1"),
    )
    .await;
    // Limited operations: 3 calls a day, counted per call.
    for i in 0..3 {
        assert_eq!(
            call(
                &env,
                &a,
                "ModifyImageAttribute",
                json!({"ImageId": "img-quota001", "ImageDescription": format!("v{i}")})
            )
            .await
            .1,
            ""
        );
    }
    assert_eq!(
        call(
            &env,
            &a,
            "ModifyImageAttribute",
            json!({"ImageId": "img-quota001", "ImageDescription": "v4"})
        )
        .await
        .1,
        "LimitExceeded"
    );
    assert_eq!(
        call_in(
            &env,
            &a,
            "ap-beijing",
            "ModifyImageAttribute",
            json!({"ImageId": "img-quota004", "ImageDescription": "b"})
        )
        .await
        .1,
        ""
    );
    let (r, _) = call(&env, &a, "DescribeImportImageOs", json!({})).await;
    assert!(r["ImportImageOsListSupported"]["Linux"]
        .as_array()
        .is_some_and(|l| l.iter().any(|o| o == "CentOS")));
    assert!(r["ImportImageOsVersionSet"][0]["OsVersions"].is_array());
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
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default()
            .to_vec(),
    )
    .unwrap_or_default();
    assert!(text.contains(r#"ikon_api_requests_total{dialect="tencent",action="ModifyImageAttribute",code="LimitExceeded"} 1"#), "{text}");
    assert!(
        text.contains("ikon_api_request_duration_seconds_bucket"),
        "{text}"
    );
}
