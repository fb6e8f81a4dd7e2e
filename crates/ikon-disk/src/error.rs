//! One error type for the whole crate: a [`ErrorKind`] saying what class of failure it is
//! (so callers can map it to exit codes or API errors) plus a context sentence that names the
//! format, the structure and, for on-disk problems, the byte position involved.

use std::fmt;

/// What class of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The operating system refused or failed an I/O call.
    Io,
    /// The image violates its own format: bad magic, checksum, table out of bounds, loops.
    Corrupt,
    /// The image is valid but uses a feature or format Ikon does not handle.
    Unsupported,
    /// The image refers to something outside itself (backing file, extent file, parent
    /// locator, data file) and the caller did not allow it, or the reference escapes the
    /// allowed directory.
    Unsafe,
    /// The caller asked for something impossible (bad option, offset past the end).
    InvalidInput,
    /// A write was attempted on an image opened read-only or a read-only format.
    ReadOnly,
    /// A size or count in the image exceeds a limit Ikon enforces to bound memory and time.
    LimitExceeded,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Io => "I/O error",
            ErrorKind::Corrupt => "corrupt image",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unsafe => "unsafe image refused",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::LimitExceeded => "limit exceeded",
        })
    }
}

/// The crate's error: a kind, a context sentence and, for I/O failures, the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {context}")]
pub struct Error {
    kind: ErrorKind,
    context: String,
    #[source]
    source: Option<std::io::Error>,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a context sentence.
    pub fn new(kind: ErrorKind, context: impl Into<String>) -> Self {
        Error {
            kind,
            context: context.into(),
            source: None,
        }
    }
    /// The image is corrupt.
    pub fn corrupt(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, context)
    }
    /// The feature is not supported.
    pub fn unsupported(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, context)
    }
    /// An external reference was refused.
    pub fn unsafe_ref(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsafe, context)
    }
    /// The caller's request was invalid.
    pub fn invalid(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, context)
    }
    /// A limit was exceeded.
    pub fn limit(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, context)
    }
    /// A write to something read-only.
    pub fn read_only(context: impl Into<String>) -> Self {
        Self::new(ErrorKind::ReadOnly, context)
    }
    /// An I/O error with what was being done.
    pub fn io(source: std::io::Error, context: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Io,
            context: context.into(),
            source: Some(source),
        }
    }
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The context sentence.
    pub fn context(&self) -> &str {
        &self.context
    }
    /// Prefix the context with where it happened (e.g. the file name).
    #[must_use]
    pub fn within(mut self, outer: impl fmt::Display) -> Self {
        self.context = format!("{outer}: {}", self.context);
        self
    }
}

/// Checked arithmetic on numbers read from disk: overflow becomes a `Corrupt` error naming
/// what was being computed.
pub trait CheckedOr: Sized {
    /// `self + rhs`, or a corrupt-image error mentioning `what`.
    fn add_or(self, rhs: Self, what: &str) -> Result<Self>;
    /// `self * rhs`, or a corrupt-image error mentioning `what`.
    fn mul_or(self, rhs: Self, what: &str) -> Result<Self>;
}

impl CheckedOr for u64 {
    fn add_or(self, rhs: u64, what: &str) -> Result<u64> {
        self.checked_add(rhs)
            .ok_or_else(|| Error::corrupt(format!("{what}: {self} + {rhs} overflows")))
    }
    fn mul_or(self, rhs: u64, what: &str) -> Result<u64> {
        self.checked_mul(rhs)
            .ok_or_else(|| Error::corrupt(format!("{what}: {self} * {rhs} overflows")))
    }
}

/// Convert a `u64` read from disk to `usize` (for buffer sizes), or fail with a limit error.
pub fn to_usize(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::limit(format!("{what}: {v} does not fit in memory")))
}
