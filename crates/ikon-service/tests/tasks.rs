//! The durable task runner: success, retry, permanent failure, and a worker that dies
//! mid-task (its lease runs out; another worker finishes it, or recovery fails it and its
//! image) — no task stays stuck and no image turns NORMAL without its task succeeding.

mod common;

use common::Env;
use ikon_service::tasks::{BoxFuture, ImageStates, Progress, Runner, TaskError, TaskHandler};
use ikon_service::{ids, Caller, Image, Service};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Fails `fail_first` times (transiently, or permanently when `permanent`), then succeeds.
struct Flaky {
    calls: AtomicU32,
    fail_first: u32,
    permanent: bool,
}

impl TaskHandler<Service> for Flaky {
    fn kind(&self) -> &'static str {
        "create"
    }
    fn image_states(&self) -> Option<ImageStates> {
        Some(ImageStates {
            running: &["CREATING"],
            success: "NORMAL",
            failure: "CREATEFAILED",
        })
    }
    fn run<'a>(
        &'a self,
        _svc: &'a Service,
        _task: &'a ikon_catalog::Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, Result<String, TaskError>> {
        Box::pin(async move {
            progress.set(50);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                if self.permanent {
                    return Err(TaskError::permanent("the source image is corrupt"));
                }
                return Err(TaskError::transient("store unreachable"));
            }
            Ok("{\"done\":true}".into())
        })
    }
}

async fn service() -> Env {
    common::service("svc").await
}

async fn creating_image(svc: &Service, id: &str) -> Caller {
    let acc = svc
        .accounts()
        .create_account(&format!("acc-{id}"), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = ids::now();
    let img = Image {
        image_id: id.into(),
        kind: "PRIVATE".into(),
        owner: acc.account_id.clone(),
        region: "ap-guangzhou".into(),
        name: id.into(),
        description: String::new(),
        os_name: String::new(),
        os_type: String::new(),
        platform: String::new(),
        architecture: "x86_64".into(),
        size_bytes: 0,
        state: "CREATING".into(),
        state_reason: String::new(),
        source: "CREATE_IMAGE".into(),
        license_type: "TencentCloud".into(),
        family: String::new(),
        deprecated: false,
        cloudinit: false,
        sync_percent: None,
        share_count: 0,
        disks: vec![],
        origin: String::new(),
        created_at: now,
        updated_at: now,
        version: 1,
        tags: vec![],
    };
    svc.images()
        .add_image(&img)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Caller {
        account_id: acc.account_id,
        is_admin: false,
        region: "ap-guangzhou".into(),
    }
}

async fn state(svc: &Env, id: &str) -> (String, String) {
    let i = svc
        .catalog()
        .image(id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("{id} gone"));
    (i.state, i.state_reason)
}

fn runner(svc: &Service, h: Flaky) -> Runner {
    let mut r = svc.task_runner(1);
    r.register(Arc::new(h));
    r
}

#[tokio::test]
async fn success_retry_and_permanent_failure() {
    let svc = service().await;
    let c = creating_image(&svc, "img-task0001").await;
    let t = svc
        .transfers()
        .submit_task(&c, "create", "img-task0001", &serde_json::json!({}), 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = runner(
        &svc,
        Flaky {
            calls: AtomicU32::new(0),
            fail_first: 1,
            permanent: false,
        },
    );
    assert!(r.run_once().await.unwrap_or(false));
    // First attempt failed transiently: the image is still CREATING, the task waits.
    assert_eq!(state(&svc, "img-task0001").await.0, "CREATING");
    assert_eq!(
        svc.transfers().task(&t).await.map(|t| t.state).ok(),
        Some(ikon_catalog::TaskState::Pending)
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(r.run_once().await.unwrap_or(false));
    assert_eq!(state(&svc, "img-task0001").await.0, "NORMAL");
    let task = svc
        .transfers()
        .task(&t)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (task.state, task.attempts, task.progress),
        (ikon_catalog::TaskState::Succeeded, 2, 100)
    );

    let c = creating_image(&svc, "img-task0002").await;
    svc.transfers()
        .submit_task(&c, "create", "img-task0002", &serde_json::json!({}), 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = runner(
        &svc,
        Flaky {
            calls: AtomicU32::new(0),
            fail_first: 9,
            permanent: true,
        },
    );
    assert!(r.run_once().await.unwrap_or(false));
    assert_eq!(
        state(&svc, "img-task0002").await,
        (
            "CREATEFAILED".to_string(),
            "the source image is corrupt".to_string()
        )
    );
    assert!(!r.run_once().await.unwrap_or(true), "nothing left to run");
}

#[tokio::test]
async fn a_dead_worker_never_leaves_a_task_stuck() {
    let svc = service().await;
    // Attempts left: a second worker takes over after the lease and finishes.
    let c = creating_image(&svc, "img-dead0001").await;
    let t1 = svc
        .transfers()
        .submit_task(&c, "create", "img-dead0001", &serde_json::json!({}), 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let claimed = svc
        .catalog()
        .claim_task("crashed-worker", &["create"], 1, ids::now())
        .await
        .ok()
        .flatten();
    assert_eq!(claimed.map(|t| t.task_id), Some(t1.clone()));
    let r = runner(
        &svc,
        Flaky {
            calls: AtomicU32::new(0),
            fail_first: 0,
            permanent: false,
        },
    );
    assert!(
        !r.run_once().await.unwrap_or(true),
        "the lease is still held"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(r.run_once().await.unwrap_or(false));
    assert_eq!(state(&svc, "img-dead0001").await.0, "NORMAL");
    // The crashed worker's late result is refused.
    let late = ikon_catalog::TaskOutcome {
        error: Some("late"),
        retry: false,
        retry_after: 0,
        result: "",
        image: None,
    };
    assert!(!svc
        .catalog()
        .finish_task(&t1, "crashed-worker", &late, ids::now())
        .await
        .unwrap_or(true));

    // No attempts left: recovery fails the task and its image with a reason.
    let c = creating_image(&svc, "img-dead0002").await;
    let t2 = svc
        .transfers()
        .submit_task(&c, "create", "img-dead0002", &serde_json::json!({}), 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(svc
        .catalog()
        .claim_task("crashed-worker", &["create"], 1, ids::now())
        .await
        .ok()
        .flatten()
        .is_some());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        !r.run_once().await.unwrap_or(true),
        "an exhausted task is not claimable"
    );
    assert_eq!(r.recover().await.unwrap_or(0), 1);
    let (st, reason) = state(&svc, "img-dead0002").await;
    assert_eq!(st, "CREATEFAILED");
    assert!(reason.contains("stopped responding"), "{reason}");
    assert_eq!(
        svc.transfers().task(&t2).await.map(|t| t.state).ok(),
        Some(ikon_catalog::TaskState::Failed)
    );
}

#[tokio::test]
async fn illegal_state_transitions_are_refused() {
    let svc = service().await;
    creating_image(&svc, "img-trans001").await;
    assert!(
        svc.images()
            .transition_image("img-trans001", "SYNCING", "")
            .await
            .is_err(),
        "CREATING cannot become SYNCING"
    );
    assert!(svc
        .images()
        .transition_image("img-trans001", "NORMAL", "")
        .await
        .is_ok());
    assert!(
        svc.images()
            .transition_image("img-trans001", "CREATEFAILED", "")
            .await
            .is_err(),
        "NORMAL cannot fail creation"
    );
    assert!(svc
        .images()
        .transition_image("img-trans001", "SYNCING", "")
        .await
        .is_ok());
    assert!(svc
        .images()
        .transition_image("img-trans001", "NORMAL", "")
        .await
        .is_ok());
}

#[tokio::test]
async fn a_publisher_that_dies_leaves_failed_deletable_images() {
    let svc = service().await;
    let caller = creating_image(&svc, "img-pubd0001").await;
    // Like `ikon admin image publish`: images IMPORTING, a task claimed by the publisher.
    let mut second = svc
        .catalog()
        .image("img-pubd0001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    for id in ["img-pubd0001", "img-pubd0002"] {
        if id == "img-pubd0002" {
            second.image_id = id.into();
            second.name = id.into();
            svc.images()
                .add_image(&second)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(svc
            .catalog()
            .transition_image(id, &["CREATING"], "IMPORTING", "", None, ids::now())
            .await
            .unwrap_or(false));
    }
    let task = ikon_catalog::NewTask {
        task_id: "task-pubdead1".into(),
        kind: "publish".into(),
        account_id: caller.account_id.clone(),
        region: "ap-guangzhou".into(),
        resource_id: "img-pubd0001".into(),
        payload: serde_json::json!({"images": ["img-pubd0001", "img-pubd0002"]}).to_string(),
        max_attempts: 1,
    };
    svc.catalog()
        .enqueue_claimed_task(&task, "publisher-that-dies", 1, ids::now())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut r = svc.task_runner(1);
    r.register(Arc::new(ikon_service::PublishHandler));
    assert_eq!(r.recover().await.unwrap_or(9), 0, "the lease is live");
    assert!(
        !r.run_once().await.unwrap_or(true),
        "nobody else may take a publication"
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(r.recover().await.unwrap_or(0), 1);
    for id in ["img-pubd0001", "img-pubd0002"] {
        let (st, reason) = state(&svc, id).await;
        assert_eq!(st, "IMPORTFAILED");
        assert!(reason.contains("publishing process stopped"), "{reason}");
    }
    svc.images()
        .delete_images(
            &caller,
            &ikon_service::DeleteRequest {
                ids: vec!["img-pubd0001".into(), "img-pubd0002".into()],
                dry_run: false,
                delete_snapshots: false,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn accounts_list_read_and_cancel_only_their_own_tasks() {
    use ikon_service::{ErrorKind, ListTasks, TaskState};
    let svc = service().await;
    let me = creating_image(&svc, "img-mine0001").await;
    let other = creating_image(&svc, "img-othr0001").await;
    // An import in progress: the image is IMPORTING until its task ends.
    let mut img = svc
        .catalog()
        .image("img-mine0001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("gone"));
    img.image_id = "img-mine0002".into();
    img.name = "importing".into();
    img.state = "IMPORTING".into();
    svc.images()
        .add_image(&img)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let submit = |c: &Caller, kind: &'static str, res: &'static str| {
        let (svc, c) = (svc.clone(), c.clone());
        async move {
            svc.transfers()
                .submit_task(&c, kind, res, &serde_json::json!({}), 1)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let create = submit(&me, "create", "img-mine0001").await;
    let import = submit(&me, "import", "img-mine0002").await;
    let export = submit(&me, "export", "img-mine0001").await;
    let theirs = submit(&other, "import", "img-othr0001").await;
    let list = |req: ListTasks| {
        let (svc, me) = (svc.clone(), me.clone());
        async move {
            let l = svc
                .transfers()
                .list_tasks(&me, &req)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut ids: Vec<String> = l.tasks.into_iter().map(|t| t.task_id).collect();
            ids.sort();
            (l.total, ids)
        }
    };
    let all = ListTasks {
        limit: 10,
        ..ListTasks::default()
    };
    let mut mine = vec![create.clone(), import.clone(), export.clone()];
    mine.sort();
    assert_eq!(list(all.clone()).await, (3, mine));
    assert_eq!(
        list(ListTasks {
            kinds: Some(vec!["import".into()]),
            ..all.clone()
        })
        .await,
        (1, vec![import.clone()])
    );
    assert_eq!(
        list(ListTasks {
            limit: 2,
            offset: 2,
            ..all.clone()
        })
        .await
        .1
        .len(),
        1
    );
    // Another account's task, or one in another region, is not found.
    let kind = |r: ikon_service::Result<ikon_service::Task>| r.err().map(|e| e.kind);
    assert_eq!(
        kind(svc.transfers().own_task(&me, &theirs).await),
        Some(ErrorKind::TaskNotFound)
    );
    let elsewhere = Caller {
        region: "ap-beijing".into(),
        ..me.clone()
    };
    assert_eq!(
        kind(svc.transfers().own_task(&elsewhere, &import).await),
        Some(ErrorKind::TaskNotFound)
    );
    assert_eq!(
        kind(svc.transfers().cancel_task(&me, &theirs, false).await),
        Some(ErrorKind::TaskNotFound)
    );
    // Only import and export tasks can be cancelled; a dry run changes nothing.
    assert_eq!(
        kind(svc.transfers().cancel_task(&me, &create, false).await),
        Some(ErrorKind::TaskNotCancellable)
    );
    let t = svc
        .transfers()
        .cancel_task(&me, &import, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.state, TaskState::Pending);
    let t = svc
        .transfers()
        .cancel_task(&me, &import, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.state, TaskState::Cancelled);
    assert_eq!(state(&svc, "img-mine0002").await.0, "IMPORTFAILED");
    assert_eq!(
        kind(svc.transfers().cancel_task(&me, &import, false).await),
        Some(ErrorKind::TaskIncorrectState)
    );
    // Cancelling an export leaves its image alone.
    svc.transfers()
        .cancel_task(&me, &export, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state(&svc, "img-mine0001").await.0, "CREATING");
    assert_eq!(
        list(ListTasks {
            states: Some(vec![TaskState::Cancelled]),
            ..all.clone()
        })
        .await
        .0,
        2
    );
}
