//! Policy for references that point outside an image (qcow2 backing and data files, VMDK
//! extent files, VHD parent locators). They are refused unless the caller names a directory
//! they may come from; allowed references are resolved and confined to that directory
//! (after following symlinks), and protocol or `json:` pseudo-paths are always refused.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Where external references may point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalPolicy {
    allowed_dir: Option<PathBuf>,
}

impl ExternalPolicy {
    /// Refuse every external reference (the default).
    pub fn deny() -> Self {
        ExternalPolicy { allowed_dir: None }
    }
    /// Allow references to files inside `dir` (after resolving symlinks).
    pub fn allow_dir(dir: &Path) -> Result<Self> {
        let canon = std::fs::canonicalize(dir)
            .map_err(|e| Error::io(e, format!("allowed directory {}", dir.display())))?;
        Ok(ExternalPolicy {
            allowed_dir: Some(canon),
        })
    }
    /// The allowed directory, if any.
    pub fn allowed_dir(&self) -> Option<&Path> {
        self.allowed_dir.as_deref()
    }

    /// Resolve `reference` (as written in an image whose file lives in `base_dir`) to a path
    /// inside the allowed directory. `what` names the reference for messages
    /// ("qcow2 backing file").
    pub fn resolve(&self, base_dir: Option<&Path>, reference: &str, what: &str) -> Result<PathBuf> {
        if reference.starts_with("json:") || reference.contains("://") || reference.contains('\0') {
            return Err(Error::unsafe_ref(format!(
                "{what} {reference:?} is a protocol or pseudo-path; only plain files may be referenced"
            )));
        }
        let Some(allowed) = &self.allowed_dir else {
            return Err(Error::unsafe_ref(format!(
                "image refers to an external {what} {reference:?}; refused (name an allowed directory to permit it)"
            )));
        };
        let raw = Path::new(reference);
        let joined = if raw.is_absolute() {
            raw.to_path_buf()
        } else {
            base_dir.unwrap_or(allowed).join(raw)
        };
        // First lexically (so `../x` is refused whether or not it exists), then again after
        // the file system has resolved every symlink.
        let lexical = normalize(&joined);
        if !lexical.starts_with(allowed) {
            return Err(Error::unsafe_ref(format!(
                "{what} {reference:?} resolves to {} which is outside the allowed directory {}",
                lexical.display(),
                allowed.display()
            )));
        }
        let canon = std::fs::canonicalize(&joined).map_err(|e| {
            Error::io(
                e,
                format!(
                    "{what} {reference:?} (resolved to {}) cannot be opened",
                    joined.display()
                ),
            )
        })?;
        if !canon.starts_with(allowed) {
            return Err(Error::unsafe_ref(format!(
                "{what} {reference:?} resolves to {} which is outside the allowed directory {}",
                canon.display(),
                allowed.display()
            )));
        }
        Ok(canon)
    }
}

/// Remove `.` and resolve `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}
