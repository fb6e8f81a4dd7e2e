//! The actions: each parses its parameters (reference §2), calls one service operation, and
//! shapes the result. Validation here is only about the request's form (types, lengths,
//! enumerations, list sizes); every domain rule is the service's. Parameters this service
//! cannot honour are refused with `UnsupportedParameter` rather than silently ignored.

use super::common::{done, id_of, max_ids, paging, skip};
use super::params::{missing, Params};
use super::{errors, views, ApiError, Call};
use ikon_service::{state, DeleteRequest, ListImages, Service, ShareUpdate, Visibility};
use serde_json::{json, Value};

/// Accounts considered per `AddAccount.N` / `RemoveAccount.N` (later ones are ignored).
const MAX_SHARE_ACCOUNTS_PER_CALL: usize = 10;
/// `Tag.N` entries.
const MAX_TAGS: usize = 20;

/// Every action this dialect serves (the authorisation matrix test walks this list, so a
/// new action is covered without writing a test).
pub fn all() -> &'static [&'static str] {
    KNOWN
}

/// Actions this dialect serves.
const KNOWN: &[&str] = &[
    "DescribeRegions",
    "DescribeImages",
    "ModifyImageAttribute",
    "DeleteImage",
    "ModifyImageSharePermission",
    "DescribeImageSharePermission",
    "DescribeImageFromFamily",
    "DescribeImageSupportInstanceTypes",
    "DescribeTasks",
    "DescribeTaskAttribute",
    "CancelTask",
    "RunInstances",
    "DescribeInstances",
    "DeleteInstance",
    "DeleteInstances",
    "ReplaceSystemDisk",
    "CreateImage",
    "CreateSnapshot",
    "DescribeSnapshots",
    "DeleteSnapshot",
    "DescribeDisks",
    "ImportImage",
    "ExportImage",
    "CopyImage",
    "CancelCopyImage",
    "DescribeImageScan",
];

/// Actions whose requests may carry no `RegionId` (the Tea SDK sends none): they act in the
/// region of the resource named by this parameter, with this service id prefix.
const REGION_FROM: &[(&str, &str, &str)] = &[
    ("DeleteInstance", "InstanceId", "ins"),
    ("ReplaceSystemDisk", "InstanceId", "ins"),
    ("CreateSnapshot", "DiskId", "disk"),
    ("DeleteSnapshot", "SnapshotId", "snap"),
];

/// The call in the region of the resource it names, when it names no region.
async fn with_region(svc: &Service, call: &Call) -> Result<Option<Call>, ApiError> {
    let Some((_, param, prefix)) = REGION_FROM.iter().find(|(a, _, _)| *a == call.action) else {
        return Ok(None);
    };
    let what = match *prefix {
        "ins" => "Instance",
        "disk" => "Disk",
        _ => "Snapshot",
    };
    let given = call.params.str_req(param)?;
    let id = id_of(prefix, given, what)?;
    let region = svc
        .instances()
        .resource_region(&call.caller, &id)
        .await
        .map_err(|e| errors::map(&call.action, e))?
        .ok_or_else(|| {
            ApiError::new(
                404,
                format!("Invalid{what}Id.NotFound"),
                format!("The specified {what}Id does not exist."),
            )
        })?;
    Ok(Some(Call {
        caller: ikon_service::Caller {
            region,
            ..call.caller.clone()
        },
        action: call.action.clone(),
        params: call.params.clone(),
        host: call.host.clone(),
    }))
}

/// Runs `call.action`.
pub async fn dispatch(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let a = call.action.as_str();
    if !KNOWN.contains(&a) {
        return Err(ApiError::new(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ));
    }
    if a == "DescribeRegions" {
        return describe_regions(svc, call);
    }
    let inferred;
    let call = if call.caller.region.is_empty() {
        inferred = with_region(svc, call)
            .await?
            .ok_or_else(|| missing("RegionId"))?;
        &inferred
    } else {
        call
    };
    let p = &call.params;
    let dry_run = p.bool_opt("DryRun")?.unwrap_or(false);
    let map = |e| errors::map(a, e);
    match a {
        "DescribeImages" => describe_images(svc, call, dry_run).await,
        "ModifyImageAttribute" => modify_image_attribute(svc, call, dry_run).await,
        "DeleteImage" => {
            let id = image_id(p)?;
            p.bool_opt("Force")?;
            svc.images()
                .delete_images(
                    &call.caller,
                    &DeleteRequest {
                        ids: vec![id],
                        dry_run,
                        // Alibaba keeps an image's snapshots when the image is deleted.
                        delete_snapshots: false,
                    },
                )
                .await
                .map_err(map)?;
            done(dry_run)
        }
        "ModifyImageSharePermission" => modify_share_permission(svc, call, dry_run).await,
        "DescribeImageSharePermission" => {
            let id = image_id(p)?;
            let (page, size) = paging(p, "InvalidParameter")?;
            let shares = svc.images().shares(&call.caller, &id).await.map_err(map)?;
            let accounts: Vec<Value> = shares
                .iter()
                .skip(skip(page, size))
                .take(usize::try_from(size).unwrap_or(usize::MAX))
                .map(|s| json!({ "AliyunId": s.account_id, "SharedTime": ikon_service::ids::iso8601(s.created_at) }))
                .collect();
            Ok(json!({
                "RegionId": call.caller.region,
                "ImageId": views::to_alibaba_id(&id),
                "TotalCount": shares.len(),
                "PageNumber": page,
                "PageSize": size,
                "Accounts": { "Account": accounts },
                "ShareGroups": { "ShareGroup": [] },
            }))
        }
        // Ikon's own action (not in ECS's API): the hygiene scan's findings for the image's
        // owner, {ImageId, State, Findings: {Finding: [{Id, Severity, Path, Message}]},
        // Scanned, Problems, FailureReason, UpdatedTime}.
        "DescribeImageScan" => {
            let id = image_id(p)?;
            let s = svc
                .images()
                .image_scan(&call.caller, &id)
                .await
                .map_err(map)?;
            let findings: Vec<Value> = s
                .findings
                .iter()
                .map(|f| json!({ "Id": f.id, "Severity": f.severity.name(), "Path": f.path, "Message": f.message }))
                .collect();
            dry(
                dry_run,
                Ok(json!({
                    "ImageId": views::to_alibaba_id(&id),
                    "State": s.state,
                    "Findings": { "Finding": findings },
                    "Scanned": s.scanned,
                    "Problems": s.problems,
                    "FailureReason": s.error,
                    "UpdatedTime": if s.updated_at == 0 { String::new() } else { ikon_service::ids::iso8601(s.updated_at) },
                })),
            )
        }
        "DescribeImageFromFamily" => {
            let family = p.str_req("ImageFamily")?;
            let img = svc
                .images()
                .image_from_family(&call.caller, family)
                .await
                .map_err(map)?;
            Ok(json!({ "Image": img.as_ref().map_or_else(|| json!({}), views::image) }))
        }
        "DescribeImageSupportInstanceTypes" => support_instance_types(svc, call, dry_run).await,
        "DescribeTasks" => dry(dry_run, super::tasks::describe(svc, call).await),
        "DescribeTaskAttribute" => dry(dry_run, super::tasks::attribute(svc, call).await),
        "CancelTask" => super::tasks::cancel(svc, call, dry_run).await,
        "RunInstances" => super::instances::run(svc, call, dry_run).await,
        "DescribeInstances" => super::instances::describe(svc, call, dry_run).await,
        "DeleteInstance" | "DeleteInstances" => super::instances::delete(svc, call, dry_run).await,
        "ReplaceSystemDisk" => super::instances::replace_system_disk(svc, call, dry_run).await,
        "CreateImage" => super::instances::create_image(svc, call, dry_run).await,
        "CreateSnapshot" => super::disks::create_snapshot(svc, call, dry_run).await,
        "DescribeSnapshots" => super::disks::describe_snapshots(svc, call, dry_run).await,
        "DeleteSnapshot" => super::disks::delete_snapshot(svc, call, dry_run).await,
        "DescribeDisks" => super::disks::describe_disks(svc, call, dry_run).await,
        "ImportImage" => super::transfer::import_image(svc, call, dry_run).await,
        "ExportImage" => super::transfer::export_image(svc, call, dry_run).await,
        "CopyImage" => super::transfer::copy_image(svc, call, dry_run).await,
        "CancelCopyImage" => super::transfer::cancel_copy_image(svc, call, dry_run).await,
        _ => Err(ApiError::new(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    }
}

/// A read's answer, or `DryRunOperation` when only checking (after every check passed).
fn dry(dry_run: bool, r: Result<Value, ApiError>) -> Result<Value, ApiError> {
    match r {
        Ok(_) if dry_run => Err(ApiError::dry_run()),
        other => other,
    }
}

/// The required `ImageId`, as a service id; an id that names no image is not found.
fn image_id(p: &Params) -> Result<String, ApiError> {
    let id = p.str_req("ImageId")?;
    views::from_alibaba_id(id).ok_or_else(|| {
        ApiError::new(
            404,
            "InvalidImageId.NotFound",
            "The specified ImageId does not exist.",
        )
    })
}

fn unsupported(name: &str) -> ApiError {
    ApiError::new(
        400,
        "UnsupportedParameter",
        format!("the parameter \"{name}\" is not supported by this service"),
    )
}

fn describe_regions(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let p = &call.params;
    if let Some(l) = p.str_opt("AcceptLanguage") {
        if !["zh-CN", "en-US", "ja"].contains(&l) {
            return Err(ApiError::new(
                404,
                "InvalidAcceptLanguage.NotFound",
                format!("AcceptLanguage {l} is not supported"),
            ));
        }
    }
    if let Some(t) = p.str_opt("ResourceType") {
        if !["instance", "disk", "reservedinstance", "scu"].contains(&t) {
            return Err(ApiError::new(
                404,
                "InvalidResourceType.NotFound",
                format!("ResourceType {t} does not exist"),
            ));
        }
    }
    let regions: Vec<Value> = svc
        .config()
        .regions
        .iter()
        .map(|r| {
            json!({
                "RegionId": r.name,
                "LocalName": r.display_name,
                "RegionEndpoint": call.host,
                "Status": if r.available() { "available" } else { "soldOut" },
            })
        })
        .collect();
    Ok(json!({ "Regions": { "Region": regions } }))
}

/// Service states and whether deprecated images count, for an Alibaba `Status` list.
fn states_for(status: &str) -> Result<(Option<Vec<String>>, bool), ApiError> {
    let asked: Vec<&str> = status.split(',').map(str::trim).collect();
    if asked == ["ALL"] || asked == ["All"] {
        return Ok((None, true));
    }
    let mut states = Vec::new();
    let mut deprecated = false;
    for s in asked {
        let add: &[&str] = match s {
            "Available" => &[state::NORMAL, state::SYNCING],
            "Creating" => &[state::CREATING, state::IMPORTING],
            "CreateFailed" => &[state::CREATEFAILED, state::IMPORTFAILED],
            "Deprecated" => {
                deprecated = true;
                &[state::NORMAL]
            }
            // No image of this service waits or is unavailable.
            "Waiting" | "UnAvailable" => &[],
            other => {
                return Err(ApiError::new(
                    400,
                    "InvalidParamter",
                    format!("Status {other:?} is not a valid image status"),
                ))
            }
        };
        states.extend(add.iter().map(|s| s.to_string()));
    }
    Ok((Some(states), deprecated))
}

async fn describe_images(svc: &Service, call: &Call, dry_run: bool) -> Result<Value, ApiError> {
    let p = &call.params;
    for name in [
        "SnapshotId",
        "ImageOwnerId",
        "OSType",
        "Architecture",
        "InstanceType",
        "Filter",
        "IsSupportCloudinit",
    ] {
        if p.has(name) {
            return Err(unsupported(name));
        }
    }
    if let Some(u) = p.str_opt("Usage") {
        match u {
            // No image of this service is in use by an instance.
            "none" => {}
            "instance" => return Err(unsupported("Usage")),
            _ => {
                return Err(ApiError::new(
                    404,
                    "InvalidUsage",
                    format!("Usage {u} must be instance or none"),
                ))
            }
        }
    }
    let (page, size) = paging(p, "InvalidParamter")?;
    let mut req = ListImages {
        offset: (page - 1).saturating_mul(size),
        limit: size,
        ..ListImages::default()
    };
    let is_public = p.bool_opt("IsPublic")?.unwrap_or(false);
    req.categories = Some(match p.str_opt("ImageOwnerAlias") {
        None => vec![Visibility::Public, Visibility::Private, Visibility::Shared],
        Some("system") => vec![Visibility::Public],
        Some("self") => vec![Visibility::Private],
        // IsPublic=true asks for community images, which this service does not have.
        Some("others") if is_public => vec![],
        Some("others") => vec![Visibility::Shared],
        Some("marketplace") => vec![Visibility::Market],
        Some(other) => {
            return Err(ApiError::new(
                400,
                "InvalidImageOwnerAlias.ValueNotSupported",
                format!("ImageOwnerAlias {other:?} must be system, self, others or marketplace"),
            ))
        }
    });
    if let Some(list) = p.str_opt("ImageId") {
        let ids: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let max = max_ids(svc);
        if ids.len() > max {
            return Err(ApiError::new(
                400,
                "InvalidParamter",
                format!("ImageId takes at most {max} ids"),
            ));
        }
        // Ids naming no image are simply absent from the answer.
        req.ids = Some(ids.into_iter().filter_map(views::from_alibaba_id).collect());
    }
    if let Some(n) = p.str_opt("ImageName") {
        req.names.push(n.to_string());
    }
    req.family = p.str_opt("ImageFamily").map(str::to_string);
    let (states, deprecated) = states_for(p.str_opt("Status").unwrap_or("Available"))?;
    req.states = states;
    req.exclude_deprecated = !deprecated;
    let tags = p.objects("Tag");
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            400,
            "InvalidTagCount",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    for t in tags {
        let key = t
            .get("Key")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| ApiError::new(400, "InvalidTag.Mismatch", "every Tag.N needs a Key"))?;
        match t.get("Value") {
            Some(v) => req.tags.push((key.clone(), vec![v.clone()])),
            None => req.tag_keys.push(key.clone()),
        }
    }
    if dry_run {
        svc.check_region(&call.caller.region)
            .map_err(|e| errors::map("DescribeImages", e))?;
        return Err(ApiError::dry_run());
    }
    let listing = svc
        .images()
        .list_images(&call.caller, &req)
        .await
        .map_err(|e| errors::map("DescribeImages", e))?;
    let images: Vec<Value> = listing.images.iter().map(views::image).collect();
    Ok(json!({
        "RegionId": call.caller.region,
        "TotalCount": listing.total,
        "PageNumber": page,
        "PageSize": size,
        "Images": { "Image": images },
    }))
}

async fn support_instance_types(
    svc: &Service,
    call: &Call,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let p = &call.params;
    if let Some(a) = p.str_opt("ActionType") {
        if !["CreateEcs", "ChangeOS"].contains(&a) {
            return Err(ApiError::new(
                400,
                "InvalidParamter",
                format!("ActionType {a:?} must be CreateEcs or ChangeOS"),
            ));
        }
    }
    // The image comes from `ImageId`, or from the deprecated `Filter.N` with key `imageId`.
    let from_filter = p
        .objects("Filter")
        .into_iter()
        .find(|f| f.get("Key").map(String::as_str) == Some("imageId"))
        .and_then(|f| f.get("Value").cloned());
    let given = match (p.str_opt("ImageId"), &from_filter) {
        (Some(id), _) => id.to_string(),
        (None, Some(id)) => id.clone(),
        (None, None) => return Err(missing("ImageId")),
    };
    let id = views::from_alibaba_id(&given).ok_or_else(|| {
        ApiError::new(
            404,
            "InvalidImageId.NotFound",
            "The specified ImageId does not exist.",
        )
    })?;
    let types = svc
        .images()
        .instance_types_for_image(&call.caller, &id)
        .await
        .map_err(|e| errors::map("DescribeImageSupportInstanceTypes", e))?;
    if dry_run {
        return Err(ApiError::dry_run());
    }
    let types: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({
                "InstanceTypeId": t.id,
                "InstanceTypeFamily": t.family,
                "CpuCoreCount": t.cpus,
                "MemorySize": f64::from(t.memory_mib) / 1024.0,
            })
        })
        .collect();
    Ok(json!({
        "RegionId": call.caller.region,
        "ImageId": given,
        "InstanceTypes": { "InstanceType": types },
    }))
}

async fn modify_image_attribute(
    svc: &Service,
    call: &Call,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let p = &call.params;
    let id = image_id(p)?;
    for name in ["BootMode", "LicenseType", "Features"] {
        if p.has(name) {
            return Err(unsupported(name));
        }
    }
    let name = p.str_opt("ImageName");
    let desc = p.str_opt("Description");
    let family = p.str_opt("ImageFamily");
    let deprecated = match p.str_opt("Status") {
        None => None,
        Some("Deprecated") => Some(true),
        Some("Available") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Status {other:?} must be Deprecated or Available"
            )))
        }
    };
    let map = |e| errors::map("ModifyImageAttribute", e);
    if dry_run {
        svc.images()
            .check_modify_image(&call.caller, &id, name, desc)
            .await
            .map_err(map)?;
        return done(true);
    }
    svc.images()
        .modify_image(&call.caller, &id, name, desc, family, deprecated)
        .await
        .map_err(map)?;
    done(false)
}

async fn modify_share_permission(
    svc: &Service,
    call: &Call,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let p = &call.params;
    let id = image_id(p)?;
    let mut add = p.list("AddAccount");
    let mut remove = p.list("RemoveAccount");
    add.truncate(MAX_SHARE_ACCOUNTS_PER_CALL);
    remove.truncate(MAX_SHARE_ACCOUNTS_PER_CALL);
    let is_public = p.bool_opt("IsPublic")?;
    if is_public == Some(true) {
        return Err(ApiError::new(
            400,
            "UnsupportedParameter",
            "community images (IsPublic=true) are not supported by this service",
        ));
    }
    let map = |e| errors::map("ModifyImageSharePermission", e);
    if add.is_empty() && remove.is_empty() {
        if is_public.is_none() {
            return Err(missing("AddAccount.1"));
        }
        // IsPublic=false alone: nothing to change, but only the owner may ask.
        svc.images().shares(&call.caller, &id).await.map_err(map)?;
        return done(dry_run);
    }
    svc.images()
        .update_shares(
            &call.caller,
            &id,
            &ShareUpdate {
                add,
                remove,
                dry_run,
            },
        )
        .await
        .map_err(map)?;
    done(dry_run)
}
