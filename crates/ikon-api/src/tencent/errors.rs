//! Service errors in Tencent's code strings (reference §4). A few kinds are spelled
//! differently depending on the action, as the real API does.

use super::ApiError;
use ikon_service::{Error, ErrorKind, ExportBlock, TextField};

/// Maps a service error raised by `action`.
pub fn map(action: &str, e: Error) -> ApiError {
    let code = match e.kind {
        ErrorKind::ImageNotFound => "InvalidImageId.NotFound",
        ErrorKind::ImageIdMalformed => "InvalidImageId.Malformed",
        ErrorKind::ImageInShared => "InvalidImageId.InShared",
        ErrorKind::ImageIncorrectState => match action {
            "ModifyImageSharePermission" | "ExportImages" => {
                "InvalidParameterValue.InvalidImageState"
            }
            _ => "InvalidImageId.IncorrectState",
        },
        ErrorKind::ImageQuotaExceeded => "ImageQuotaLimitExceeded",
        ErrorKind::ShareQuotaExceeded => "OverQuota",
        ErrorKind::ShareToSelf => "InvalidAccountIs.YourSelf",
        ErrorKind::ShareExists => "FailedOperation.AccountAlreadyExists",
        ErrorKind::AccountNotFound => "InvalidAccountId.NotFound",
        ErrorKind::SharedImageReadOnly => match action {
            "ModifyImageAttribute" => "UnsupportedOperation.SharedImageModifyUnsupported",
            "ExportImages" => "UnsupportedOperation.SharedImageExportUnsupported",
            "DeleteImages" => "InvalidParameterValue.InvalidImageId",
            _ => "UnauthorizedOperation.ImageNotBelongToAccount",
        },
        ErrorKind::NotOwner => match action {
            "DeleteImages" => "InvalidParameterValue.InvalidImageId",
            "ExportImages" => "UnsupportedOperation.PublicImageExportUnsupported",
            _ => "UnauthorizedOperation.ImageNotBelongToAccount",
        },
        ErrorKind::NameDuplicate => "InvalidImageName.Duplicate",
        ErrorKind::DailyLimitExceeded => "LimitExceeded",
        ErrorKind::InvalidRegion => "InvalidRegion.NotFound",
        ErrorKind::RegionNotAllowed => "UnsupportedOperation.Region",
        ErrorKind::BucketNotFound => "InvalidParameterValue.BucketNotFound",
        ErrorKind::ByolShare => "FailedOperation.BYOLImageShareFailed",
        ErrorKind::InvalidParameterValue => "InvalidParameterValue",
        ErrorKind::TextTooLong(TextField::InstanceName) => "InvalidInstanceName.TooLong",
        ErrorKind::TextTooLong(TextField::SnapshotName) => "InvalidParameterValue",
        ErrorKind::TextTooLong(_) => "InvalidParameterValue.TooLong",
        ErrorKind::TextMalformed(_) => "InvalidParameterValue",
        ErrorKind::InstanceTypeNotFound => "InvalidParameterValue.InstanceTypeNotFound",
        ErrorKind::OsTypeUnsupported => "InvalidImageOsType.Unsupported",
        ErrorKind::OsVersionUnsupported => "InvalidImageOsVersion.Unsupported",
        ErrorKind::InvalidUrl => "InvalidParameter.InvalidParameterUrlError",
        ErrorKind::InvalidLicenseType => "InvalidParameterValue.InvalidLicenseType",
        ErrorKind::InvalidBootMode => "InvalidParameterValue.InvalidBootMode",
        ErrorKind::TooLarge => "InvalidParameterValue.TooLarge",
        ErrorKind::InvalidParameterCombination => "InvalidParameterCombination",
        ErrorKind::TaskNotFound => "ResourceNotFound",
        ErrorKind::TaskIncorrectState => "FailedOperation",
        ErrorKind::TaskNotCancellable => "UnsupportedOperation",
        ErrorKind::Conflict => "ResourceInUse",
        ErrorKind::InstanceNotFound => "InvalidInstanceId.NotFound",
        ErrorKind::InstanceIdMalformed => "InvalidInstanceId.Malformed",
        ErrorKind::DiskNotFound => match action {
            "CreateImage" => "InvalidParameter.DataDiskNotBelongSpecifiedInstance",
            _ => "InvalidDiskId.NotFound",
        },
        ErrorKind::SnapshotNotFound => match action {
            "DeleteSnapshots" => "InvalidSnapshotId.NotFound",
            "CreateSnapshot" | "DescribeSnapshots" => "ResourceNotFound.NotFound",
            _ => "InvalidParameter.SnapshotNotFound",
        },
        ErrorKind::SnapshotHasImages => "UnsupportedOperation.SnapshotHasBindedImage",
        ErrorKind::ZoneMismatch => "InvalidZone.MismatchRegion",
        ErrorKind::InstanceQuotaExceeded => "LimitExceeded.InstanceQuota",
        ErrorKind::SnapshotQuotaExceeded => "ResourceInsufficient.OverQuota",
        ErrorKind::ExportUnsupported(ExportBlock::Windows) => {
            "UnsupportedOperation.WindowsImageExportUnsupported"
        }
        ErrorKind::ExportUnsupported(ExportBlock::RedHat) => {
            "UnsupportedOperation.RedHatImageExportUnsupported"
        }
        ErrorKind::ExportUnsupported(ExportBlock::Market) => {
            "UnsupportedOperation.MarketImageExportUnsupported"
        }
        ErrorKind::ScanBlocked => "FailedOperation.ImageScanBlocked",
        ErrorKind::RateLimited => "RequestLimitExceeded",
        ErrorKind::Storage | ErrorKind::Internal => return ApiError::internal(e.chain()),
    };
    ApiError::new(code, e.message)
}
