//! Helpers every Alibaba action module shares: id translation and lists, paging, the dry-run
//! answer, sizes and times in Alibaba's shapes. The action modules import from here and from
//! nowhere else among themselves (the dispatcher in `actions` is the only module that calls
//! into the others).

use super::params::Params;
use super::{views, ApiError};
use ikon_service::{ids, Service};
use serde_json::{json, Value};

/// Page sizes (reference §4).
const DEFAULT_PAGE_SIZE: u64 = 10;
const MAX_PAGE_SIZE: u64 = 100;

const GIB: u64 = 1 << 30;

/// Ids one `ImageId` / `TaskIds` / `InstanceIds` list may name (the policy's).
pub(super) fn max_ids(svc: &Service) -> usize {
    svc.config().api.ids_per_call
}

/// Success, or `DryRunOperation` when only checking.
pub(super) fn done(dry_run: bool) -> Result<Value, ApiError> {
    if dry_run {
        Err(ApiError::dry_run())
    } else {
        Ok(json!({}))
    }
}

pub(super) fn paging(p: &Params, code: &str) -> Result<(u64, u64), ApiError> {
    let page = p.u64_opt("PageNumber")?.unwrap_or(1);
    let size = p.u64_opt("PageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page == 0 {
        return Err(ApiError::new(400, code, "PageNumber must be at least 1"));
    }
    if size == 0 || size > MAX_PAGE_SIZE {
        return Err(ApiError::new(
            400,
            code,
            format!("PageSize must be 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    Ok((page, size))
}

pub(super) fn skip(page: u64, size: u64) -> usize {
    usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX)
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError::new(
        404,
        format!("Invalid{what}Id.NotFound"),
        format!("The specified {what}Id does not exist."),
    )
}

/// The service id of an Alibaba id of kind `svc_prefix` (`ins`, `disk`, `snap`, `img`), or
/// the kind's "not found".
pub(super) fn id_of(svc_prefix: &str, id: &str, what: &str) -> Result<String, ApiError> {
    views::from_alibaba(svc_prefix, id).ok_or_else(|| not_found(what))
}

/// A JSON array of ids as a string (`InstanceIds`, `DiskIds`, `SnapshotIds`): the service ids
/// of those that can name a `svc_prefix` object (others name nothing).
pub(super) fn id_list(
    svc: &Service,
    p: &Params,
    name: &str,
    svc_prefix: &str,
    malformed: (u16, &str),
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(text) = p.str_opt(name) else {
        return Ok(None);
    };
    let list: Vec<String> = serde_json::from_str(text).map_err(|_| {
        ApiError::new(
            malformed.0,
            malformed.1,
            format!("{name} must be a JSON array of ids, e.g. [\"x\",\"y\"]"),
        )
    })?;
    let max = max_ids(svc);
    if list.len() > max {
        return Err(ApiError::new(
            malformed.0,
            malformed.1,
            format!("{name} takes at most {max} ids"),
        ));
    }
    Ok(Some(
        list.iter()
            .filter_map(|id| views::from_alibaba(svc_prefix, id))
            .collect(),
    ))
}

/// GiB of a byte size, rounded up.
pub(super) fn gib(bytes: u64) -> u64 {
    bytes.div_ceil(GIB)
}

/// `YYYY-MM-DDThh:mm:ssZ`.
pub(super) fn time(ts: i64) -> String {
    ids::iso8601(ts)
}
