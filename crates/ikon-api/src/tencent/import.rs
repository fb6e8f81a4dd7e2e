//! ImportImage and DescribeImportImageOs (reference §2.6–2.7), and the upload endpoint the
//! `ikon image import FILE` command sends a local file to: `PUT /ikon/upload`, signed with
//! TC3-HMAC-SHA256 like every call but with `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` (the
//! body is streamed to the server's spool, never held in memory), answering
//! `{"Response": {"UploadId": "upl-…", "Size": N, "RequestId"}}`; the file is then imported
//! with `ImageUrl = upload://upl-…`. Only translation here: the rules are the service's.

use super::params::{missing, Params};
use super::{envelope, errors, header_str, ApiError, Call};
use crate::core::RequestId;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use futures::StreamExt;
use ikon_service::{Caller, ImportRequest, Service};
use serde_json::{json, Value};

/// ImportImage.
pub async fn import_image(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    let p = Params::new(
        &call.params,
        &[
            "Architecture",
            "OsType",
            "OsVersion",
            "ImageUrl",
            "ImageName",
            "ImageDescription",
            "DryRun",
            "Force",
            "TagSpecification",
            "LicenseType",
            "BootMode",
            "ImageFamily",
            "ImportImageDataDiskList",
        ],
    )?;
    let name = p.str_req("ImageName")?;
    let description = p.str_opt("ImageDescription")?.unwrap_or("");
    // ImportImageDataDiskList: [{ImageUrl}] — whether data disks are allowed (and how many)
    // is the service's rule (the Tencent preset imports system disks only).
    let mut data_disk_urls = Vec::new();
    if let Some(disks) = p.get("ImportImageDataDiskList") {
        let arr = disks.as_array().ok_or_else(|| {
            ApiError::new("InvalidParameter", "ImportImageDataDiskList must be a list")
        })?;
        for d in arr {
            let url = d
                .get("ImageUrl")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| {
                    ApiError::new(
                        "MissingParameter",
                        "ImportImageDataDiskList.N.ImageUrl is required",
                    )
                })?;
            data_disk_urls.push(url.to_string());
        }
    }
    let req = ImportRequest {
        data_disk_urls,
        name: name.to_string(),
        description: description.to_string(),
        url: p.str_req("ImageUrl")?.to_string(),
        os_type: p.str_req("OsType")?.to_string(),
        os_version: p.str_req("OsVersion")?.to_string(),
        architecture: p.str_req("Architecture")?.to_string(),
        force: p.bool_opt("Force")?.unwrap_or(false),
        license_type: p.str_opt("LicenseType")?.map(str::to_string),
        boot_mode: p.str_opt("BootMode")?.map(str::to_string),
        family: p.str_opt("ImageFamily")?.unwrap_or("").to_string(),
        tags: tags(p.get("TagSpecification"))?,
        dry_run: p.bool_opt("DryRun")?.unwrap_or(false),
    };
    let id = svc
        .transfers()
        .import_image(&call.caller, &req)
        .await
        .map_err(|e| errors::map("ImportImage", e))?;
    Ok(match id {
        Some(id) => json!({ "ImageId": id }),
        None => json!({}),
    })
}

/// `TagSpecification`: `[{ResourceType: "image", Tags: [{Key, Value}]}]`.
fn tags(v: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    let bad = |m: &str| ApiError::new("InvalidParameter", format!("TagSpecification: {m}"));
    let Some(v) = v else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for spec in v.as_array().ok_or_else(|| bad("must be a list"))? {
        let rt = spec["ResourceType"]
            .as_str()
            .ok_or_else(|| missing("TagSpecification.ResourceType"))?;
        if rt != "image" {
            return Err(ApiError::new(
                "InvalidParameterValue",
                format!("TagSpecification.ResourceType {rt:?} must be \"image\""),
            ));
        }
        for t in spec["Tags"]
            .as_array()
            .ok_or_else(|| bad("Tags must be a list"))?
        {
            let k = t["Key"].as_str().ok_or_else(|| bad("Tags need a Key"))?;
            let val = t["Value"].as_str().unwrap_or("");
            if k.is_empty() || k.len() > 127 || val.len() > 255 {
                return Err(ApiError::new(
                    "InvalidParameterValue",
                    "tag keys are 1 to 127 and values at most 255 characters",
                ));
            }
            out.push((k.to_string(), val.to_string()));
        }
    }
    if out.len() > 50 {
        return Err(ApiError::new(
            "InvalidParameterValue.LimitExceeded",
            "at most 50 tags",
        ));
    }
    Ok(out)
}

/// DescribeImportImageOs: the service's list, derived from the import rules.
pub fn describe_import_image_os(svc: &Service, call: &Call) -> Result<Value, ApiError> {
    Params::new(&call.params, &[])?;
    let os = svc.transfers().import_os();
    let names = |fam: &str| -> Vec<String> {
        os.iter()
            .filter(|o| o.family == fam)
            .map(|o| o.os_name.clone())
            .collect()
    };
    let set: Vec<Value> = os
        .iter()
        .map(|o| json!({ "OsName": o.os_name, "OsVersions": o.versions, "Architecture": o.architectures }))
        .collect();
    Ok(json!({
        "ImportImageOsListSupported": { "Windows": names("Windows"), "Linux": names("Linux") },
        "ImportImageOsVersionSet": set,
    }))
}

/// `PUT /ikon/upload`: streams an authenticated upload into the spool.
pub async fn upload(
    State(st): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = receive(&st, &method, &uri, &headers, body).await;
    let outcome = super::outcome("UploadImageFile".into(), &result);
    let mut resp = envelope(&request_id.0, result);
    resp.extensions_mut().insert(outcome);
    resp
}

async fn receive(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Value, ApiError> {
    if *method != Method::PUT && *method != Method::POST {
        return Err(ApiError::new(
            "UnsupportedProtocol",
            "uploads use PUT (or POST) with the file as the body",
        ));
    }
    if header_str(headers, "x-tc-content-sha256")
        .as_deref()
        .map(str::trim)
        != Some("UNSIGNED-PAYLOAD")
    {
        return Err(ApiError::new(
            "AuthFailure.InvalidAuthorization",
            "uploads are signed with X-TC-Content-SHA256: UNSIGNED-PAYLOAD",
        ));
    }
    let (account_id, is_admin) = super::authenticate(st, method, uri, headers, b"").await?;
    let caller = Caller {
        account_id,
        is_admin,
        region: header_str(headers, "x-tc-region").unwrap_or_default(),
    };
    let stream = body.into_data_stream().boxed();
    let up = st
        .svc
        .transfers()
        .receive_upload(&caller, stream)
        .await
        .map_err(|e| errors::map("UploadImageFile", e))?;
    Ok(json!({ "UploadId": up.upload_id, "Size": up.size }))
}
