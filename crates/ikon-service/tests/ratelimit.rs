//! Request rates shared by several nodes: two services over one catalog (SQLite, then
//! PostgreSQL from `IKON_TEST_DATABASE_URL`; the test fails without it) admit, between them,
//! exactly the policy's budget for one account and action in a second when each wants more
//! than the whole budget (with less demand, tokens a node took and did not spend lapse: never
//! more than the budget, possibly less); another account and another action keep their own
//! budgets.

use ikon_catalog::Catalog;
use ikon_service::{ids, Config, ErrorKind, Service};
use sqlx::Executor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

async fn sqlite(dir: &std::path::Path) -> Catalog {
    Catalog::connect(&format!("sqlite://{}", dir.join("c.db").display()))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn postgres() -> Catalog {
    let base = std::env::var("IKON_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("IKON_TEST_DATABASE_URL is not set: this test must also run on PostgreSQL (scripts/start-postgres.sh starts one)")
    });
    let admin = Catalog::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("postgres {base}: {e}"));
    let db = format!("rl_{}", &ids::uuid4().replace('-', "")[..12]);
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

async fn node(cat: &Catalog, dir: &std::path::Path, limit: u32) -> Service {
    let mut cfg = Config::default();
    cfg.api.rate_limit_per_second = limit;
    cfg.api.rate_limits.insert("Unlimited".into(), 0);
    let store = ikon_service::Store::open_local(&dir.join("chunks"), 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Service::new(cat.clone(), cfg, store)
}

/// Waits for the start of the next second (the budget's window).
async fn next_second() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = u64::from(now.subsec_millis());
    tokio::time::sleep(Duration::from_millis(1000 - ms + 20)).await;
}

/// Fires `n` requests from `account` to `action` split over the nodes; (admitted, refused)
/// or None when the burst straddled two windows.
async fn burst(nodes: &[Service], account: &str, action: &str, n: usize) -> Option<(usize, usize)> {
    next_second().await;
    let start = ids::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let svc = nodes[i % nodes.len()].clone();
        let (account, action) = (account.to_string(), action.to_string());
        tasks.push(tokio::spawn(async move {
            svc.accounts().admit(&account, &action).await
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(()) => ok += 1,
            Err(e) if e.kind == ErrorKind::RateLimited => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    (ids::now() == start).then_some((ok, refused))
}

async fn shared_budget(cat: Catalog, dir: &std::path::Path) {
    let a = node(&cat, dir, 20).await;
    let b = node(&cat, dir, 20).await;
    let nodes = [a.clone(), b.clone()];
    let mut measured = None;
    for _ in 0..5 {
        if let Some(r) = burst(&nodes, "100000000001", "DescribeImages", 120).await {
            measured = Some(r);
            break;
        }
    }
    let (ok, refused) = measured.unwrap_or_else(|| panic!("every burst straddled a second"));
    assert_eq!((ok, refused), (20, 100), "two nodes share one budget");
    // Another account and another action have budgets of their own; an action the policy
    // exempts is never refused.
    for (account, action, n, want) in [
        ("100000000002", "DescribeImages", 120, 20),
        ("100000000001", "DescribeRegions", 120, 20),
        ("100000000001", "Unlimited", 120, 120),
    ] {
        let mut got = None;
        for _ in 0..5 {
            if let Some(r) = burst(&nodes, account, action, n).await {
                got = Some(r);
                break;
            }
        }
        let (ok, _) = got.unwrap_or_else(|| panic!("every burst straddled a second"));
        assert_eq!(ok, want, "{account} {action}");
    }
    assert!(a.accounts().prune_rate_windows().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_one_budget_on_both_engines() {
    let dir = std::env::temp_dir().join(format!("ikon-rl-{}", ids::uuid4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    shared_budget(sqlite(&dir).await, &dir).await;
    shared_budget(postgres().await, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
}
