//! An image's kind, state and licence as domain types. The catalog stores them as strings
//! (`PUBLIC`, `IMPORTFAILED`, `BYOL`, …); the service and its callers read them through these
//! enums, so no dialect or page compares catalog strings.

use crate::images::state;

/// Who an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// A platform image.
    Public,
    /// An account's custom image (shared or not).
    Private,
    /// A marketplace image.
    Market,
}

impl ImageKind {
    /// The kind a catalog row records (unknown values read as custom images, the most
    /// restricted kind).
    pub fn of(kind: &str) -> ImageKind {
        match kind {
            "PUBLIC" => ImageKind::Public,
            "MARKET" => ImageKind::Market,
            _ => ImageKind::Private,
        }
    }

    /// The catalog's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Public => "PUBLIC",
            ImageKind::Private => "PRIVATE",
            ImageKind::Market => "MARKET",
        }
    }
}

/// Where an image is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    /// Being made from an instance or snapshots.
    Creating,
    /// Usable.
    Normal,
    /// Making it failed.
    CreateFailed,
    /// Being copied to another region.
    Syncing,
    /// Being imported.
    Importing,
    /// The import failed.
    ImportFailed,
    /// A state this version does not know.
    Other,
}

impl ImageState {
    /// The state a catalog row records.
    pub fn of(s: &str) -> ImageState {
        match s {
            state::CREATING => ImageState::Creating,
            state::NORMAL => ImageState::Normal,
            state::CREATEFAILED => ImageState::CreateFailed,
            state::SYNCING => ImageState::Syncing,
            state::IMPORTING => ImageState::Importing,
            state::IMPORTFAILED => ImageState::ImportFailed,
            _ => ImageState::Other,
        }
    }

    /// Making or importing the image failed.
    pub fn failed(self) -> bool {
        matches!(self, ImageState::CreateFailed | ImageState::ImportFailed)
    }

    /// The image is being made (created or imported).
    pub fn in_progress(self) -> bool {
        matches!(self, ImageState::Creating | ImageState::Importing)
    }

    /// Instances can be made from it (a copy in progress keeps the source usable).
    pub fn usable(self) -> bool {
        matches!(self, ImageState::Normal | ImageState::Syncing)
    }
}

/// Whose licence the guest's software runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum License {
    /// The platform's (licence fees, if any, billed by the cloud).
    Platform,
    /// The user's own subscription (bring your own licence).
    Byol,
}

impl License {
    /// The licence a catalog row records.
    pub fn of(s: &str) -> License {
        if s == "BYOL" {
            License::Byol
        } else {
            License::Platform
        }
    }
}

impl crate::ImageView {
    /// Who the image belongs to.
    pub fn kind(&self) -> ImageKind {
        ImageKind::of(&self.image.kind)
    }

    /// Its state.
    pub fn state(&self) -> ImageState {
        ImageState::of(&self.image.state)
    }

    /// Its licence.
    pub fn license(&self) -> License {
        License::of(&self.image.license_type)
    }
}
