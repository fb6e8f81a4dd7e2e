//! Service errors in Alibaba's codes and HTTP statuses (reference §1.6, §2), misspellings
//! included where the contract has them (`InvalidAccount.Forbbiden`, "bean used").

use super::ApiError;
use ikon_service::{Error, ErrorKind, TextField};

/// Maps a service error raised by `action`.
pub fn map(action: &str, e: Error) -> ApiError {
    let (status, code, message): (u16, &str, String) = match e.kind {
        ErrorKind::ImageNotFound | ErrorKind::ImageIdMalformed => (
            404,
            "InvalidImageId.NotFound",
            "The specified ImageId does not exist.".into(),
        ),
        ErrorKind::ImageInShared => (
            403,
            "ImageUseShared",
            "The specified image is shared to other accounts; cancel the sharing first.".into(),
        ),
        ErrorKind::ImageIncorrectState
            if matches!(action, "RunInstances" | "ReplaceSystemDisk") =>
        {
            (
                403,
                "OperationDenied.ImageNotValid",
                format!("The specified Image is disabled or is deleted. ({})", e.message),
            )
        }
        ErrorKind::ImageIncorrectState => (
            403,
            "IncorrectImageStatus",
            format!("The specified Image is not available. ({})", e.message),
        ),
        ErrorKind::ImageQuotaExceeded => (403, "QuotaExceed.Image", "The Image Quota exceeds.".into()),
        ErrorKind::ShareQuotaExceeded => (
            403,
            "QuotaExceed.ShareImageUser",
            format!("The shared Image user Quota exceeds. ({})", e.message),
        ),
        ErrorKind::ShareToSelf => (
            404,
            "InvalidAccount.Forbbiden",
            "The specified image cannot be shared to its own account.".into(),
        ),
        ErrorKind::ShareExists => (400, "InvalidParameter", e.message),
        ErrorKind::AccountNotFound => (
            404,
            "InvalidAccount.NotFound",
            format!(
                "The specified parameter \"AddAccount.n\" or \"RemoveAccount.n\" does not exist. ({})",
                e.message
            ),
        ),
        ErrorKind::SharedImageReadOnly | ErrorKind::NotOwner | ErrorKind::ByolShare => {
            (403, "OperationDenied", e.message)
        }
        ErrorKind::NameDuplicate => (
            400,
            "InvalidImageName.Duplicated",
            "The specified Image name has already bean used.".into(),
        ),
        ErrorKind::DailyLimitExceeded => (400, "Throttling.User", e.message),
        ErrorKind::InvalidRegion => (
            404,
            "InvalidRegionId.NotFound",
            "The specified RegionId does not exist.".into(),
        ),
        // Reference §2.6 (CopyImage) and §2.5 (ExportImage).
        ErrorKind::RegionNotAllowed => (403, "RegionNotSupportCopy", e.message),
        ErrorKind::BucketNotFound => (400, "InvalidOSSBucket.NotFound", e.message),
        ErrorKind::InvalidParameterValue => match action {
            "DescribeImages" => (400, "InvalidParamter", e.message),
            _ => (400, "InvalidParameter", e.message),
        },
        ErrorKind::TextTooLong(f) | ErrorKind::TextMalformed(f) => {
            let (code, what) = match f {
                TextField::ImageName => ("InvalidImageName.Malformed", "Image name"),
                TextField::Description => ("InvalidDescription.Malformed", "description"),
                TextField::Family => ("InvalidImageFamily.Malformed", "image family"),
                TextField::InstanceName => ("InvalidInstanceName.Malformed", "InstanceName"),
                TextField::SnapshotName => ("InvalidSnapshotName.Malformed", "snapshot name"),
            };
            (
                400,
                code,
                format!("The specified {what} is wrongly formed. ({})", e.message),
            )
        }
        ErrorKind::InstanceTypeNotFound => (
            400,
            "InvalidInstanceType.ValueNotSupported",
            format!("The specified InstanceType does not exist or beyond the permitted range. ({})", e.message),
        ),
        ErrorKind::InvalidParameterCombination => (400, "InvalidParameter.Conflict", e.message),
        ErrorKind::TaskNotFound => (
            400,
            "InvalidTaskId.NotFound",
            "The specified \"TaskId\" is not found.".into(),
        ),
        ErrorKind::TaskIncorrectState => (
            403,
            "InvalidTaskId.IncorrectTaskStatus",
            format!("The current status of the task does not support this operation. ({})", e.message),
        ),
        ErrorKind::TaskNotCancellable => (
            403,
            "InvalidTaskId.TaskActionNotSupport",
            format!("The task action does not support this operation. ({})", e.message),
        ),
        ErrorKind::Conflict => (409, "OperationConflict", e.message),
        ErrorKind::InstanceNotFound | ErrorKind::InstanceIdMalformed => (
            404,
            "InvalidInstanceId.NotFound",
            "The specified InstanceId does not exist.".into(),
        ),
        ErrorKind::DiskNotFound => (
            404,
            "InvalidDiskId.NotFound",
            format!("The specified DiskId does not exist. ({})", e.message),
        ),
        ErrorKind::SnapshotNotFound => (
            404,
            "InvalidSnapshotId.NotFound",
            "The specified SnapshotId does not exist.".into(),
        ),
        ErrorKind::SnapshotHasImages => (
            403,
            "SnapshotCreatedImage",
            format!("The snapshot has been used to create user defined image(s). ({})", e.message),
        ),
        ErrorKind::ZoneMismatch => (
            404,
            "InvalidZoneId.NotFound",
            format!("The specified zone does not exist. ({})", e.message),
        ),
        ErrorKind::InstanceQuotaExceeded => (400, "QuotaExceed.AfterpayInstance", e.message),
        ErrorKind::SnapshotQuotaExceeded => (403, "QuotaExceed.Snapshot", e.message),
        // Reference §2.5: marketplace (and other platform-bound) images.
        ErrorKind::ExportUnsupported(_) => (403, "ImageNotSupported", e.message),
        ErrorKind::ScanBlocked => (403, "Forbidden.ImageScan", e.message),
        ErrorKind::RateLimited => (400, "Throttling", e.message),
        ErrorKind::OsTypeUnsupported => (400, "InvalidOSType.Malformed", e.message),
        ErrorKind::OsVersionUnsupported => (400, "InvalidPlatform.Malformed", e.message),
        ErrorKind::InvalidUrl => (400, "InvalidOSSObject.Malformed", e.message),
        ErrorKind::InvalidLicenseType => (400, "InvalidLicenseType.NotSupported", e.message),
        ErrorKind::InvalidBootMode => (400, "InvalidParameter", e.message),
        ErrorKind::TooLarge => (400, "InvalidImageSize", e.message),
        ErrorKind::Storage | ErrorKind::Internal => return ApiError::internal(e.chain()),
    };
    ApiError::new(status, code, message)
}
