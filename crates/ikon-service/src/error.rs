//! Domain errors: what went wrong in the service's own words. The API dialects map each
//! kind to their code strings (Tencent's `InvalidImageId.NotFound`, Alibaba's
//! `InvalidImageId.NotFound` with HTTP 404, ...); the service never speaks a dialect.

/// Kinds of domain errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The image does not exist or is not visible to the caller.
    ImageNotFound,
    /// An image id is not well-formed.
    ImageIdMalformed,
    /// The image is shared and must be unshared first.
    ImageInShared,
    /// The image's state does not allow the operation.
    ImageIncorrectState,
    /// The custom-image quota is used up.
    ImageQuotaExceeded,
    /// Too many share recipients.
    ShareQuotaExceeded,
    /// Sharing to oneself.
    ShareToSelf,
    /// Recipient already has the image.
    ShareExists,
    /// The recipient account does not exist.
    AccountNotFound,
    /// A shared image's recipient tried to change or pass it on.
    SharedImageReadOnly,
    /// The caller does not own the image (e.g. a public image).
    NotOwner,
    /// An image with that name exists.
    NameDuplicate,
    /// The daily limit on a limited operation is used up.
    DailyLimitExceeded,
    /// Unknown or unavailable region.
    InvalidRegion,
    /// The region policy refuses the operation between these regions (cross-region copy).
    RegionNotAllowed,
    /// An export destination bucket does not exist.
    BucketNotFound,
    /// An image of this licence type cannot be shared.
    ByolShare,
    /// A parameter has a bad value.
    InvalidParameterValue,
    /// A text (name, description) is longer than the policy allows.
    TextTooLong(TextField),
    /// A text (name, description) breaks the policy's other rules for it.
    TextMalformed(TextField),
    /// The instance type is not one the policy offers.
    InstanceTypeNotFound,
    /// Parameters that cannot be combined.
    InvalidParameterCombination,
    /// ImportImage: the OS type is not on the accepted list.
    OsTypeUnsupported,
    /// ImportImage: the OS version is not on the accepted list.
    OsVersionUnsupported,
    /// ImportImage: the image URL is malformed, of an unknown kind or refused.
    InvalidUrl,
    /// ImportImage: unknown licence type.
    InvalidLicenseType,
    /// ImportImage: unknown boot mode.
    InvalidBootMode,
    /// A file or value is larger than allowed.
    TooLarge,
    /// The task does not exist or is not the caller's.
    TaskNotFound,
    /// The task has finished and cannot be cancelled.
    TaskIncorrectState,
    /// Tasks of this kind cannot be cancelled.
    TaskNotCancellable,
    /// A name already exists (accounts).
    Conflict,
    /// The instance does not exist or is not the caller's.
    InstanceNotFound,
    /// An instance id is not well-formed.
    InstanceIdMalformed,
    /// The disk does not exist, is not the caller's, or is not where the call says.
    DiskNotFound,
    /// The snapshot does not exist or is not the caller's.
    SnapshotNotFound,
    /// The snapshot backs images (delete them first, or ask to delete them too).
    SnapshotHasImages,
    /// The zone is not in the caller's region.
    ZoneMismatch,
    /// The instance quota is used up.
    InstanceQuotaExceeded,
    /// The snapshot quota is used up.
    SnapshotQuotaExceeded,
    /// The hygiene scan found what the policy does not allow (a marketplace submission).
    ScanBlocked,
    /// The account sent more requests to an action this second than the policy allows.
    RateLimited,
    /// The image may not leave the platform as a file (see [`ExportBlock`]).
    ExportUnsupported(ExportBlock),
    /// The chunk store or the disk engine failed on data.
    Storage,
    /// Anything else.
    Internal,
}

/// Which user-supplied text broke its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// An image name.
    ImageName,
    /// An image description.
    Description,
    /// An image family.
    Family,
    /// An instance name.
    InstanceName,
    /// A snapshot name.
    SnapshotName,
}

/// Why an image cannot be exported (the cloud documents' export restrictions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportBlock {
    /// A Windows guest (its licence stays with the platform).
    Windows,
    /// A Red Hat Enterprise Linux guest.
    RedHat,
    /// Made from a marketplace image (the provider's software).
    Market,
}

/// What lies beneath an error (a catalog or store failure), kept whole across the service
/// boundary so the API core can log the full chain.
pub type Source = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A domain error: a kind, a sentence for people and, for failures of the layers beneath,
/// their error as its source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human explanation.
    pub message: String,
    /// The error of a lower layer that caused this one.
    #[source]
    pub source: Option<Source>,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` with `message`, caused by `source`.
    pub fn caused_by(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error {
            kind,
            message: message.into(),
            source: Some(std::sync::Arc::new(source)),
        }
    }

    /// The message followed by every cause beneath it (`a: b: c`), for logs.
    pub fn chain(&self) -> String {
        let mut out = self.message.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = next {
            let s = e.to_string();
            if !out.ends_with(&s) {
                out.push_str(": ");
                out.push_str(&s);
            }
            next = e.source();
        }
        out
    }

    /// "image X not found".
    pub fn image_not_found(id: &str) -> Error {
        Error::new(
            ErrorKind::ImageNotFound,
            format!("image {id} does not exist"),
        )
    }

    /// An internal failure.
    pub fn internal(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, msg)
    }
}

impl From<ikon_catalog::Error> for Error {
    fn from(e: ikon_catalog::Error) -> Error {
        match e {
            ikon_catalog::Error::Conflict(m) => Error::new(ErrorKind::Conflict, m),
            other => Error::caused_by(ErrorKind::Internal, "the catalog failed", other),
        }
    }
}

impl From<ikon_store::Error> for Error {
    fn from(e: ikon_store::Error) -> Error {
        Error::caused_by(ErrorKind::Storage, "the chunk store failed", e)
    }
}

/// Service result.
pub type Result<T> = std::result::Result<T, Error>;
