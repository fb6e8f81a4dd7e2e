//! The Alibaba dialect through `ikon_api::app()` without a socket: V1 and V3 signatures and
//! their failures, routing next to the Tencent dialect, and DescribeImages (categories, ids,
//! names, statuses, families, paging, dry run). The real SDKs are driven by tests/e2e-alibaba.

mod alibaba_support;

use alibaba_support::*;
use axum::body::Body;
use axum::http::Request;
use ikon_service::{ids, Credentials};
use serde_json::Value;
use tower::ServiceExt;

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
    let r = call(&env, &alice, "StartInstance", &[]).await;
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
        .accounts()
        .disable_key(&alice.secret_id)
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
