//! The service's tasks: the runner (`ikon_transfer::runner`, over this service) and what
//! the domain says about tasks.
//! Accounts see their own tasks ([`Transfers::list_tasks`](crate::facets::Transfers::list_tasks), [`Transfers::own_task`](crate::facets::Transfers::own_task)) and may
//! cancel unfinished ones of the kinds in [`CANCELLABLE`] ([`Transfers::cancel_task`](crate::facets::Transfers::cancel_task)).

use crate::{ids, state, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::{NewTask, Task, TaskQuery, TaskState};
pub use ikon_transfer::runner::{BoxFuture, ImageStates, Progress, TaskError, TaskHandler};

/// A task worker of the service.
pub type Runner = ikon_transfer::runner::Runner<Service>;

impl Service {
    /// A task worker over this service's catalog; `lease_secs` bounds how long a dead
    /// worker holds a task. Register the handlers, then run it.
    pub fn task_runner(&self, lease_secs: i64) -> Runner {
        Runner::new(
            self.clone(),
            self.catalog().clone(),
            self.inner.task_wake.clone(),
            lease_secs,
        )
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

impl crate::facets::Transfers<'_> {
    /// Enqueues a task for `caller` working on `resource_id`.
    pub async fn submit_task(
        &self,
        caller: &Caller,
        kind: &str,
        resource_id: &str,
        payload: &serde_json::Value,
        max_attempts: i64,
    ) -> Result<String> {
        let task = new_task(caller, kind, resource_id, payload, max_attempts);
        self.catalog().enqueue_task(&task, ids::now()).await?;
        self.wake_runner();
        Ok(task.task_id)
    }

    /// Tells this process's task runner that a task is waiting.
    pub(crate) fn wake_runner(&self) {
        self.inner.task_wake.notify_one();
    }

    /// A task by id.
    pub async fn task(&self, task_id: &str) -> Result<Task> {
        self.catalog()
            .task(task_id)
            .await?
            .ok_or_else(|| Error::internal(format!("task {task_id} does not exist")))
    }

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
        let v = self.images().visible_image(caller, image_id).await?;
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

/// A new task (with a fresh id) of `kind` working for `caller` on `resource_id`.
pub(crate) fn new_task(
    caller: &Caller,
    kind: &str,
    resource_id: &str,
    payload: &serde_json::Value,
    max_attempts: i64,
) -> NewTask {
    NewTask {
        task_id: ids::new_id("task"),
        kind: kind.to_string(),
        account_id: caller.account_id.clone(),
        region: caller.region.clone(),
        resource_id: resource_id.to_string(),
        payload: payload.to_string(),
        max_attempts,
    }
}
