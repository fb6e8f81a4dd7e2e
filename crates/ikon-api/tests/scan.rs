//! Ikon's DescribeImageScan in both dialects through `ikon_api::app()`: the owner reads the
//! stored facts with the severities the policy in force gives them, a share recipient is
//! refused, anyone else does not see the image, and a missing facts row reads as NONE.

mod alibaba_support;

use alibaba_support::*;
use ikon_catalog::{fstate, Facts};
use ikon_service::{Config, Severity};
use serde_json::json;

fn scan_json() -> String {
    json!({
        "findings": [
            {"id": "shell-history", "severity": "warn", "path": "/root/.bash_history",
             "message": "/root/.bash_history is not empty. Empty it."},
            {"id": "authorized-keys", "severity": "block", "path": "/root/.ssh/authorized_keys",
             "message": "Keys. Remove them."},
        ],
        "scanned": ["linux"],
        "problems": [],
    })
    .to_string()
}

#[tokio::test]
async fn owner_sees_findings_under_the_policy_in_force() {
    // The operator made shell histories block.
    let mut cfg = Config::default();
    cfg.scan
        .severities
        .insert("shell-history".into(), Severity::Block);
    cfg.scan
        .severities
        .insert("authorized-keys".into(), Severity::Warn);
    let env = env_with(cfg).await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    let carol = account(&env, "carol").await;
    add(&env, img("img-scan0001", "PRIVATE", &alice.account_id, "a")).await;
    let mut other = img("img-scan0002", "PRIVATE", &alice.account_id, "b");
    other.disks[0].disk_id = "disk-2".into();
    add(&env, other).await;
    env.cat
        .put_facts(&Facts {
            disk_id: "disk-1".into(),
            version: 1,
            state: fstate::DONE.into(),
            inspection: "{}".into(),
            scan: scan_json(),
            error: String::new(),
            created_at: 5,
            updated_at: 7,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let r = tencent(
        &env,
        &alice,
        "DescribeImageScan",
        json!({"ImageId": "img-scan0001"}),
    )
    .await;
    assert_eq!(r["State"], "DONE", "{r}");
    let got: Vec<(String, String)> = r["Findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["Id"].as_str().unwrap_or("").into(),
                f["Severity"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("shell-history".to_string(), "block".to_string()),
            ("authorized-keys".to_string(), "warn".to_string())
        ]
    );
    assert!(
        r.get("Error").is_none(),
        "an Error key reads as a failure to the SDK"
    );

    let r = call(
        &env,
        &alice,
        "DescribeImageScan",
        &[("ImageId", "m-scan0001")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["Findings"]["Finding"][0]["Id"], "shell-history");
    assert_eq!(r.body["Scanned"][0], "linux");
    let r = call(
        &env,
        &alice,
        "DescribeImageScan",
        &[("ImageId", "m-scan0002")],
    )
    .await;
    assert_eq!((r.status, r.body["State"].as_str()), (200, Some("NONE")));

    // A recipient sees the image but not its findings; a stranger sees nothing.
    let r = tencent(
        &env,
        &alice,
        "ModifyImageSharePermission",
        json!({"ImageId": "img-scan0001", "AccountIds": [bob.account_id], "Permission": "SHARE"}),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    let r = tencent(
        &env,
        &bob,
        "DescribeImageScan",
        json!({"ImageId": "img-scan0001"}),
    )
    .await;
    assert_eq!(
        r["Error"]["Code"],
        "UnauthorizedOperation.ImageNotBelongToAccount"
    );
    let r = call(
        &env,
        &bob,
        "DescribeImageScan",
        &[("ImageId", "m-scan0001")],
    )
    .await;
    assert_eq!((r.status, r.code.as_str()), (403, "OperationDenied"));
    let r = tencent(
        &env,
        &carol,
        "DescribeImageScan",
        json!({"ImageId": "img-scan0001"}),
    )
    .await;
    assert_eq!(r["Error"]["Code"], "InvalidImageId.NotFound");
    let r = call(
        &env,
        &carol,
        "DescribeImageScan",
        &[("ImageId", "m-scan0001")],
    )
    .await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidImageId.NotFound")
    );
}
