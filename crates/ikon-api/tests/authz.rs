//! The authorisation matrix: every action of both dialects (walked from
//! `ikon_api::tencent::actions()` and `ikon_api::alibaba::actions()`, so a new action
//! without a row here fails the suite, as does a row for an action that is gone) × the
//! owner, another account, the share recipient, the administrator, and five principals
//! authentication must refuse (unsigned, bad signature, stale timestamp, disabled key,
//! disabled account), each cell on a fresh copy of one world with a resource of every kind
//! (see `authz_support::world`). The expected class of each signed cell is in the tables
//! below (an action may have several rows: one per resource it can name, dry runs); the
//! refused ones must get their dialect's authentication code (and the disabled account,
//! enabled again, the owner's outcome: nothing was taken from it). No answer to anyone but
//! the owner may leak the owner's private resources: their ids, their texts, or their
//! existence (another account's private resource is always "not found", never
//! "forbidden"). The listings are then asked once more by everyone in turn on one copy
//! (warm caches), and by the recipient after the owner cancelled its share. The suite
//! prints `cells N, leaks L` and every failing cell at once.
//!
//! The administrator is a platform operator, not a super-tenant: through the cloud APIs it
//! reaches tenants' private resources in exactly two places, both explicit in the tables —
//! DescribeImageScan (any image's findings, in the region addressed) and WithdrawMarketImage (any
//! listing); besides, it alone may change platform and marketplace images.

mod alibaba_support;
mod authz_support;

use authz_support::world::World;
use authz_support::{run_spec, Dialect, Outcome, Report, Row, Spec};
use std::time::Instant;

const OK: Outcome = Outcome::Ok;
const NF: Outcome = Outcome::NotFound;
const DENY: Outcome = Outcome::Denied;
const DRY: Outcome = Outcome::Fails("DryRunOperation");

// Outcomes for [owner, other account, share recipient, administrator].
/// Anyone signed in succeeds: nothing private is named, or a listing that must show each
/// caller only what it may see (what the leak scan checks).
const ALL_OK: [Outcome; 4] = [OK, OK, OK, OK];
/// The owner only; to everyone else the resource does not exist.
const OWNER: [Outcome; 4] = [OK, NF, NF, NF];
/// A dry run of the owner's passes (`DryRunOperation`); to everyone else, not found.
const OWNER_DRY: [Outcome; 4] = [DRY, NF, NF, NF];
/// The owner, and the recipient using the image shared with it.
const SHARED_USE: [Outcome; 4] = [OK, NF, OK, NF];
/// The owner; the recipient sees the shared image but may not do this with it.
const SHARED_DENY: [Outcome; 4] = [OK, NF, DENY, NF];
/// The owner and the administrator (its operator's view); nobody else.
const OWNER_ADMIN: [Outcome; 4] = [OK, NF, NF, OK];
/// Platform and marketplace images, which every account sees: changed by the
/// administrator only (images.rs owned_image).
const ADMIN_ONLY: [Outcome; 4] = [DENY, DENY, DENY, OK];
/// Refused to everyone who sees the image, administrator included.
const NOBODY: [Outcome; 4] = [DENY, DENY, DENY, DENY];

/// Tencent CVM 2017-03-12. Templates are the JSON body; `{name}` is a resource of the
/// owner's (`image` unshared, `shared` shared with the recipient, `instance`, `sys_disk`,
/// `data_disk`, `snap`, `listing` pending, `approved`, `task`, `upload`, `copy` in
/// ap-beijing, `family` the unshared image's family), `{public}` the platform image,
/// `{market}` the approved marketplace image, `{my_instance}` the caller's own instance,
/// or an account id.
#[rustfmt::skip]
const TENCENT: &[Row] = &[
    // Nothing private named.
    ("DescribeRegions", "{}", ALL_OK),
    ("DescribeZones", "{}", ALL_OK),
    ("DescribeImageQuota", "{}", ALL_OK),
    ("DescribeImportImageOs", "{}", ALL_OK),
    ("ImportImage", r#"{"ImageUrl": "s3://imports/disk.raw", "ImageName": "imported", "OsType": "CentOS", "OsVersion": "7", "Architecture": "x86_64"}"#, ALL_OK),
    ("InquiryPriceRunInstances", r#"{"ImageId": "{market}", "Placement": {"Zone": "ap-guangzhou-3"}}"#, ALL_OK),
    ("RunInstances", r#"{"ImageId": "{market}", "Placement": {"Zone": "ap-guangzhou-3"}}"#, ALL_OK),
    // Listings: each caller sees its own.
    ("DescribeImages", "{}", ALL_OK),
    ("DescribeImages", r#"{"ImageIds": ["{image}", "{shared}", "{public}", "{market}"]}"#, ALL_OK),
    ("DescribeImages", r#"{"Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE", "SHARED_IMAGE"]}]}"#, ALL_OK),
    ("DescribeImages", r#"{"Filters": [{"Name": "image-name", "Values": ["private-image", "shared-image"]}]}"#, ALL_OK),
    ("DescribeImageFromFamily", r#"{"ImageFamily": "{family}"}"#, ALL_OK),
    ("DescribeInstances", "{}", ALL_OK),
    ("DescribeInstances", r#"{"InstanceIds": ["{instance}"]}"#, ALL_OK),
    ("DescribeInstances", r#"{"Filters": [{"Name": "image-id", "Values": ["{image}"]}]}"#, ALL_OK),
    ("DescribeSnapshots", "{}", ALL_OK),
    ("DescribeSnapshots", r#"{"SnapshotIds": ["{snap}"]}"#, ALL_OK),
    ("DescribeSnapshots", r#"{"Filters": [{"Name": "disk-id", "Values": ["{sys_disk}"]}]}"#, ALL_OK),
    ("DescribeMarketListings", "{}", ALL_OK),
    // Images.
    ("ModifyImageAttribute", r#"{"ImageId": "{image}", "ImageName": "renamed"}"#, OWNER),
    ("ModifyImageAttribute", r#"{"ImageId": "{shared}", "ImageDescription": "changed"}"#, SHARED_DENY),
    ("ModifyImageAttribute", r#"{"ImageId": "{public}", "ImageDescription": "changed"}"#, ADMIN_ONLY),
    ("ModifyImageAttribute", r#"{"ImageId": "{market}", "ImageDescription": "changed"}"#, ADMIN_ONLY),
    ("DeleteImages", r#"{"ImageIds": ["{image}"]}"#, OWNER),
    ("DeleteImages", r#"{"ImageIds": ["{image}"], "DryRun": true}"#, OWNER),
    // A shared image is refused even to its owner until the sharing is cancelled.
    ("DeleteImages", r#"{"ImageIds": ["{shared}"]}"#, [Outcome::Fails("InvalidImageId.InShared"), NF, DENY, NF]),
    ("DeleteImages", r#"{"ImageIds": ["{public}"]}"#, ADMIN_ONLY),
    ("ModifyImageSharePermission", r#"{"ImageId": "{image}", "AccountIds": ["{other_id}"], "Permission": "SHARE"}"#, OWNER),
    ("ModifyImageSharePermission", r#"{"ImageId": "{shared}", "AccountIds": ["{recipient_id}"], "Permission": "CANCEL"}"#, SHARED_DENY),
    ("ModifyImageSharePermission", r#"{"ImageId": "{public}", "AccountIds": ["{other_id}"], "Permission": "SHARE"}"#, NOBODY),
    ("DescribeImageSharePermission", r#"{"ImageId": "{image}"}"#, OWNER),
    ("DescribeImageSharePermission", r#"{"ImageId": "{shared}"}"#, SHARED_DENY),
    ("ImportImage", r#"{"ImageUrl": "upload://{upload}", "ImageName": "imported", "OsType": "CentOS", "OsVersion": "7", "Architecture": "x86_64"}"#, OWNER),
    ("ImportImage", r#"{"ImageUrl": "upload://{upload}", "ImageName": "imported", "OsType": "CentOS", "OsVersion": "7", "Architecture": "x86_64", "DryRun": true}"#, OWNER),
    ("SyncImages", r#"{"ImageIds": ["{image}"], "DestinationRegions": ["ap-shanghai"]}"#, OWNER),
    ("SyncImages", r#"{"ImageIds": ["{image}"], "DestinationRegions": ["ap-shanghai"], "DryRun": true}"#, OWNER),
    ("SyncImages", r#"{"ImageIds": ["{shared}"], "DestinationRegions": ["ap-shanghai"]}"#, SHARED_DENY),
    ("ExportImages", r#"{"BucketName": "bkt", "ImageIds": ["{image}"]}"#, OWNER),
    ("ExportImages", r#"{"BucketName": "bkt", "ImageIds": ["{image}"], "DryRun": true}"#, OWNER),
    ("ExportImages", r#"{"BucketName": "bkt", "ImageIds": ["{shared}"]}"#, SHARED_DENY),
    ("ExportImages", r#"{"BucketName": "bkt", "ImageIds": ["{public}"]}"#, NOBODY),
    // The marketplace: a listing is its provider's; the administrator reviews them all.
    ("SubmitMarketImage", r#"{"ImageId": "{shared}", "PricePerHour": 0.5}"#, SHARED_DENY),
    ("SubmitMarketImage", r#"{"ImageId": "{image}", "PricePerHour": 0.5}"#, [Outcome::Fails("ResourceInUse"), NF, NF, NF]),
    ("SubmitMarketImage", r#"{"ImageId": "{market}", "PricePerHour": 0.5}"#, NOBODY),
    ("WithdrawMarketImage", r#"{"ListingId": "{listing}"}"#, OWNER_ADMIN),
    ("WithdrawMarketImage", r#"{"ListingId": "{approved}"}"#, OWNER_ADMIN),
    // Findings: the image's owner and the administrator (facts.rs image_scan).
    ("DescribeImageScan", r#"{"ImageId": "{image}"}"#, OWNER_ADMIN),
    ("DescribeImageScan", r#"{"ImageId": "{shared}"}"#, [OK, NF, DENY, OK]),
    ("DescribeImageScan", r#"{"ImageId": "{public}"}"#, ADMIN_ONLY),
    ("DescribeImageScan", r#"{"ImageId": "{market}"}"#, [OK, DENY, DENY, OK]),
    // The copy is in ap-beijing: not found in ap-guangzhou, by its owner and by the
    // administrator alike (every action is addressed to one region).
    ("DescribeImageScan", r#"{"ImageId": "{copy}"}"#, [NF, NF, NF, NF]),
    // Instances.
    ("InquiryPriceRunInstances", r#"{"ImageId": "{image}", "Placement": {"Zone": "ap-guangzhou-3"}}"#, OWNER),
    ("InquiryPriceRunInstances", r#"{"ImageId": "{shared}", "Placement": {"Zone": "ap-guangzhou-3"}}"#, SHARED_USE),
    ("RunInstances", r#"{"ImageId": "{image}", "Placement": {"Zone": "ap-guangzhou-3"}}"#, OWNER),
    ("RunInstances", r#"{"ImageId": "{image}", "Placement": {"Zone": "ap-guangzhou-3"}, "DryRun": true}"#, OWNER),
    ("RunInstances", r#"{"ImageId": "{shared}", "Placement": {"Zone": "ap-guangzhou-3"}}"#, SHARED_USE),
    ("RunInstances", r#"{"ImageId": "{public}", "Placement": {"Zone": "ap-guangzhou-3"}, "DataDisks": [{"DiskSize": 50, "SnapshotId": "{snap}"}]}"#, OWNER),
    ("TerminateInstances", r#"{"InstanceIds": ["{instance}"]}"#, OWNER),
    ("ResetInstance", r#"{"InstanceId": "{instance}", "ImageId": "{public}"}"#, OWNER),
    // The caller's own instance re-installed with the owner's images.
    ("ResetInstance", r#"{"InstanceId": "{my_instance}", "ImageId": "{image}"}"#, OWNER),
    ("ResetInstance", r#"{"InstanceId": "{my_instance}", "ImageId": "{shared}"}"#, SHARED_USE),
    ("CreateImage", r#"{"ImageName": "made", "InstanceId": "{instance}"}"#, OWNER),
    // The caller's own instance with the owner's data disk.
    ("CreateImage", r#"{"ImageName": "made", "InstanceId": "{my_instance}", "DataDiskIds": ["{data_disk}"]}"#, OWNER),
    ("CreateImage", r#"{"ImageName": "made", "SnapshotIds": ["{snap}"]}"#, OWNER),
    ("CreateImage", r#"{"ImageName": "made", "SnapshotIds": ["{snap}"], "DryRun": true}"#, OWNER),
    ("CreateSnapshot", r#"{"DiskId": "{sys_disk}"}"#, OWNER),
    ("CreateSnapshot", r#"{"DiskId": "{data_disk}"}"#, OWNER),
    ("DeleteSnapshots", r#"{"SnapshotIds": ["{snap}"]}"#, OWNER),
];

/// Tencent's authentication codes for: unsigned, bad signature, stale, disabled key,
/// disabled account.
const TENCENT_AUTH: [&str; 5] = [
    "AuthFailure.InvalidAuthorization",
    "AuthFailure.SignatureFailure",
    "AuthFailure.SignatureExpire",
    "AuthFailure.SecretIdNotFound",
    "AuthFailure.SecretIdNotFound",
];

/// Tencent's refusals on a visible image (tencent/errors.rs: SharedImageReadOnly, NotOwner).
const TENCENT_DENIED: &[&str] = &[
    "UnauthorizedOperation.ImageNotBelongToAccount",
    "UnsupportedOperation.SharedImageModifyUnsupported",
    "UnsupportedOperation.SharedImageExportUnsupported",
    "UnsupportedOperation.PublicImageExportUnsupported",
    "InvalidParameterValue.InvalidImageId",
];

/// Alibaba ECS 2014-05-26. Templates are the parameters (string values; `"RegionId": null`
/// sends none, as the Tea SDK does for actions that act in their resource's region), with
/// the placeholders of [`TENCENT`], ids in Alibaba's form (`m-`, `i-`, `d-`, `s-`, `t-`).
#[rustfmt::skip]
const ALIBABA: &[Row] = &[
    // Nothing private named.
    ("DescribeRegions", "{}", ALL_OK),
    // Alibaba's ImportImage reads an object of a bucket: nothing of anyone's is named.
    ("ImportImage", r#"{"DiskDeviceMapping.1.OSSBucket": "imports", "DiskDeviceMapping.1.OSSObject": "disk.raw", "ImageName": "imported"}"#, ALL_OK),
    ("RunInstances", r#"{"ImageId": "{market}", "InstanceType": "S5.SMALL1"}"#, ALL_OK),
    // Listings: each caller sees its own.
    ("DescribeImages", "{}", ALL_OK),
    ("DescribeImages", r#"{"ImageId": "{image},{shared},{public},{market}"}"#, ALL_OK),
    ("DescribeImages", r#"{"ImageOwnerAlias": "others"}"#, ALL_OK),
    ("DescribeImages", r#"{"ImageOwnerAlias": "marketplace"}"#, ALL_OK),
    ("DescribeImages", r#"{"ImageName": "private-image", "Status": "All"}"#, ALL_OK),
    ("DescribeImages", r#"{"ImageFamily": "{family}"}"#, ALL_OK),
    ("DescribeImages", r#"{"RegionId": "ap-beijing", "Status": "Creating"}"#, ALL_OK),
    ("DescribeImageFromFamily", r#"{"ImageFamily": "{family}"}"#, ALL_OK),
    ("DescribeInstances", "{}", ALL_OK),
    ("DescribeInstances", r#"{"InstanceIds": "[\"{instance}\"]"}"#, ALL_OK),
    ("DescribeInstances", r#"{"ImageId": "{image}"}"#, ALL_OK),
    ("DescribeSnapshots", "{}", ALL_OK),
    ("DescribeSnapshots", r#"{"SnapshotIds": "[\"{snap}\"]"}"#, ALL_OK),
    ("DescribeSnapshots", r#"{"InstanceId": "{instance}"}"#, ALL_OK),
    ("DescribeSnapshots", r#"{"DiskId": "{sys_disk}"}"#, ALL_OK),
    ("DescribeDisks", "{}", ALL_OK),
    ("DescribeDisks", r#"{"DiskIds": "[\"{sys_disk}\",\"{data_disk}\"]"}"#, ALL_OK),
    ("DescribeDisks", r#"{"InstanceId": "{instance}"}"#, ALL_OK),
    ("DescribeTasks", "{}", ALL_OK),
    ("DescribeTasks", r#"{"TaskIds": "{task}"}"#, ALL_OK),
    ("DescribeTasks", r#"{"ResourceIds.1": "{image}"}"#, ALL_OK),
    // Images.
    ("ModifyImageAttribute", r#"{"ImageId": "{image}", "ImageName": "renamed"}"#, OWNER),
    ("ModifyImageAttribute", r#"{"ImageId": "{image}", "ImageName": "renamed", "DryRun": "true"}"#, OWNER_DRY),
    ("ModifyImageAttribute", r#"{"ImageId": "{shared}", "Description": "changed"}"#, SHARED_DENY),
    ("ModifyImageAttribute", r#"{"ImageId": "{public}", "Description": "changed"}"#, ADMIN_ONLY),
    ("ModifyImageAttribute", r#"{"ImageId": "{market}", "Description": "changed"}"#, ADMIN_ONLY),
    ("DeleteImage", r#"{"ImageId": "{image}"}"#, OWNER),
    ("DeleteImage", r#"{"ImageId": "{image}", "DryRun": "true"}"#, OWNER_DRY),
    ("DeleteImage", r#"{"ImageId": "{shared}"}"#, [Outcome::Fails("ImageUseShared"), NF, DENY, NF]),
    ("DeleteImage", r#"{"ImageId": "{public}"}"#, ADMIN_ONLY),
    ("ModifyImageSharePermission", r#"{"ImageId": "{image}", "AddAccount.1": "{other_id}"}"#, OWNER),
    ("ModifyImageSharePermission", r#"{"ImageId": "{image}", "AddAccount.1": "{other_id}", "DryRun": "true"}"#, OWNER_DRY),
    ("ModifyImageSharePermission", r#"{"ImageId": "{shared}", "RemoveAccount.1": "{recipient_id}"}"#, SHARED_DENY),
    ("ModifyImageSharePermission", r#"{"ImageId": "{shared}", "IsPublic": "false"}"#, SHARED_DENY),
    ("DescribeImageSharePermission", r#"{"ImageId": "{shared}"}"#, SHARED_DENY),
    ("DescribeImageSupportInstanceTypes", r#"{"ImageId": "{image}"}"#, OWNER),
    ("DescribeImageSupportInstanceTypes", r#"{"Filter.1.Key": "imageId", "Filter.1.Value": "{image}"}"#, OWNER),
    ("DescribeImageSupportInstanceTypes", r#"{"ImageId": "{shared}"}"#, SHARED_USE),
    ("ExportImage", r#"{"ImageId": "{image}", "OSSBucket": "bkt"}"#, OWNER),
    ("ExportImage", r#"{"ImageId": "{image}", "OSSBucket": "bkt", "DryRun": "true"}"#, OWNER_DRY),
    ("ExportImage", r#"{"ImageId": "{shared}", "OSSBucket": "bkt"}"#, SHARED_DENY),
    ("CopyImage", r#"{"ImageId": "{image}", "DestinationRegionId": "ap-shanghai"}"#, OWNER),
    ("CopyImage", r#"{"ImageId": "{image}", "DestinationRegionId": "ap-shanghai", "DryRun": "true"}"#, OWNER_DRY),
    ("CopyImage", r#"{"ImageId": "{shared}", "DestinationRegionId": "ap-shanghai"}"#, SHARED_DENY),
    ("CancelCopyImage", r#"{"ImageId": "{copy}", "RegionId": "ap-beijing"}"#, OWNER),
    ("CancelCopyImage", r#"{"ImageId": "{copy}", "RegionId": "ap-beijing", "DryRun": "true"}"#, OWNER_DRY),
    // The shared image is nobody's copy; to the recipient it is not its own: not found.
    // A dry run must answer as the call does.
    ("CancelCopyImage", r#"{"ImageId": "{shared}"}"#, [Outcome::Fails("ImageCreatedNotFromCopy"), NF, NF, NF]),
    ("CancelCopyImage", r#"{"ImageId": "{shared}", "DryRun": "true"}"#, [Outcome::Fails("ImageCreatedNotFromCopy"), NF, NF, NF]),
    // Findings: the image's owner and the administrator (facts.rs image_scan).
    ("DescribeImageScan", r#"{"ImageId": "{image}"}"#, OWNER_ADMIN),
    ("DescribeImageScan", r#"{"ImageId": "{image}", "DryRun": "true"}"#, [DRY, NF, NF, DRY]),
    ("DescribeImageScan", r#"{"ImageId": "{shared}"}"#, [OK, NF, DENY, OK]),
    ("DescribeImageScan", r#"{"ImageId": "{public}"}"#, ADMIN_ONLY),
    ("DescribeImageScan", r#"{"ImageId": "{copy}"}"#, [NF, NF, NF, NF]),
    // Tasks.
    ("DescribeTaskAttribute", r#"{"TaskId": "{task}"}"#, OWNER),
    ("CancelTask", r#"{"TaskId": "{task}"}"#, OWNER),
    ("CancelTask", r#"{"TaskId": "{task}", "DryRun": "true"}"#, OWNER_DRY),
    // Instances.
    ("RunInstances", r#"{"ImageId": "{image}", "InstanceType": "S5.SMALL1"}"#, OWNER),
    ("RunInstances", r#"{"ImageId": "{image}", "InstanceType": "S5.SMALL1", "DryRun": "true"}"#, OWNER_DRY),
    ("RunInstances", r#"{"ImageFamily": "{family}", "InstanceType": "S5.SMALL1"}"#, OWNER),
    ("RunInstances", r#"{"ImageId": "{shared}", "InstanceType": "S5.SMALL1"}"#, SHARED_USE),
    ("RunInstances", r#"{"ImageId": "{public}", "InstanceType": "S5.SMALL1", "DataDisk.1.SnapshotId": "{snap}"}"#, OWNER),
    ("DeleteInstance", r#"{"InstanceId": "{instance}"}"#, OWNER),
    ("DeleteInstance", r#"{"InstanceId": "{instance}", "RegionId": null}"#, OWNER),
    ("DeleteInstance", r#"{"InstanceId": "{instance}", "DryRun": "true"}"#, OWNER_DRY),
    ("DeleteInstances", r#"{"InstanceId.1": "{instance}"}"#, OWNER),
    ("ReplaceSystemDisk", r#"{"InstanceId": "{instance}", "ImageId": "{public}"}"#, OWNER),
    ("ReplaceSystemDisk", r#"{"InstanceId": "{instance}", "ImageId": "{public}", "RegionId": null}"#, OWNER),
    ("ReplaceSystemDisk", r#"{"InstanceId": "{my_instance}", "ImageId": "{image}"}"#, OWNER),
    ("ReplaceSystemDisk", r#"{"InstanceId": "{my_instance}", "ImageId": "{image}", "DryRun": "true"}"#, OWNER_DRY),
    ("ReplaceSystemDisk", r#"{"InstanceId": "{my_instance}", "ImageId": "{shared}"}"#, SHARED_USE),
    ("CreateImage", r#"{"InstanceId": "{instance}", "ImageName": "made"}"#, OWNER),
    ("CreateImage", r#"{"SnapshotId": "{snap}", "ImageName": "made"}"#, OWNER),
    ("CreateImage", r#"{"SnapshotId": "{snap}", "ImageName": "made", "DryRun": "true"}"#, OWNER_DRY),
    ("CreateImage", r#"{"DiskDeviceMapping.1.SnapshotId": "{snap}", "ImageName": "made"}"#, OWNER),
    ("CreateSnapshot", r#"{"DiskId": "{data_disk}"}"#, OWNER),
    ("CreateSnapshot", r#"{"DiskId": "{sys_disk}", "RegionId": null}"#, OWNER),
    ("CreateSnapshot", r#"{"DiskId": "{sys_disk}", "DryRun": "true"}"#, OWNER_DRY),
    ("DeleteSnapshot", r#"{"SnapshotId": "{snap}"}"#, OWNER),
    ("DeleteSnapshot", r#"{"SnapshotId": "{snap}", "RegionId": null}"#, OWNER),
    ("DeleteSnapshot", r#"{"SnapshotId": "{snap}", "DryRun": "true"}"#, OWNER_DRY),
];

/// Alibaba's authentication codes, in the order of [`TENCENT_AUTH`].
const ALIBABA_AUTH: [&str; 5] = [
    "MissingParameter",
    "SignatureDoesNotMatch",
    "InvalidTimeStamp.Expired",
    "Forbidden.AccessKeyDisabled",
    "Forbidden.AccessKeyDisabled",
];

/// Alibaba's refusal on a visible image (alibaba/errors.rs).
const ALIBABA_DENIED: &[&str] = &["OperationDenied"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_matrix() {
    let started = Instant::now();
    let world = World::build().await;
    let specs = [
        Spec {
            dialect: Dialect::Tencent,
            actions: ikon_api::tencent::actions(),
            rows: TENCENT,
            auth: TENCENT_AUTH,
            denied: TENCENT_DENIED,
        },
        Spec {
            dialect: Dialect::Alibaba,
            actions: ikon_api::alibaba::actions().to_vec(),
            rows: ALIBABA,
            auth: ALIBABA_AUTH,
            denied: ALIBABA_DENIED,
        },
    ];
    let mut report = Report::default();
    for spec in &specs {
        run_spec(&world, spec, &mut report).await;
    }
    world.finish().await;
    for line in report
        .coverage
        .iter()
        .chain(&report.mismatches)
        .chain(&report.leaks)
    {
        eprintln!("{line}");
    }
    let summary = format!("cells {}, leaks {}", report.cells, report.leaks.len());
    println!("{summary}");
    eprintln!(
        "{summary}, mismatches {}, in {:.1} s",
        report.mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        report.passed(),
        "{} coverage errors, {} mismatching cells, {} leaks (listed above)",
        report.coverage.len(),
        report.mismatches.len(),
        report.leaks.len()
    );
}
