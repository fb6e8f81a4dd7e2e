//! The actions: each parses its parameters (reference §2, §3.6), calls one service
//! operation, and shapes the result. Validation here is only about the request's form
//! (types, lengths, list limits, filter names); every domain rule is the service's.

use super::params::{check_count, missing, Params};
use super::{errors, views, ApiError, Call};
use ikon_service::{DeleteRequest, ListImages, Service, ShareChange, Visibility};
use serde_json::{json, Value};

/// Page size limits.
const DEFAULT_LIMIT: u64 = 20;
const MAX_LIMIT: u64 = 100;
/// Filter limits (reference §2.2).
const MAX_FILTERS: usize = 10;
const MAX_FILTER_VALUES: usize = 5;

/// Runs `call.action`.
pub async fn dispatch(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let a = call.action.as_str();
    if a == "DescribeRegions" {
        Params::new(&call.params, &[])?;
        return Ok(describe_regions(svc));
    }
    if !KNOWN.contains(&a)
        && !super::instances::ACTIONS.contains(&a)
        && !super::market::ACTIONS.contains(&a)
        && !super::transfer::ACTIONS.contains(&a)
    {
        return Err(ApiError::new(
            "InvalidAction",
            format!("action {a} does not exist or is not supported by this service"),
        ));
    }
    if call.caller.region.is_empty() {
        return Err(missing("X-TC-Region"));
    }
    if svc.config().region(&call.caller.region).is_none() {
        return Err(ApiError::new(
            "UnsupportedRegion",
            format!("region {} is not served here", call.caller.region),
        ));
    }
    let map = |e| errors::map(a, e);
    if super::instances::ACTIONS.contains(&a) {
        return super::instances::dispatch(svc, call, &map).await;
    }
    if super::market::ACTIONS.contains(&a) {
        return super::market::dispatch(svc, call, &map).await;
    }
    match a {
        "DescribeZones" => {
            Params::new(&call.params, &[])?;
            describe_zones(svc, &call.caller.region)
        }
        "DescribeImages" => describe_images(svc, call).await,
        "ModifyImageAttribute" => {
            let p = Params::new(
                &call.params,
                &[
                    "ImageId",
                    "ImageName",
                    "ImageDescription",
                    "ImageFamily",
                    "ImageDeprecated",
                ],
            )?;
            let id = p.str_req("ImageId")?;
            let name = p.str_opt("ImageName")?;
            let desc = p.str_opt("ImageDescription")?;
            svc.images()
                .modify_image(
                    &call.caller,
                    id,
                    name,
                    desc,
                    p.str_opt("ImageFamily")?,
                    p.bool_opt("ImageDeprecated")?,
                )
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        "DeleteImages" => {
            let p = Params::new(&call.params, &["ImageIds", "DeleteBindedSnap", "DryRun"])?;
            let ids = p.str_list("ImageIds")?.ok_or_else(|| missing("ImageIds"))?;
            if ids.is_empty() {
                return Err(missing("ImageIds"));
            }
            check_count(svc, "ImageIds", ids.len())?;
            let delete_snapshots = p.bool_opt("DeleteBindedSnap")?.unwrap_or(false);
            let dry_run = p.bool_opt("DryRun")?.unwrap_or(false);
            svc.images()
                .delete_images(
                    &call.caller,
                    &DeleteRequest {
                        ids,
                        dry_run,
                        delete_snapshots,
                    },
                )
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        "ModifyImageSharePermission" => {
            let p = Params::new(&call.params, &["ImageId", "AccountIds", "Permission"])?;
            let id = p.str_req("ImageId")?;
            let accounts = p
                .str_list("AccountIds")?
                .ok_or_else(|| missing("AccountIds"))?;
            if accounts.is_empty() {
                return Err(missing("AccountIds"));
            }
            check_count(svc, "AccountIds", accounts.len())?;
            for acc in &accounts {
                if acc.is_empty() || acc.len() > 20 || !acc.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::new(
                        "InvalidParameterValue.InvalidAppIdFormat",
                        format!("{acc:?} is not an account id"),
                    ));
                }
            }
            let change = match p.str_req("Permission")? {
                "SHARE" => ShareChange::Share,
                "CANCEL" => ShareChange::Cancel,
                other => {
                    return Err(ApiError::new(
                        "InvalidParameterValue",
                        format!("Permission {other:?} must be SHARE or CANCEL"),
                    ))
                }
            };
            svc.images()
                .change_shares(&call.caller, id, &accounts, change)
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        "DescribeImageSharePermission" => {
            let p = Params::new(&call.params, &["ImageId"])?;
            let id = p.str_req("ImageId")?;
            let shares = svc.images().shares(&call.caller, id).await.map_err(map)?;
            let set: Vec<Value> = shares
                .iter()
                .map(|s| json!({ "CreatedTime": ikon_service::ids::iso8601(s.created_at), "AccountId": s.account_id }))
                .collect();
            Ok(json!({ "SharePermissionSet": set }))
        }
        "DescribeImageQuota" => {
            Params::new(&call.params, &[])?;
            let (total, _) = svc.images().image_quota(&call.caller).await.map_err(map)?;
            Ok(json!({ "ImageNumQuota": total }))
        }
        "DescribeImportImageOs" => super::import::describe_import_image_os(svc, call),
        "ImportImage" => super::import::import_image(svc, call).await,
        "DescribeImageFromFamily" => {
            let p = Params::new(&call.params, &["ImageFamily"])?;
            let family = p.str_opt("ImageFamily")?.unwrap_or("");
            let img = svc
                .images()
                .image_from_family(&call.caller, family)
                .await
                .map_err(map)?;
            Ok(json!({ "Image": img.as_ref().map(views::image) }))
        }
        a if super::transfer::ACTIONS.contains(&a) => super::transfer::dispatch(svc, call).await,
        _ => Err(ApiError::new(
            "InvalidAction",
            format!("action {a} is not supported by this service"),
        )),
    }
}

/// Every action this dialect serves (the authorisation matrix test walks this list, so a
/// new action is covered without writing a test).
pub fn all() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = KNOWN.to_vec();
    v.extend_from_slice(super::instances::ACTIONS);
    v.extend_from_slice(super::market::ACTIONS);
    v.extend_from_slice(super::transfer::ACTIONS);
    v
}

/// Actions this dialect serves.
const KNOWN: &[&str] = &[
    "DescribeRegions",
    "DescribeZones",
    "DescribeImages",
    "ModifyImageAttribute",
    "DeleteImages",
    "ModifyImageSharePermission",
    "DescribeImageSharePermission",
    "DescribeImageQuota",
    "DescribeImportImageOs",
    "DescribeImageFromFamily",
    "ImportImage",
];

fn describe_regions(svc: &Service) -> Value {
    let set: Vec<Value> = svc
        .config()
        .regions
        .iter()
        .map(|r| json!({ "Region": r.name, "RegionName": r.display_name, "RegionState": r.state }))
        .collect();
    json!({ "TotalCount": set.len(), "RegionSet": set })
}

fn describe_zones(svc: &Service, region: &str) -> Result<Value, ApiError> {
    let r = svc.config().region(region).ok_or_else(|| {
        ApiError::new(
            "UnsupportedRegion",
            format!("region {region} is not served here"),
        )
    })?;
    let set: Vec<Value> = r
        .zones
        .iter()
        .map(|z| json!({ "Zone": z.name, "ZoneName": z.display_name, "ZoneId": z.zone_id, "ZoneState": z.state }))
        .collect();
    Ok(json!({ "TotalCount": set.len(), "ZoneSet": set }))
}

fn intersect(cur: Option<Vec<String>>, new: Vec<String>) -> Option<Vec<String>> {
    Some(match cur {
        None => new,
        Some(c) => c.into_iter().filter(|x| new.contains(x)).collect(),
    })
}

async fn describe_images(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &["ImageIds", "Filters", "Offset", "Limit", "InstanceType"],
    )?;
    let ids = p.str_list("ImageIds")?;
    let filters = p.filters("Filters")?;
    if ids.is_some() && filters.is_some() {
        return Err(ApiError::new(
            "InvalidParameter.InvalidParameterCoexistImageIdsFilters",
            "ImageIds and Filters cannot be used together",
        ));
    }
    let offset = p.u64_opt("Offset")?.unwrap_or(0);
    let limit = p.u64_opt("Limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            format!("Limit must be at most {MAX_LIMIT}"),
        ));
    }
    if let Some(t) = p.str_opt("InstanceType")? {
        if t.is_empty() || t.len() > 64 {
            return Err(ApiError::new(
                "InvalidInstanceType.Malformed",
                format!("{t:?} is not an instance type"),
            ));
        }
    }
    let mut req = ListImages {
        offset,
        limit,
        ..ListImages::default()
    };
    if let Some(ids) = ids {
        check_count(svc, "ImageIds", ids.len())?;
        req.ids = Some(ids);
    }
    let filters = filters.unwrap_or_default();
    if filters.len() > MAX_FILTERS {
        return Err(ApiError::new(
            "InvalidFilterValue.LimitExceeded",
            format!("at most {MAX_FILTERS} filters"),
        ));
    }
    for (name, values) in filters {
        if values.len() > MAX_FILTER_VALUES {
            return Err(ApiError::new(
                "InvalidFilterValue.LimitExceeded",
                format!("filter {name} takes at most {MAX_FILTER_VALUES} values"),
            ));
        }
        match name.as_str() {
            "image-id" => req.ids = intersect(req.ids.take(), values),
            "image-type" => {
                let mut cats = Vec::new();
                for v in &values {
                    cats.push(match v.as_str() {
                        "PRIVATE_IMAGE" => Visibility::Private,
                        "SHARED_IMAGE" => Visibility::Shared,
                        "PUBLIC_IMAGE" => Visibility::Public,
                        "MARKET_IMAGE" => Visibility::Market,
                        other => {
                            return Err(ApiError::new(
                                "InvalidParameterValue",
                                format!("image-type {other:?}: expected PRIVATE_IMAGE, SHARED_IMAGE or PUBLIC_IMAGE"),
                            ))
                        }
                    });
                }
                req.categories = Some(match req.categories.take() {
                    None => cats,
                    Some(c) => c.into_iter().filter(|x| cats.contains(x)).collect(),
                });
            }
            "image-name" => req.names.extend(values),
            "platform" => req.platforms.extend(values),
            "tag-key" => req.tag_keys.extend(values),
            "tag-value" => req.tag_values.extend(values),
            // Ikon has no dedicated clusters or CDC caches: such filters match nothing.
            "dedicated-cluster-id" | "cdc-cache-status" => req.categories = Some(Vec::new()),
            other => {
                if let Some(key) = other.strip_prefix("tag:") {
                    if key.is_empty() {
                        return Err(ApiError::new("InvalidFilter", "tag: filters need a key"));
                    }
                    req.tags.push((key.to_string(), values));
                } else {
                    return Err(ApiError::new(
                        "InvalidFilter",
                        format!("filter {other:?} is not supported"),
                    ));
                }
            }
        }
    }
    let listing = svc
        .images()
        .list_images(&call.caller, &req)
        .await
        .map_err(|e| errors::map("DescribeImages", e))?;
    let set: Vec<Value> = listing.images.iter().map(views::image).collect();
    Ok(json!({ "ImageSet": set, "TotalCount": listing.total }))
}
