//! Listing and cancelling tasks, on both engines (a fresh SQLite file and a fresh PostgreSQL
//! database from `IKON_TEST_DATABASE_URL`; the tests fail, not skip, without it).

use ikon_catalog::{Catalog, NewTask, TaskOutcome, TaskQuery, TaskState};
use sqlx::Executor;

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), t % 1_000_000_000_000)
}

async fn sqlite() -> Catalog {
    let dir = std::env::temp_dir().join(unique("ikon_tasks"));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    Catalog::connect(&format!("sqlite://{}", dir.join("catalog.db").display()))
        .await
        .unwrap_or_else(|e| panic!("sqlite: {e}"))
}

async fn postgres() -> Catalog {
    let base = std::env::var("IKON_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("IKON_TEST_DATABASE_URL is not set: the catalog suite must also run on PostgreSQL (scripts/start-postgres.sh starts one)")
    });
    let admin = Catalog::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("postgres {base}: {e}"));
    let db = unique("tl");
    admin
        .pool()
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .unwrap_or_else(|e| panic!("create database: {e}"));
    let (prefix, _) = base
        .rsplit_once('/')
        .unwrap_or_else(|| panic!("bad url {base}"));
    Catalog::connect(&format!("{prefix}/{db}"))
        .await
        .unwrap_or_else(|e| panic!("postgres: {e}"))
}

fn task(id: &str, kind: &str, account: &str, region: &str, resource: &str) -> NewTask {
    NewTask {
        task_id: id.into(),
        kind: kind.into(),
        account_id: account.into(),
        region: region.into(),
        resource_id: resource.into(),
        payload: "{}".into(),
        max_attempts: 1,
    }
}

async fn ids(c: &Catalog, q: &TaskQuery) -> (i64, Vec<String>) {
    let (n, tasks) = c.query_tasks(q).await.unwrap_or_else(|e| panic!("{e}"));
    (n, tasks.into_iter().map(|t| t.task_id).collect())
}

async fn listing_and_cancelling(c: Catalog) {
    let add = |t: NewTask, at: i64| {
        let c = c.clone();
        async move {
            c.enqueue_task(&t, at)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    add(task("task-a0000001", "import", "acc1", "r1", "img-a"), 10).await;
    add(task("task-a0000002", "export", "acc1", "r1", "img-b"), 20).await;
    add(task("task-a0000003", "import", "acc1", "r1", "img-c"), 30).await;
    add(task("task-a0000004", "import", "acc1", "r2", "img-d"), 40).await;
    add(task("task-a0000005", "import", "acc2", "r1", "img-e"), 50).await;
    let mine = TaskQuery {
        account_id: "acc1".into(),
        region: "r1".into(),
        limit: 10,
        ..TaskQuery::default()
    };
    // Only the account's tasks in the region, newest first.
    assert_eq!(
        ids(&c, &mine).await,
        (
            3,
            vec![
                "task-a0000003".into(),
                "task-a0000002".into(),
                "task-a0000001".into()
            ]
        )
    );
    let page = TaskQuery {
        offset: 1,
        limit: 1,
        ..mine.clone()
    };
    assert_eq!(ids(&c, &page).await, (3, vec!["task-a0000002".into()]));
    let kinds = TaskQuery {
        kinds: Some(vec!["import".into()]),
        created_from: Some(15),
        ..mine.clone()
    };
    assert_eq!(ids(&c, &kinds).await, (1, vec!["task-a0000003".into()]));
    let by_id = TaskQuery {
        ids: Some(vec!["task-a0000001".into(), "task-a0000005".into()]),
        created_to: Some(10),
        ..mine.clone()
    };
    assert_eq!(ids(&c, &by_id).await, (1, vec!["task-a0000001".into()]));
    let by_resource = TaskQuery {
        resource_ids: Some(vec!["img-b".into()]),
        ..mine.clone()
    };
    assert_eq!(ids(&c, &by_resource).await.0, 1);
    let none = TaskQuery {
        kinds: Some(vec![]),
        ..mine.clone()
    };
    assert_eq!(ids(&c, &none).await.0, 0);

    // A running task is cancelled: its worker's heartbeat and result are refused.
    let running = c
        .claim_task("w1", &["import"], 60, 100)
        .await
        .ok()
        .flatten()
        .map(|t| t.task_id);
    assert_eq!(running.as_deref(), Some("task-a0000001"));
    assert!(c
        .cancel_task("task-a0000001", "cancelled by its account", None, 101)
        .await
        .unwrap_or(false));
    assert!(!c
        .heartbeat_task("task-a0000001", "w1", 60, 50, 102)
        .await
        .unwrap_or(true));
    let ok = TaskOutcome {
        error: None,
        retry: false,
        retry_after: 0,
        result: "{}",
        image: None,
    };
    assert!(!c
        .finish_task("task-a0000001", "w1", &ok, 103)
        .await
        .unwrap_or(true));
    // Pending tasks too; finished ones cannot be cancelled (or cancelled twice).
    assert!(c
        .cancel_task("task-a0000002", "stop", None, 104)
        .await
        .unwrap_or(false));
    assert!(!c
        .cancel_task("task-a0000002", "stop", None, 105)
        .await
        .unwrap_or(true));
    let states = TaskQuery {
        states: Some(vec![TaskState::Cancelled]),
        ..mine.clone()
    };
    assert_eq!(ids(&c, &states).await.0, 2);
    let t = c.task("task-a0000001").await.ok().flatten();
    assert_eq!(
        t.map(|t| (t.state, t.error, t.lease_owner)),
        Some((
            TaskState::Cancelled,
            "cancelled by its account".into(),
            String::new()
        ))
    );
    // Nobody claims a cancelled task.
    let next = c
        .claim_task("w2", &["import", "export"], 60, 200)
        .await
        .ok()
        .flatten()
        .map(|t| t.task_id);
    assert_eq!(next.as_deref(), Some("task-a0000003"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_cancelling_on_both_engines() {
    listing_and_cancelling(sqlite().await).await;
    listing_and_cancelling(postgres().await).await;
}
