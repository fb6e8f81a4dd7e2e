//! The operations the daily limit can apply to, named in the policy by their Tencent action
//! names (`daily_limited_actions`). Each limited service operation counts itself under its
//! [`Operation`]; the dialects never count (Alibaba's CopyImage and ExportImage are the
//! service's `sync_images` and `export_images`, so they count as SyncImages and
//! ExportImages).

use std::fmt;

/// An operation the daily limit may count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Making an image from an instance or snapshots.
    CreateImage,
    /// Importing an image file.
    ImportImage,
    /// Copying images to other regions.
    SyncImages,
    /// Exporting images to a bucket.
    ExportImages,
    /// Renaming, re-describing or deprecating an image.
    ModifyImageAttribute,
    /// Sharing an image or withdrawing a share.
    ModifyImageSharePermission,
    /// Deleting images.
    DeleteImages,
}

impl Operation {
    /// Every operation, in the order the documentation lists them.
    pub const ALL: [Operation; 7] = [
        Operation::CreateImage,
        Operation::ImportImage,
        Operation::SyncImages,
        Operation::ExportImages,
        Operation::ModifyImageAttribute,
        Operation::ModifyImageSharePermission,
        Operation::DeleteImages,
    ];

    /// The Tencent action name the policy uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateImage => "CreateImage",
            Operation::ImportImage => "ImportImage",
            Operation::SyncImages => "SyncImages",
            Operation::ExportImages => "ExportImages",
            Operation::ModifyImageAttribute => "ModifyImageAttribute",
            Operation::ModifyImageSharePermission => "ModifyImageSharePermission",
            Operation::DeleteImages => "DeleteImages",
        }
    }

    /// The operation a policy names, or an error listing the names it may use.
    pub fn parse(name: &str) -> Result<Operation, String> {
        Operation::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| {
                let all: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
                format!(
                    "{name:?} is not an operation the daily limit can count (one of {})",
                    all.join(", ")
                )
            })
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
