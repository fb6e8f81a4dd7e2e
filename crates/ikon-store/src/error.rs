//! The store's one error type: a kind (what the caller can act on) plus context.

use std::fmt;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Local I/O failed.
    Io,
    /// Stored data is damaged (hash mismatch, malformed manifest).
    Corrupt,
    /// A chunk or manifest is missing.
    NotFound,
    /// A write-once object already exists with other content, or a version race was lost.
    Conflict,
    /// The caller passed something unusable.
    InvalidInput,
    /// The object-store backend failed.
    Backend,
    /// The store is busy (garbage collection holds the lock) for too long.
    Busy,
}

/// A store error.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Error {
    /// Kind.
    pub kind: ErrorKind,
    /// What was being done and what went wrong.
    pub context: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = match self.kind {
            ErrorKind::Io => "I/O error",
            ErrorKind::Corrupt => "corrupt store data",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Backend => "object store error",
            ErrorKind::Busy => "store busy",
        };
        write!(f, "{k}: {}", self.context)
    }
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Error {
        Error {
            kind,
            context: context.into(),
        }
    }

    /// A local I/O error while doing `what`.
    pub fn io(what: impl fmt::Display, e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: {e}"))
    }

    /// Damaged data.
    pub fn corrupt(what: impl Into<String>) -> Error {
        Error::new(ErrorKind::Corrupt, what)
    }
}

/// Store result.
pub type Result<T> = std::result::Result<T, Error>;
