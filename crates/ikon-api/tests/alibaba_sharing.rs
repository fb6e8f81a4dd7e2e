//! The Alibaba dialect through `ikon_api::app()`: modification and deletion rules, sharing
//! (limits, recipients, dry runs) and one image seen and changed through both dialects.

mod alibaba_support;

use alibaba_support::*;
use ikon_service::Config;

#[tokio::test]
async fn modify_delete_and_other_accounts() {
    // Tencent's regions with Alibaba's naming rules (the policy's `[names]`).
    let cfg = Config {
        names: Config::alibaba().names,
        ..Config::default()
    };
    let env = env_with(cfg).await;
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
