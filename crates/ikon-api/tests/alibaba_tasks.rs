//! The Alibaba dialect through `ikon_api::app()`: DescribeTasks / DescribeTaskAttribute /
//! CancelTask over the service's durable tasks (visibility, filters, paging, cancellation,
//! task ids `t-` for `task-`), DescribeImageSupportInstanceTypes, and both dialects under the
//! `alibaba` preset.

mod alibaba_support;

use alibaba_support::*;
use ikon_service::{Caller, Config};
use serde_json::json;

fn caller(key: &ikon_service::Credentials, region: &str) -> Caller {
    Caller {
        account_id: key.account_id.clone(),
        is_admin: false,
        region: region.into(),
    }
}

fn task_ids(r: &Resp) -> Vec<String> {
    r.body["TaskSet"]["Task"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["TaskId"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ali(task: &str) -> String {
    ikon_api::alibaba::views::to_alibaba(task)
}

#[tokio::test]
async fn tasks_are_listed_read_and_cancelled() {
    let env = env().await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    let mut importing = img("img-alice001", "PRIVATE", &alice.account_id, "imp");
    importing.state = "IMPORTING".into();
    add(&env, importing).await;
    add(
        &env,
        img("img-alice002", "PRIVATE", &alice.account_id, "exp"),
    )
    .await;
    let submit = |key: &ikon_service::Credentials, kind: &'static str, res: &'static str| {
        let (svc, c) = (env.svc.clone(), caller(key, REGION));
        async move {
            svc.transfers()
                .submit_task(&c, kind, res, &json!({}), 1)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let import = submit(&alice, "import", "img-alice001").await;
    let export = submit(&alice, "export", "img-alice002").await;
    // Kinds Alibaba does not show as tasks stay hidden.
    let create = submit(&alice, "create", "img-alice002").await;
    let bobs = submit(&bob, "import", "img-bob00001").await;

    let r = call(&env, &alice, "DescribeTasks", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["TotalCount"], 2);
    assert_eq!(r.body["RegionId"], REGION);
    let mut got = task_ids(&r);
    got.sort();
    let mut want = vec![ali(&import), ali(&export)];
    want.sort();
    assert_eq!(got, want);
    let t = &r.body["TaskSet"]["Task"][0];
    assert!(t["TaskId"].as_str().is_some_and(|s| s.starts_with("t-")));
    assert_eq!(t["TaskStatus"], "Processing");
    assert_eq!(t["SupportCancel"], "true");
    assert_eq!(t["FinishedTime"], "");
    assert!(t["CreationTime"]
        .as_str()
        .is_some_and(|s| s.len() == 17 && s.ends_with('Z')));
    // Filters: action, ids, resource, status, time, paging.
    for (params, want) in [
        (vec![("TaskAction", "ImportImage")], vec![ali(&import)]),
        (vec![("TaskAction", "RedeployInstance")], vec![]),
        (
            vec![(
                "TaskIds",
                &*format!("{},{},t-zzzzzzzz", ali(&export), ali(&bobs)),
            )],
            vec![ali(&export)],
        ),
        (vec![("ResourceIds.1", "m-alice002")], vec![ali(&export)]),
        (vec![("TaskStatus", "Finished")], vec![]),
        (vec![("EndTime", "2001-01-01T00:00Z")], vec![]),
        (
            vec![
                ("StartTime", "2001-01-01T00:00:00Z"),
                ("TaskAction", "ExportImage"),
            ],
            vec![ali(&export)],
        ),
    ] {
        let r = call(&env, &alice, "DescribeTasks", &params).await;
        assert_eq!(r.status, 200, "{params:?}: {}", r.body);
        assert_eq!(task_ids(&r), want, "{params:?}");
    }
    let r = call(
        &env,
        &alice,
        "DescribeTasks",
        &[("PageSize", "1"), ("PageNumber", "2")],
    )
    .await;
    assert_eq!(
        (r.body["TotalCount"].as_u64(), task_ids(&r).len()),
        (Some(2), 1)
    );
    for (params, code) in [
        (vec![("TaskAction", "Reboot")], "InvalidParameter"),
        (vec![("StartTime", "yesterday")], "InvalidParameter"),
        (vec![("PageSize", "101")], "InvalidParameter"),
        (vec![("TaskGroupId", "g-1")], "UnsupportedParameter"),
    ] {
        let r = call(&env, &alice, "DescribeTasks", &params).await;
        assert_eq!((r.status, r.code.as_str()), (400, code), "{params:?}");
    }
    let r = call(&env, &alice, "DescribeTasks", &[("DryRun", "true")]).await;
    assert_eq!(r.code, "DryRunOperation");

    // Attribute: own tasks only; hidden kinds and other accounts' tasks are not found.
    let r = call(
        &env,
        &alice,
        "DescribeTaskAttribute",
        &[("TaskId", &ali(&import))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["TaskAction"], "ImportImage");
    assert_eq!(r.body["TaskProcess"], "0%");
    assert_eq!(r.body["TotalCount"], 1);
    let op = &r.body["OperationProgressSet"]["OperationProgress"][0];
    assert_eq!(op["OperationStatus"], "Processing");
    assert_eq!(
        op["RelatedItemSet"]["RelatedItem"][0],
        json!({"Name": "ImageId", "Value": "m-alice001"})
    );
    for id in [
        ali(&bobs),
        ali(&create),
        "t-zzzzzzzz".into(),
        "task-abc".into(),
    ] {
        for action in ["DescribeTaskAttribute", "CancelTask"] {
            let r = call(&env, &alice, action, &[("TaskId", &id)]).await;
            assert_eq!(
                (r.status, r.code.as_str()),
                (400, "InvalidTaskId.NotFound"),
                "{action} {id}"
            );
        }
    }
    let r = call(&env, &alice, "CancelTask", &[]).await;
    assert_eq!(r.code, "MissingParameter");

    // Cancel: dry run, then for real (the import's image fails with it), then again.
    let r = call(
        &env,
        &alice,
        "CancelTask",
        &[("TaskId", &ali(&import)), ("DryRun", "true")],
    )
    .await;
    assert_eq!(r.code, "DryRunOperation");
    let r = call(&env, &alice, "CancelTask", &[("TaskId", &ali(&import))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&env, &alice, "CancelTask", &[("TaskId", &ali(&import))]).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (403, "InvalidTaskId.IncorrectTaskStatus")
    );
    let r = call(
        &env,
        &alice,
        "DescribeTaskAttribute",
        &[("TaskId", &ali(&import))],
    )
    .await;
    assert_eq!(r.body["TaskStatus"], "Cancelled");
    assert_eq!(r.body["SupportCancel"], "false");
    assert_eq!(r.body["FailedCount"], 1);
    assert!(r.body["FinishedTime"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("ImageId", "m-alice001"), ("Status", "CreateFailed")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-alice001"]);
    let r = call(
        &env,
        &alice,
        "DescribeTasks",
        &[("TaskStatus", "Cancelled")],
    )
    .await;
    assert_eq!(task_ids(&r), [ali(&import)]);
    // An unknown status is ignored rather than refused.
    let r = call(&env, &alice, "DescribeTasks", &[("TaskStatus", "Sleeping")]).await;
    assert_eq!(r.body["TotalCount"], 2);

    // A publication into an account is its ImportImage task, finished, not cancellable.
    let t = ikon_catalog::NewTask {
        task_id: "task-pub00001".into(),
        kind: ikon_service::PUBLISH_KIND.into(),
        account_id: alice.account_id.clone(),
        region: REGION.into(),
        resource_id: "img-alice002".into(),
        payload: "{}".into(),
        max_attempts: 1,
    };
    env.cat
        .enqueue_claimed_task(&t, "w", 60, ikon_service::ids::now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = call(&env, &alice, "CancelTask", &[("TaskId", "t-pub00001")]).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (403, "InvalidTaskId.TaskActionNotSupport")
    );
    let r = call(
        &env,
        &alice,
        "DescribeTaskAttribute",
        &[("TaskId", "t-pub00001")],
    )
    .await;
    assert_eq!(
        (
            r.body["TaskAction"].as_str(),
            r.body["SupportCancel"].as_str()
        ),
        (Some("ImportImage"), Some("false"))
    );
}

#[tokio::test]
async fn instance_types_follow_the_image() {
    let env = env_with(Config::alibaba()).await;
    let alice = account(&env, "alice").await;
    let bob = account(&env, "bob").await;
    let region = "cn-hangzhou";
    let mut linux = img("img-linux001", "PRIVATE", &alice.account_id, "linux");
    linux.region = region.into();
    add(&env, linux.clone()).await;
    let mut win = linux.clone();
    win.image_id = "img-windo001".into();
    win.name = "win".into();
    win.os_type = "Windows".into();
    add(&env, win).await;
    let mut arm = linux;
    arm.image_id = "img-arm00001".into();
    arm.name = "arm".into();
    arm.architecture = "arm64".into();
    add(&env, arm).await;
    let types = |r: &Resp| -> Vec<String> {
        r.body["InstanceTypes"]["InstanceType"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["InstanceTypeId"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ask = |key, params: Vec<(&'static str, &'static str)>| {
        let mut p = params;
        p.push(("RegionId", region));
        let env = &env;
        async move { call(env, key, "DescribeImageSupportInstanceTypes", &p).await }
    };
    let r = ask(&alice, vec![("ImageId", "m-linux001")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["ImageId"], "m-linux001");
    let linux_types = types(&r);
    assert!(linux_types.contains(&"ecs.t5-lc2m1.nano".to_string()));
    assert!(!linux_types.contains(&"ecs.g8y.large".to_string()));
    let nano = r.body["InstanceTypes"]["InstanceType"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|t| t["InstanceTypeId"] == "ecs.t5-lc2m1.nano")
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(
        nano,
        json!({"InstanceTypeId": "ecs.t5-lc2m1.nano", "InstanceTypeFamily": "ecs.t5-lc2m1", "CpuCoreCount": 1, "MemorySize": 0.5})
    );
    // Windows needs 1 GiB; arm64 images run on arm64 types only.
    let r = ask(
        &alice,
        vec![
            ("Filter.1.Key", "imageId"),
            ("Filter.1.Value", "m-windo001"),
            ("ActionType", "ChangeOS"),
        ],
    )
    .await;
    assert_eq!(types(&r).len(), linux_types.len() - 1);
    let r = ask(&alice, vec![("ImageId", "m-arm00001")]).await;
    assert_eq!(types(&r), ["ecs.g8y.large"]);
    for (key, params, status, code) in [
        (
            &bob,
            vec![("ImageId", "m-linux001")],
            404,
            "InvalidImageId.NotFound",
        ),
        (&alice, vec![], 400, "MissingParameter"),
        (
            &alice,
            vec![("ImageId", "m-linux001"), ("ActionType", "Boot")],
            400,
            "InvalidParamter",
        ),
        (
            &alice,
            vec![("ImageId", "m-linux001"), ("DryRun", "true")],
            400,
            "DryRunOperation",
        ),
    ] {
        let r = ask(key, params.clone()).await;
        assert_eq!((r.status, r.code.as_str()), (status, code), "{params:?}");
    }
}

#[tokio::test]
async fn both_dialects_answer_with_the_alibaba_preset_regions() {
    let env = env_with(Config::alibaba()).await;
    let alice = account(&env, "alice").await;
    let r = call(&env, &alice, "DescribeRegions", &[]).await;
    let regions: Vec<&str> = r.body["Regions"]["Region"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["RegionId"].as_str()).collect())
        .unwrap_or_default();
    assert!(regions.contains(&"cn-hangzhou") && regions.contains(&"ap-southeast-1"));
    assert!(!regions.contains(&"ap-guangzhou"));
    let mut i = img("img-hz000001", "PRIVATE", &alice.account_id, "hz");
    i.region = "cn-hangzhou".into();
    add(&env, i).await;
    let r = call(
        &env,
        &alice,
        "DescribeImages",
        &[("RegionId", "cn-hangzhou"), ("ImageOwnerAlias", "self")],
    )
    .await;
    assert_eq!(image_ids(&r), ["m-hz000001"]);
    // The default test region of the Tencent preset does not exist here.
    let r = call(&env, &alice, "DescribeImages", &[]).await;
    assert_eq!(
        (r.status, r.code.as_str()),
        (404, "InvalidRegionId.NotFound")
    );
    // Tencent's dialect: its DescribeRegions lists the same regions.
    let t = tencent(&env, &alice, "DescribeRegions", json!({})).await;
    let tregions: Vec<&str> = t["RegionSet"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["Region"].as_str()).collect())
        .unwrap_or_default();
    assert!(tregions.contains(&"cn-hangzhou"), "{t}");
}
