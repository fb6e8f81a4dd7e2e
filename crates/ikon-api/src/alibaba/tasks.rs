//! Task actions (reference §2.12): DescribeTasks, DescribeTaskAttribute and CancelTask over
//! the service's durable tasks. Only tasks whose kind has an Alibaba `TaskAction` are shown
//! (imports — including operator publications into an account — and exports); the others
//! (copy, create) are tracked through their images, as Alibaba does.

use super::common::{done, max_ids, paging};
use super::params::Params;
use super::{errors, views, ApiError, Call};
use ikon_service::{ListTasks, Service};
use serde_json::{json, Value};

fn not_found() -> ApiError {
    ApiError::new(
        400,
        "InvalidTaskId.NotFound",
        "The specified \"TaskId\" is not found.",
    )
}

/// The service id of the required `TaskId`, when it can name a task.
fn task_id(p: &Params) -> Result<String, ApiError> {
    views::from_alibaba("task", p.str_req("TaskId")?).ok_or_else(not_found)
}

/// `YYYY-MM-DDThh:mm:ssZ` or `YYYY-MM-DDThh:mmZ` → unix seconds.
fn time(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(v) = p.str_opt(name) else {
        return Ok(None);
    };
    let full = match v.len() {
        17 => format!("{}:00Z", &v[..16]),
        _ => v.to_string(),
    };
    super::auth::parse_timestamp(&full).map(Some).map_err(|_| {
        ApiError::new(
            400,
            "InvalidParameter",
            format!("{name} must be yyyy-MM-ddTHH:mm:ssZ in UTC"),
        )
    })
}

fn ids_of(svc: &Service, list: Vec<&str>) -> Result<Vec<String>, ApiError> {
    let max = max_ids(svc);
    if list.len() > max {
        return Err(ApiError::invalid(format!("at most {max} ids")));
    }
    // Ids that cannot name a task simply match nothing.
    Ok(list
        .into_iter()
        .filter_map(|id| views::from_alibaba("task", id))
        .collect())
}

/// DescribeTasks.
pub async fn describe(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    if p.has("TaskGroupId") {
        return Err(ApiError::new(
            400,
            "UnsupportedParameter",
            "the parameter \"TaskGroupId\" is not supported by this service",
        ));
    }
    let (page, size) = paging(p, "InvalidParameter")?;
    let mut req = ListTasks {
        offset: (page - 1).saturating_mul(size),
        limit: size,
        kinds: Some(views::shown_task_kinds()),
        ..ListTasks::default()
    };
    if let Some(list) = p.str_opt("TaskIds") {
        req.ids = Some(ids_of(
            svc,
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect(),
        )?);
    }
    if let Some(a) = p.str_opt("TaskAction") {
        req.kinds = Some(views::task_kinds(a).ok_or_else(|| {
            ApiError::invalid(format!(
                "TaskAction {a:?} must be ImportImage, ExportImage, RedeployInstance, ModifyDiskSpec or ArchiveSnapshot"
            ))
        })?);
    }
    // Unknown statuses are ignored, as documented.
    req.states = p.str_opt("TaskStatus").and_then(views::task_states);
    let resources = p.list("ResourceIds");
    let max = max_ids(svc);
    if resources.len() > max {
        return Err(ApiError::invalid(format!(
            "ResourceIds takes at most {max} ids"
        )));
    }
    if !resources.is_empty() {
        req.resource_ids = Some(
            resources
                .iter()
                .filter_map(|r| {
                    let prefix = r.split_once('-')?.0;
                    let (svc_prefix, _) = views::PREFIXES.iter().find(|(_, a)| *a == prefix)?;
                    views::from_alibaba(svc_prefix, r)
                })
                .collect(),
        );
    }
    req.created_from = time(p, "StartTime")?;
    req.created_to = time(p, "EndTime")?;
    let listing = svc
        .transfers()
        .list_tasks(&call.caller, &req)
        .await
        .map_err(|e| errors::map("DescribeTasks", e))?;
    let tasks: Vec<Value> = listing.tasks.iter().map(views::task).collect();
    Ok(json!({
        "RegionId": call.caller.region,
        "TotalCount": listing.total,
        "PageNumber": page,
        "PageSize": size,
        "TaskSet": { "Task": tasks },
    }))
}

/// The caller's task named by `TaskId`, if this API shows it.
async fn shown_task(svc: &Service, call: &Call, action: &str) -> Result<String, ApiError> {
    let id = task_id(&call.params)?;
    let t = svc
        .transfers()
        .own_task(&call.caller, &id)
        .await
        .map_err(|e| errors::map(action, e))?;
    if views::task_action(&t.kind).is_none() {
        return Err(not_found());
    }
    Ok(id)
}

/// DescribeTaskAttribute.
pub async fn attribute(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let id = shown_task(svc, call, "DescribeTaskAttribute").await?;
    let t = svc
        .transfers()
        .own_task(&call.caller, &id)
        .await
        .map_err(|e| errors::map("DescribeTaskAttribute", e))?;
    Ok(views::task_attribute(&t, &call.caller.region))
}

/// CancelTask.
pub async fn cancel(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let id = shown_task(svc, call, "CancelTask").await?;
    svc.transfers()
        .cancel_task(&call.caller, &id, dry_run)
        .await
        .map_err(|e| errors::map("CancelTask", e))?;
    done(dry_run)
}
