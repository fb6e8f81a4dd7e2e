//! Durable task runner: import, export, copy and create run as tasks stored in the catalog.
//! A worker claims a task with a lease, renews it while working (heartbeat, which also
//! records progress), and finishes it in the same transaction as the image's state change,
//! so an image turns NORMAL only when its task succeeded. A worker that dies loses its
//! lease; the task is claimed again (retry) until its attempts are used up, then it fails
//! terminally with a reason and its image moves to the failed state ([`Runner::recover`]).
//! Accounts see their own tasks ([`Service::list_tasks`], [`Service::own_task`]) and may
//! cancel unfinished ones of the kinds in [`CANCELLABLE`] ([`Service::cancel_task`]).

use crate::{ids, state, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::{ImageChange, NewTask, Task, TaskOutcome, TaskQuery, TaskState};
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
pub trait TaskHandler: Send + Sync {
    /// The kind this handler runs.
    fn kind(&self) -> &'static str;
    /// Image state changes on completion (the task's `resource_id` is the image id).
    fn image_states(&self) -> Option<ImageStates>;
    /// Called once when the task is abandoned for good (its last worker died), before it is
    /// failed: clean up what `image_states` does not cover (e.g. several images).
    fn on_abandoned<'a>(
        &'a self,
        _svc: &'a Service,
        _task: &'a Task,
        _reason: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// One attempt. Must be idempotent: a retried attempt may find its own partial work.
    fn run<'a>(
        &'a self,
        svc: &'a Service,
        task: &'a Task,
        progress: &'a Progress,
    ) -> BoxFuture<'a, std::result::Result<String, TaskError>>;
}

/// A task worker.
pub struct Runner {
    svc: Service,
    handlers: HashMap<&'static str, Arc<dyn TaskHandler>>,
    worker_id: String,
    lease_secs: i64,
    retry_after: i64,
}

impl Runner {
    /// A worker with a unique id; `lease_secs` bounds how long a dead worker holds a task.
    pub fn new(svc: Service, lease_secs: i64) -> Runner {
        Runner {
            svc,
            handlers: HashMap::new(),
            worker_id: format!("worker-{}", ids::uuid4()),
            lease_secs: lease_secs.max(1),
            retry_after: 1,
        }
    }

    /// Registers a handler.
    pub fn register(&mut self, h: Arc<dyn TaskHandler>) {
        self.handlers.insert(h.kind(), h);
    }

    /// This worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Fails every task whose lease ran out with no attempts left (its worker died on the
    /// last attempt) and moves its image to the failed state. Returns how many.
    pub async fn recover(&self) -> Result<usize> {
        let now = ids::now();
        let mut n = 0;
        for t in self.svc.catalog().exhausted_tasks(now).await? {
            let handler = self.handlers.get(t.kind.as_str());
            let image = handler
                .and_then(|h| h.image_states())
                .map(|s| (t.resource_id.as_str(), s.running, s.failure));
            let reason = format!(
                "task {} ({}) stopped responding after {} attempts",
                t.task_id, t.kind, t.attempts
            );
            if let Some(h) = handler {
                h.on_abandoned(&self.svc, &t, &reason).await;
            }
            if self
                .svc
                .catalog()
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
    pub async fn run_once(&self) -> Result<bool> {
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let Some(task) = self
            .svc
            .catalog()
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
            let (svc, p, id, w, lease) = (
                self.svc.clone(),
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
                    match svc
                        .catalog()
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
        let outcome = handler.run(&self.svc, &task, &progress).await;
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
            .svc
            .catalog()
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
                _ = self.svc.inner.task_wake.notified() => {}
            }
        }
    }
}

impl Service {
    /// Enqueues a task for `caller` working on `resource_id`.
    pub async fn submit_task(
        &self,
        caller: &Caller,
        kind: &str,
        resource_id: &str,
        payload: &serde_json::Value,
        max_attempts: i64,
    ) -> Result<String> {
        let task_id = ids::new_id("task");
        self.catalog()
            .enqueue_task(
                &NewTask {
                    task_id: task_id.clone(),
                    kind: kind.to_string(),
                    account_id: caller.account_id.clone(),
                    region: caller.region.clone(),
                    resource_id: resource_id.to_string(),
                    payload: payload.to_string(),
                    max_attempts,
                },
                ids::now(),
            )
            .await?;
        self.inner.task_wake.notify_one();
        Ok(task_id)
    }

    /// A task by id.
    pub async fn task(&self, task_id: &str) -> Result<Task> {
        self.catalog()
            .task(task_id)
            .await?
            .ok_or_else(|| Error::internal(format!("task {task_id} does not exist")))
    }
}

/// The image change a cancellation makes to its task's resource: (states it may be in, new
/// state).
pub type CancelChange = (&'static [&'static str], &'static str);

/// Task kinds an account may cancel while they run, with the image change a cancellation
/// makes (None: the image is not affected). Kinds not listed (publication, copy, creation)
/// cannot be cancelled by their account.
pub const CANCELLABLE: &[(&str, Option<CancelChange>)] = &[
    ("import", Some((&[state::IMPORTING], state::IMPORTFAILED))),
    ("export", None),
];

/// Whether an account may cancel tasks of `kind`.
pub fn cancellable(kind: &str) -> bool {
    CANCELLABLE.iter().any(|(k, _)| *k == kind)
}

/// A task listing request (already parsed by the dialect); `Some` filters must all match.
#[derive(Debug, Clone, Default)]
pub struct ListTasks {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Only these kinds.
    pub kinds: Option<Vec<String>>,
    /// Only these states.
    pub states: Option<Vec<TaskState>>,
    /// Only tasks on these resources.
    pub resource_ids: Option<Vec<String>>,
    /// Created at or after (unix seconds).
    pub created_from: Option<i64>,
    /// Created at or before (unix seconds).
    pub created_to: Option<i64>,
    /// Page start.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
}

/// One page of tasks.
#[derive(Debug, Clone)]
pub struct TaskListing {
    /// All matches.
    pub total: u64,
    /// This page, newest first.
    pub tasks: Vec<Task>,
}

fn task_not_found(task_id: &str) -> Error {
    Error::new(
        ErrorKind::TaskNotFound,
        format!("task {task_id} does not exist"),
    )
}

impl Service {
    /// The caller's tasks in their region.
    pub async fn list_tasks(&self, caller: &Caller, req: &ListTasks) -> Result<TaskListing> {
        self.check_region(&caller.region)?;
        let (total, tasks) = self
            .catalog()
            .query_tasks(&TaskQuery {
                account_id: caller.account_id.clone(),
                region: caller.region.clone(),
                ids: req.ids.clone(),
                kinds: req.kinds.clone(),
                states: req.states.clone(),
                resource_ids: req.resource_ids.clone(),
                created_from: req.created_from,
                created_to: req.created_to,
                offset: i64::try_from(req.offset).unwrap_or(i64::MAX),
                limit: i64::try_from(req.limit).unwrap_or(i64::MAX),
            })
            .await?;
        Ok(TaskListing {
            total: u64::try_from(total).unwrap_or(0),
            tasks,
        })
    }

    /// The tasks working on one of the caller's own images (none for anyone else's).
    pub async fn image_tasks(&self, caller: &Caller, image_id: &str) -> Result<Vec<Task>> {
        let v = self.visible_image(caller, image_id).await?;
        if v.image.owner != caller.account_id {
            return Ok(Vec::new());
        }
        Ok(self.catalog().tasks_for(image_id).await?)
    }

    /// One of the caller's tasks in their region; anyone else's is "not found".
    pub async fn own_task(&self, caller: &Caller, task_id: &str) -> Result<Task> {
        self.check_region(&caller.region)?;
        match self.catalog().task(task_id).await? {
            Some(t) if t.account_id == caller.account_id && t.region == caller.region => Ok(t),
            _ => Err(task_not_found(task_id)),
        }
    }

    /// Cancels one of the caller's unfinished tasks of a cancellable kind (see
    /// [`CANCELLABLE`]); its image change is applied with the cancellation. Checks only on a
    /// dry run. Returns the task as it is afterwards.
    pub async fn cancel_task(&self, caller: &Caller, task_id: &str, dry_run: bool) -> Result<Task> {
        let t = self.own_task(caller, task_id).await?;
        let Some((_, image)) = CANCELLABLE.iter().find(|(k, _)| *k == t.kind) else {
            return Err(Error::new(
                ErrorKind::TaskNotCancellable,
                format!("task {task_id} ({}) cannot be cancelled", t.kind),
            ));
        };
        let finished = || {
            Error::new(
                ErrorKind::TaskIncorrectState,
                format!("task {task_id} has finished and cannot be cancelled"),
            )
        };
        if !matches!(t.state, TaskState::Pending | TaskState::Running) {
            return Err(finished());
        }
        if dry_run {
            return Ok(t);
        }
        let change = image.map(|(from, to)| (t.resource_id.as_str(), from, to));
        if !self
            .catalog()
            .cancel_task(task_id, "cancelled by its account", change, ids::now())
            .await?
        {
            return Err(finished());
        }
        self.own_task(caller, task_id).await
    }
}
