//! The durable task runner: import, export, copy and create run as tasks stored in the
//! catalog. A worker claims a task with a lease, renews it while working (heartbeat, which
//! also records progress), and finishes it in the same transaction as the image's state
//! change, so an image turns NORMAL only when its task succeeded. A worker that dies loses
//! its lease; the task is claimed again (retry) until its attempts are used up, then it
//! fails terminally with a reason and its image moves to the failed state
//! ([`Runner::recover`]). The runner knows tasks, leases and image states; what a task does
//! is its [`TaskHandler`]'s, given the context `C` (the service).

use ikon_catalog::{ids, Catalog, ImageChange, Task, TaskOutcome};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A boxed future returned by handlers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a task attempt failed.
#[derive(Debug, Clone)]
pub struct TaskError {
    /// Explanation recorded on the task (and the image's state reason when terminal).
    pub message: String,
    /// Whether another attempt may succeed (I/O, network) or not (bad input).
    pub retryable: bool,
}

impl TaskError {
    /// A failure another attempt will not fix.
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
            retryable: true,
        }
    }

    /// The same failure, its message prefixed with what it concerns.
    pub fn prefixed(self, what: &str) -> TaskError {
        TaskError {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }
}

/// Progress reporting and cancellation for a running task.
#[derive(Debug, Default)]
pub struct Progress {
    percent: AtomicI64,
    lost: AtomicBool,
}

impl Progress {
    /// Records progress (0..=100).
    pub fn set(&self, percent: i64) {
        self.percent.store(percent.clamp(0, 100), Ordering::Relaxed);
    }

    /// The progress recorded so far.
    pub fn percent(&self) -> i64 {
        self.percent.load(Ordering::Relaxed)
    }

    /// Whether the lease was lost: the handler must stop without side effects.
    pub fn lease_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

/// What the image of a task goes through.
#[derive(Debug, Clone, Copy)]
pub struct ImageStates {
    /// States the image is in while the task runs.
    pub running: &'static [&'static str],
    /// State on success.
    pub success: &'static str,
    /// State on terminal failure.
    pub failure: &'static str,
}

/// Runs one kind of task.
pub trait TaskHandler<C>: Send + Sync {
    /// The kind this handler runs.
    fn kind(&self) -> &'static str;
    /// Image state changes on completion (the task's `resource_id` is the image id).
    fn image_states(&self) -> Option<ImageStates>;
    /// Called once when the task is abandoned for good (its last worker died), before it is
    /// failed: clean up what `image_states` does not cover (e.g. several images).
    fn on_abandoned<'a>(
        &'a self,
        _ctx: &'a C,
        _task: &'a Task,
        _reason: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// One attempt. Must be idempotent: a retried attempt may find its own partial work.
    fn run<'a>(
        &'a self,
        ctx: &'a C,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>>;
}

/// A task worker: claims tasks from `catalog` and runs them with their handler, which gets
/// `ctx` (the service) to work with.
pub struct Runner<C> {
    ctx: C,
    catalog: Catalog,
    wake: Arc<tokio::sync::Notify>,
    handlers: HashMap<&'static str, Arc<dyn TaskHandler<C>>>,
    worker_id: String,
    lease_secs: i64,
    retry_after: i64,
}

impl<C: Send + Sync> Runner<C> {
    /// A worker with a unique id; `lease_secs` bounds how long a dead worker holds a task;
    /// `wake` is signalled when this process enqueues a task (others' are found by polling).
    pub fn new(
        ctx: C,
        catalog: Catalog,
        wake: Arc<tokio::sync::Notify>,
        lease_secs: i64,
    ) -> Runner<C> {
        Runner {
            ctx,
            catalog,
            wake,
            handlers: HashMap::new(),
            worker_id: format!("worker-{}", ids::uuid4()),
            lease_secs: lease_secs.max(1),
            retry_after: 1,
        }
    }

    /// Registers a handler.
    pub fn register(&mut self, h: Arc<dyn TaskHandler<C>>) {
        self.handlers.insert(h.kind(), h);
    }

    /// This worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Fails every task whose lease ran out with no attempts left (its worker died on the
    /// last attempt) and moves its image to the failed state. Returns how many.
    pub async fn recover(&self) -> Result<usize, ikon_catalog::Error> {
        let now = ids::now();
        let mut n = 0;
        for t in self.catalog.exhausted_tasks(now).await? {
            let handler = self.handlers.get(t.kind.as_str());
            let image = handler
                .and_then(|h| h.image_states())
                .map(|s| (t.resource_id.as_str(), s.running, s.failure));
            let reason = format!(
                "task {} ({}) stopped responding after {} attempts",
                t.task_id, t.kind, t.attempts
            );
            if let Some(h) = handler {
                h.on_abandoned(&self.ctx, &t, &reason).await;
            }
            if self
                .catalog
                .fail_task(&t.task_id, &reason, image, now)
                .await?
            {
                tracing::warn!(task = %t.task_id, kind = %t.kind, "{reason}");
                n += 1;
            }
        }
        Ok(n)
    }

    /// Claims and runs one task; returns whether there was one.
    pub async fn run_once(&self) -> Result<bool, ikon_catalog::Error> {
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let Some(task) = self
            .catalog
            .claim_task(&self.worker_id, &kinds, self.lease_secs, ids::now())
            .await?
        else {
            return Ok(false);
        };
        let Some(handler) = self.handlers.get(task.kind.as_str()).cloned() else {
            return Ok(true);
        };
        let progress = Arc::new(Progress::default());
        let beat = {
            let (catalog, p, id, w, lease) = (
                self.catalog.clone(),
                progress.clone(),
                task.task_id.clone(),
                self.worker_id.clone(),
                self.lease_secs,
            );
            tokio::spawn(async move {
                let every =
                    Duration::from_millis(u64::try_from(lease * 1000 / 3).unwrap_or(1000).max(100));
                loop {
                    tokio::time::sleep(every).await;
                    let pct = p.percent.load(Ordering::Relaxed);
                    match catalog
                        .heartbeat_task(&id, &w, lease, pct, ids::now())
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) | Err(_) => {
                            p.lost.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            })
        };
        let outcome = handler.run(&self.ctx, &task, &progress).await;
        beat.abort();
        let states = handler.image_states();
        let now = ids::now();
        let outcome_ref = match &outcome {
            Ok(result) => TaskOutcome {
                error: None,
                retry: false,
                retry_after: 0,
                result,
                image: states.map(|s| ImageChange {
                    image_id: &task.resource_id,
                    from: s.running,
                    to: s.success,
                    reason: "",
                }),
            },
            Err(e) => TaskOutcome {
                error: Some(&e.message),
                retry: e.retryable,
                retry_after: self.retry_after,
                result: "",
                image: states.map(|s| ImageChange {
                    image_id: &task.resource_id,
                    from: s.running,
                    to: s.failure,
                    reason: &e.message,
                }),
            },
        };
        let recorded = self
            .catalog
            .finish_task(&task.task_id, &self.worker_id, &outcome_ref, now)
            .await?;
        if !recorded {
            tracing::warn!(task = %task.task_id, "lease lost before the task finished; result discarded");
        }
        Ok(true)
    }

    /// Runs tasks until `stop` resolves, polling every `idle` when there is nothing to do
    /// (and at once when this process enqueues one).
    pub async fn run_until(&self, idle: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.recover().await {
                tracing::error!("task recovery: {e}");
            }
            let busy = match self.run_once().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("task runner: {e}");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(idle) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}
