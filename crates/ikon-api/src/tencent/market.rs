//! Prices and the marketplace: InquiryPriceRunInstances (the image part of the price, in
//! the SDK's `Price`/`ItemPrice` shape) and Ikon's own marketplace actions for providers,
//! callable with any Tencent client's generic call (`CommonClient.call_json`):
//! SubmitMarketImage {ImageId, PricePerHour} → {ListingId, State},
//! WithdrawMarketImage {ListingId}, DescribeMarketListings → {ListingSet} (each with the
//! hygiene scan's `Findings` it was submitted with), and DescribeImageScan {ImageId} →
//! {ImageId, State, Findings, Scanned, Problems, FailureReason, UpdatedTime} (owner and
//! administrator only).

use super::params::{missing, Params};
use super::{ApiError, Call};
use ikon_service::pricing::units;
use ikon_service::{ids, Listing, Service};
use serde_json::{json, Value};

/// Actions served here.
pub const ACTIONS: &[&str] = &[
    "InquiryPriceRunInstances",
    "SubmitMarketImage",
    "WithdrawMarketImage",
    "DescribeMarketListings",
    "DescribeImageScan",
];

type Map<'a> = &'a (dyn Fn(ikon_service::Error) -> ApiError + Sync);

/// A finding in Ikon's own response shape.
fn finding(f: &ikon_service::Finding) -> Value {
    json!({
        "Id": f.id,
        "Severity": f.severity.name(),
        "Path": f.path,
        "Message": f.message,
    })
}

fn listing(l: &Listing) -> Value {
    let findings: Vec<ikon_service::Finding> =
        serde_json::from_str(&l.findings).unwrap_or_default();
    json!({
        "Findings": findings.iter().map(finding).collect::<Vec<_>>(),
        "ListingId": l.listing_id,
        "SourceImageId": l.source_image_id,
        "ImageId": l.image_id,
        "Provider": l.provider,
        "Region": l.region,
        "PricePerHour": units(l.price_micros),
        "State": l.state,
        "Reason": l.reason,
        "CreatedTime": ids::iso8601(l.created_at),
    })
}

fn price_f64(p: &Params<'_>, name: &str) -> Result<f64, ApiError> {
    match p.get(name) {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| ApiError::new("InvalidParameter", format!("{name} must be a number"))),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ApiError::new("InvalidParameter", format!("{name} must be a number"))),
        Some(_) => Err(ApiError::new(
            "InvalidParameter",
            format!("{name} must be a number"),
        )),
        None => Err(missing(name)),
    }
}

/// Runs one of [`ACTIONS`].
pub async fn dispatch(svc: &Service, call: &Call, map: Map<'_>) -> Result<Value, ApiError> {
    match call.action.as_str() {
        "InquiryPriceRunInstances" => {
            let p = Params::new(
                &call.params,
                &[
                    "Placement",
                    "ImageId",
                    "InstanceChargeType",
                    "InstanceChargePrepaid",
                    "InstanceType",
                    "SystemDisk",
                    "DataDisks",
                    "VirtualPrivateCloud",
                    "InternetAccessible",
                    "InstanceCount",
                    "InstanceName",
                    "LoginSettings",
                    "SecurityGroupIds",
                    "EnhancedService",
                    "ClientToken",
                    "HostName",
                    "TagSpecification",
                    "InstanceMarketOptions",
                    "Metadata",
                    "HpcClusterId",
                    "CpuTopology",
                    "LaunchTemplate",
                    "NetworkInterfaces",
                ],
            )?;
            let image = p.str_req("ImageId")?;
            let placement = p.get("Placement").ok_or_else(|| missing("Placement"))?;
            let zone = placement
                .get("Zone")
                .and_then(Value::as_str)
                .ok_or_else(|| missing("Placement.Zone"))?;
            let count = p.u64_opt("InstanceCount")?.unwrap_or(1);
            let count = u32::try_from(count).map_err(|_| {
                ApiError::new("InvalidParameterValue", "InstanceCount is out of range")
            })?;
            let (_, total) = svc
                .market()
                .inquiry_price(&call.caller, image, zone, count)
                .await
                .map_err(map)?;
            let unit = units(total);
            Ok(json!({
                "Price": {
                    "InstancePrice": {
                        "UnitPrice": unit,
                        "UnitPriceDiscount": unit,
                        "ChargeUnit": "HOUR",
                        "Discount": 100,
                    },
                    "BandwidthPrice": {
                        "UnitPrice": 0.0,
                        "UnitPriceDiscount": 0.0,
                        "ChargeUnit": "HOUR",
                        "Discount": 100,
                    },
                }
            }))
        }
        "SubmitMarketImage" => {
            let p = Params::new(&call.params, &["ImageId", "PricePerHour"])?;
            let image = p.str_req("ImageId")?;
            let price = price_f64(&p, "PricePerHour")?;
            let l = svc
                .market()
                .submit_listing(&call.caller, image, price)
                .await
                .map_err(map)?;
            Ok(json!({ "ListingId": l.listing_id, "State": l.state }))
        }
        "WithdrawMarketImage" => {
            let p = Params::new(&call.params, &["ListingId"])?;
            let id = p.str_req("ListingId")?;
            svc.market()
                .withdraw_listing(Some(&call.caller), id)
                .await
                .map_err(map)?;
            Ok(json!({}))
        }
        "DescribeMarketListings" => {
            Params::new(&call.params, &[])?;
            let list = svc
                .market()
                .listings(Some(&call.caller.account_id), None)
                .await
                .map_err(map)?;
            let set: Vec<Value> = list.iter().map(listing).collect();
            Ok(json!({ "TotalCount": set.len(), "ListingSet": set }))
        }
        "DescribeImageScan" => {
            let p = Params::new(&call.params, &["ImageId"])?;
            let image = p.str_req("ImageId")?;
            let s = svc
                .images()
                .image_scan(&call.caller, image)
                .await
                .map_err(map)?;
            Ok(json!({
                "ImageId": s.image_id,
                "State": s.state,
                "Findings": s.findings.iter().map(finding).collect::<Vec<_>>(),
                "Scanned": s.scanned,
                "Problems": s.problems,
                "FailureReason": s.error,
                "UpdatedTime": if s.updated_at == 0 { String::new() } else { ids::iso8601(s.updated_at) },
            }))
        }
        other => Err(ApiError::new(
            "InvalidAction",
            format!("action {other} is not supported"),
        )),
    }
}
