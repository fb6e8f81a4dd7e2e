//! A small filesystem-neutral view used by the OS detectors: resolve a path (following
//! symlinks, at most `MAX_HOPS` of them, paths at most `MAX_PATH` bytes), read a file
//! (bounded), list a directory (bounded).

use ikon_disk::{Error, Result};

/// Maximum symlinks followed in one lookup (Linux's MAXSYMLINKS).
pub const MAX_HOPS: usize = 40;
/// Maximum path length (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;

/// Kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Anything else.
    Other,
}

/// One directory entry.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// Name.
    pub name: String,
}

/// Primitive operations a filesystem reader provides.
pub trait GuestFs {
    /// Node handle.
    type Node: Clone;
    /// Root directory.
    fn root(&self) -> Self::Node;
    /// Kind of a node.
    fn kind(&self, n: &Self::Node) -> Result<FileKind>;
    /// Child of a directory by name.
    fn child(&self, dir: &Self::Node, name: &str) -> Result<Option<Self::Node>>;
    /// Target of a symlink.
    fn read_link(&self, n: &Self::Node) -> Result<String>;
    /// Contents of a file (refuses above `limit`).
    fn read_node(&self, n: &Self::Node, limit: u64) -> Result<Vec<u8>>;
    /// Entries of a directory (at most `max`).
    fn list_node(&self, n: &Self::Node, max: usize) -> Result<Vec<DirEntry>>;
    /// Size in bytes of a file's data (0 for a file without data).
    fn size(&self, n: &Self::Node) -> Result<u64>;
    /// Entries of a directory with their nodes (at most `max`; `.` and `..` left out), in
    /// one pass over the directory: a walk that looked each name up again would read a
    /// directory once per entry.
    fn children(&self, n: &Self::Node, max: usize) -> Result<Vec<(String, Self::Node)>>;

    /// Resolve `path` (absolute in the guest), following symlinks (also in the last
    /// component when `follow_last`). `Ok(None)` when it does not exist.
    fn resolve(&self, path: &str, follow_last: bool) -> Result<Option<Self::Node>> {
        if path.len() > MAX_PATH {
            return Err(Error::limit(format!(
                "path of {} bytes too long",
                path.len()
            )));
        }
        let mut hops = 0usize;
        let mut stack: Vec<Self::Node> = vec![self.root()];
        let mut todo: Vec<String> = path
            .split('/')
            .rev()
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        while let Some(comp) = todo.pop() {
            let Some(cur) = stack.last().cloned() else {
                return Ok(None);
            };
            if comp == "." {
                continue;
            }
            if comp == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let Some(next) = self.child(&cur, &comp)? else {
                return Ok(None);
            };
            let last = todo.is_empty();
            if self.kind(&next)? == FileKind::Symlink && (!last || follow_last) {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Error::limit(format!(
                        "more than {MAX_HOPS} symlinks resolving {path}"
                    )));
                }
                let target = self.read_link(&next)?;
                if target.len() > MAX_PATH || todo.len() > MAX_PATH {
                    return Err(Error::limit("symlink target too long"));
                }
                if target.starts_with('/') {
                    stack.truncate(1);
                }
                todo.extend(
                    target
                        .split('/')
                        .rev()
                        .filter(|c| !c.is_empty())
                        .map(String::from),
                );
                continue;
            }
            stack.push(next);
        }
        Ok(stack.last().cloned())
    }

    /// Read a file at `path` (following symlinks); `Ok(None)` if absent or not a file.
    fn read_file(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        match self.resolve(path, true)? {
            Some(n) if self.kind(&n)? == FileKind::File => Ok(Some(self.read_node(&n, limit)?)),
            _ => Ok(None),
        }
    }

    /// Read a small text file, lossily; `None` when absent or unreadable.
    fn read_text(&self, path: &str) -> Option<String> {
        self.read_file(path, 1 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).to_string())
    }

    /// List a directory at `path`; empty when absent.
    fn list_dir(&self, path: &str, max: usize) -> Result<Vec<String>> {
        match self.resolve(path, true)? {
            Some(n) if self.kind(&n)? == FileKind::Dir => Ok(self
                .list_node(&n, max)?
                .into_iter()
                .map(|e| e.name)
                .collect()),
            _ => Ok(vec![]),
        }
    }

    /// Whether `path` exists (following symlinks).
    fn exists(&self, path: &str) -> bool {
        matches!(self.resolve(path, true), Ok(Some(_)))
    }
}
