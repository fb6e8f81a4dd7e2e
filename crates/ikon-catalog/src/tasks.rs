//! Durable tasks (import, export, copy, create): a row per task, claimed by a worker with a
//! lease it must renew (heartbeat). A lease that runs out makes the task claimable again;
//! after `max_attempts` claims it fails terminally with a reason. Every transition is a
//! conditional update on (`state`, `lease_owner`), so two workers can never both own a task.

use crate::images::NewImage;
use crate::sql::Sql;
use crate::{Catalog, Error, Result};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Task states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a worker (possibly after a failed attempt).
    Pending,
    /// Claimed by a worker holding a lease.
    Running,
    /// Finished.
    Succeeded,
    /// Failed terminally (see `error`).
    Failed,
    /// Cancelled by its account before it finished (see `error`).
    Cancelled,
}

impl TaskState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Succeeded => "SUCCEEDED",
            TaskState::Failed => "FAILED",
            TaskState::Cancelled => "CANCELLED",
        }
    }

    fn parse(s: &str) -> Result<TaskState> {
        Ok(match s {
            "PENDING" => TaskState::Pending,
            "RUNNING" => TaskState::Running,
            "SUCCEEDED" => TaskState::Succeeded,
            "FAILED" => TaskState::Failed,
            "CANCELLED" => TaskState::Cancelled,
            other => return Err(Error::Corrupt(format!("task state {other:?}"))),
        })
    }
}

/// A task to enqueue.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Unique id.
    pub task_id: String,
    /// Kind (`import`, `export`, `copy`, `create`, ...).
    pub kind: String,
    /// Account it works for.
    pub account_id: String,
    /// Region it works in.
    pub region: String,
    /// Resource it produces or changes (e.g. an image id).
    pub resource_id: String,
    /// Kind-specific parameters (JSON).
    pub payload: String,
    /// Claims allowed before terminal failure.
    pub max_attempts: i64,
}

/// A stored task.
#[derive(Debug, Clone)]
pub struct Task {
    /// Unique id.
    pub task_id: String,
    /// Kind.
    pub kind: String,
    /// Account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// Resource.
    pub resource_id: String,
    /// Parameters (JSON).
    pub payload: String,
    /// State.
    pub state: TaskState,
    /// Claims so far.
    pub attempts: i64,
    /// Claims allowed.
    pub max_attempts: i64,
    /// Current lease holder.
    pub lease_owner: String,
    /// Lease expiry (unix seconds).
    pub lease_until: i64,
    /// Progress percent.
    pub progress: i64,
    /// Last error.
    pub error: String,
    /// Result (JSON) when succeeded.
    pub result: String,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// A listing of one account's tasks in one region (every `Some` filter must match).
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Account.
    pub account_id: String,
    /// Region.
    pub region: String,
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
    pub offset: i64,
    /// Page size.
    pub limit: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy)]
pub struct TaskOutcome<'a> {
    /// None on success, else the failure.
    pub error: Option<&'a str>,
    /// Whether a failure may be retried.
    pub retry: bool,
    /// Seconds before a retry.
    pub retry_after: i64,
    /// Result (JSON) on success.
    pub result: &'a str,
    /// Image state change applied with the task's terminal state.
    pub image: Option<ImageChange<'a>>,
}

/// An image state change tied to a task.
#[derive(Debug, Clone, Copy)]
pub struct ImageChange<'a> {
    /// Image.
    pub image_id: &'a str,
    /// States it may be in.
    pub from: &'a [&'a str],
    /// State to set.
    pub to: &'a str,
    /// Reason recorded.
    pub reason: &'a str,
}

const COLS: &str = "task_id, kind, account_id, region, resource_id, payload, state, attempts, \
    max_attempts, lease_owner, lease_until, progress, error, result, created_at, updated_at";

fn task_from_row(r: &AnyRow) -> Result<Task> {
    Ok(Task {
        task_id: r.try_get("task_id")?,
        kind: r.try_get("kind")?,
        account_id: r.try_get("account_id")?,
        region: r.try_get("region")?,
        resource_id: r.try_get("resource_id")?,
        payload: r.try_get("payload")?,
        state: TaskState::parse(&r.try_get::<String, _>("state")?)?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        progress: r.try_get("progress")?,
        error: r.try_get("error")?,
        result: r.try_get("result")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// How a task starts when it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStart<'a> {
    /// PENDING: the runner claims it.
    Pending,
    /// RUNNING, already claimed by `worker` (who runs it in-process, e.g. an admin command):
    /// no other worker can take it while the lease is renewed, and if the worker dies the
    /// lease runs out and recovery fails it.
    Claimed {
        /// The claiming worker.
        worker: &'a str,
        /// Seconds the first lease lasts.
        lease_secs: i64,
    },
}

/// What [`Catalog::insert_images_with_task`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Every image and the task are stored.
    All,
    /// Image `i` found its owner's quota used up: nothing is stored.
    QuotaFull(usize),
    /// Image `i`'s name is taken in its owner's region: nothing is stored.
    NameTaken(usize),
}

/// Stores `t` inside `tx`.
pub(crate) async fn insert_task_tx(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    t: &NewTask,
    start: TaskStart<'_>,
    now: i64,
) -> Result<()> {
    let (state, attempts, owner, until) = match start {
        TaskStart::Pending => ("PENDING", 0i64, "", 0i64),
        TaskStart::Claimed { worker, lease_secs } => ("RUNNING", 1, worker, now + lease_secs),
    };
    sqlx::query(
        "INSERT INTO tasks (task_id, kind, account_id, region, resource_id, payload, state,
         attempts, max_attempts, lease_owner, lease_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(&t.task_id)
    .bind(&t.kind)
    .bind(&t.account_id)
    .bind(&t.region)
    .bind(&t.resource_id)
    .bind(&t.payload)
    .bind(state)
    .bind(attempts)
    .bind(t.max_attempts)
    .bind(owner)
    .bind(until)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Catalog {
    /// Enqueues a task.
    pub async fn enqueue_task(&self, t: &NewTask, now: i64) -> Result<()> {
        self.insert_images_with_task(&[], t, TaskStart::Pending, now)
            .await
            .map(|_| ())
    }

    /// Enqueues a task already claimed by `worker` (see [`TaskStart::Claimed`]).
    pub async fn enqueue_claimed_task(
        &self,
        t: &NewTask,
        worker: &str,
        lease_secs: i64,
        now: i64,
    ) -> Result<()> {
        let start = TaskStart::Claimed { worker, lease_secs };
        self.insert_images_with_task(&[], t, start, now)
            .await
            .map(|_| ())
    }

    /// Stores new images (each reserving a unit of its owner's quota when given one, as
    /// [`Catalog::insert_image`]) and the task that will finish them, in one transaction:
    /// a crash never leaves an image waiting for a task that does not exist. When an image
    /// cannot be stored, nothing is.
    pub async fn insert_images_with_task(
        &self,
        images: &[(&NewImage, Option<i64>)],
        task: &NewTask,
        start: TaskStart<'_>,
        now: i64,
    ) -> Result<Inserted> {
        let mut tx = self.begin().await?;
        for (i, (img, quota)) in images.iter().enumerate() {
            match crate::images::insert_image_tx(&mut tx, img, *quota).await {
                Ok(true) => {}
                Ok(false) => return Ok(Inserted::QuotaFull(i)),
                Err(Error::Conflict(_)) => return Ok(Inserted::NameTaken(i)),
                Err(e) => return Err(e),
            }
        }
        insert_task_tx(&mut tx, task, start, now).await?;
        if !images.is_empty() {
            crate::images::bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(Inserted::All)
    }

    /// One task by id.
    pub async fn task(&self, task_id: &str) -> Result<Option<Task>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM tasks WHERE task_id = $1"))
            .bind(task_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    /// Tasks for a resource, newest first.
    pub async fn tasks_for(&self, resource_id: &str) -> Result<Vec<Task>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM tasks WHERE resource_id = $1 ORDER BY created_at DESC, task_id"
        ))
        .bind(resource_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// One page of an account's tasks, newest first, and the number of all matches.
    pub async fn query_tasks(&self, q: &TaskQuery) -> Result<(i64, Vec<Task>)> {
        let filter = |qb: &mut Sql| {
            qb.push(" FROM tasks WHERE account_id = ")
                .bind_str(&q.account_id);
            qb.push(" AND region = ").bind_str(&q.region);
            let lists = [
                ("task_id", &q.ids),
                ("kind", &q.kinds),
                ("resource_id", &q.resource_ids),
            ];
            for (col, list) in lists {
                if let Some(l) = list {
                    qb.push(&format!(" AND {col} IN "))
                        .bind_list(l.iter().map(String::as_str));
                }
            }
            if let Some(states) = &q.states {
                qb.push(" AND state IN ")
                    .bind_list(states.iter().map(|s| s.as_str()));
            }
            if let Some(t) = q.created_from {
                qb.push(" AND created_at >= ").bind_i64(t);
            }
            if let Some(t) = q.created_to {
                qb.push(" AND created_at <= ").bind_i64(t);
            }
        };
        let mut count = Sql::new("SELECT COUNT(*)");
        filter(&mut count);
        let total: i64 = count.query().fetch_one(self.pool()).await?.try_get(0)?;
        let mut page = Sql::new(&format!("SELECT {COLS}"));
        filter(&mut page);
        page.push(" ORDER BY created_at DESC, task_id DESC LIMIT ")
            .bind_i64(q.limit.max(0));
        page.push(" OFFSET ").bind_i64(q.offset.max(0));
        let rows = page.query().fetch_all(self.pool()).await?;
        Ok((
            total,
            rows.iter().map(task_from_row).collect::<Result<_>>()?,
        ))
    }

    /// Tasks whose lease ran out with no attempts left: they can never be claimed again
    /// and must be failed terminally by the caller (who also fails their resource).
    pub async fn exhausted_tasks(&self, now: i64) -> Result<Vec<Task>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM tasks WHERE state = 'RUNNING' AND lease_until < $1
             AND attempts >= max_attempts ORDER BY created_at"
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Claims the oldest runnable task of one of `kinds` (pending and due, or running with an
    /// expired lease and attempts left) for `worker` until `now + lease_secs`.
    pub async fn claim_task(
        &self,
        worker: &str,
        kinds: &[&str],
        lease_secs: i64,
        now: i64,
    ) -> Result<Option<Task>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        for _ in 0..8 {
            let mut qb =
                Sql::new("SELECT task_id FROM tasks WHERE ((state = 'PENDING' AND run_after <= ");
            qb.bind_i64(now)
                .push(") OR (state = 'RUNNING' AND lease_until < ")
                .bind_i64(now);
            qb.push(" AND attempts < max_attempts)) AND kind IN ")
                .bind_list(kinds.iter().copied());
            qb.push(" ORDER BY created_at, task_id LIMIT 1");
            let id: Option<String> = match qb.query().fetch_optional(self.pool()).await? {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            };
            let Some(id) = id else { return Ok(None) };
            let row = sqlx::query(&format!(
                "UPDATE tasks SET state = 'RUNNING', lease_owner = $1, lease_until = $2,
                 attempts = attempts + 1, updated_at = $3
                 WHERE task_id = $4 AND ((state = 'PENDING' AND run_after <= $3)
                   OR (state = 'RUNNING' AND lease_until < $3 AND attempts < max_attempts))
                 RETURNING {COLS}"
            ))
            .bind(worker)
            .bind(now + lease_secs)
            .bind(now)
            .bind(&id)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                return task_from_row(&row).map(Some);
            }
            // Another worker won the race for this one; look again.
        }
        Ok(None)
    }

    /// Renews a lease and records progress; `false` means the lease was lost (another
    /// worker owns the task now, or it was finished) and the caller must stop.
    pub async fn heartbeat_task(
        &self,
        task_id: &str,
        worker: &str,
        lease_secs: i64,
        progress: i64,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE tasks SET lease_until = $1, progress = $2, updated_at = $3
             WHERE task_id = $4 AND lease_owner = $5 AND state = 'RUNNING' AND lease_until >= $3",
        )
        .bind(now + lease_secs)
        .bind(progress)
        .bind(now)
        .bind(task_id)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Finishes a task the worker still owns. `Ok(true)` = recorded. On success
    /// (`error = None`) it becomes SUCCEEDED with `result`; on error it goes back to PENDING
    /// after `retry_after` seconds if attempts remain and `retry` is set, else FAILED. The
    /// optional image change is applied in the same transaction (on success or terminal
    /// failure), so an image never turns NORMAL without its task succeeding.
    pub async fn finish_task(
        &self,
        task_id: &str,
        worker: &str,
        o: &TaskOutcome<'_>,
        now: i64,
    ) -> Result<bool> {
        let (error, retry, retry_after, result, image) =
            (o.error, o.retry, o.retry_after, o.result, o.image);
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT attempts, max_attempts FROM tasks WHERE task_id = $1 AND lease_owner = $2 AND state = 'RUNNING'",
        )
        .bind(task_id)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let attempts: i64 = row.try_get("attempts")?;
        let max: i64 = row.try_get("max_attempts")?;
        let (state, run_after) = match error {
            None => ("SUCCEEDED", 0),
            Some(_) if retry && attempts < max => ("PENDING", now + retry_after),
            Some(_) => ("FAILED", 0),
        };
        sqlx::query(
            "UPDATE tasks SET state = $1, run_after = $2, error = $3, result = $4, lease_owner = '',
             lease_until = 0, progress = CASE WHEN $1 = 'SUCCEEDED' THEN 100 ELSE progress END,
             updated_at = $5 WHERE task_id = $6",
        )
        .bind(state)
        .bind(run_after)
        .bind(error.unwrap_or(""))
        .bind(result)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        if state != "PENDING" {
            if let Some(ImageChange {
                image_id,
                from,
                to,
                reason,
            }) = image
            {
                image_update(image_id, from, to, reason, now)
                    .query()
                    .execute(&mut *tx)
                    .await?;
                crate::images::bump(&mut tx).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Fails a task terminally regardless of its lease (used for exhausted tasks found after
    /// a crash); the optional image change is applied in the same transaction.
    pub async fn fail_task(
        &self,
        task_id: &str,
        reason: &str,
        image: Option<(&str, &[&str], &str)>,
        now: i64,
    ) -> Result<bool> {
        self.end_task(task_id, TaskState::Failed, reason, image, now)
            .await
    }

    /// Cancels a task that has not finished (pending or running): it becomes CANCELLED with
    /// `reason`, its lease is dropped (a worker running it loses the lease at its next
    /// heartbeat and its result is discarded), and the optional image change is applied in
    /// the same transaction. `Ok(false)` = it had already finished.
    pub async fn cancel_task(
        &self,
        task_id: &str,
        reason: &str,
        image: Option<(&str, &[&str], &str)>,
        now: i64,
    ) -> Result<bool> {
        self.end_task(task_id, TaskState::Cancelled, reason, image, now)
            .await
    }

    async fn end_task(
        &self,
        task_id: &str,
        state: TaskState,
        reason: &str,
        image: Option<(&str, &[&str], &str)>,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query(
            "UPDATE tasks SET state = $1, error = $2, lease_owner = '', lease_until = 0,
             updated_at = $3 WHERE task_id = $4 AND state IN ('PENDING', 'RUNNING')",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(now)
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some((image_id, from, to)) = image {
            image_update(image_id, from, to, reason, now)
                .query()
                .execute(&mut *tx)
                .await?;
            crate::images::bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// `UPDATE images` to `to` (with `reason`) if the image is in one of `from`.
fn image_update(image_id: &str, from: &[&str], to: &str, reason: &str, now: i64) -> Sql {
    let mut qb = Sql::new("UPDATE images SET state = ");
    qb.bind_str(to).push(", state_reason = ").bind_str(reason);
    qb.push(", sync_percent = NULL, updated_at = ")
        .bind_i64(now);
    qb.push(", version = version + 1 WHERE image_id = ")
        .bind_str(image_id);
    qb.push(" AND state IN ").bind_list(from.iter().copied());
    qb
}

impl Catalog {
    /// Tasks of `kind` whose payload mentions `needle` (an id), newest first.
    pub async fn tasks_mentioning(&self, kind: &str, needle: &str) -> Result<Vec<Task>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT task_id FROM tasks WHERE kind = $1 AND payload LIKE $2 ORDER BY created_at DESC",
        )
        .bind(kind)
        .bind(format!("%\"{needle}\"%"))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(t) = self.task(&id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }
}
