//! Where objects live. Two backends behind one synchronous interface (callers run it on
//! blocking threads): a local directory written durably by hand (temporary file, fsync,
//! rename, fsync of the directory — object_store's LocalFileSystem does not fsync), and any
//! `object_store` implementation (S3 engines, in-memory for tests), driven through a tokio
//! runtime handle.

use crate::error::{Error, ErrorKind, Result};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// One listed object.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Key, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (unix milliseconds).
    pub modified_ms: i64,
}

/// Prefix of temporary files in the local backend (never a valid key component).
pub const TMP_PREFIX: &str = ".tmp-";

/// A storage backend.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A local directory.
    Local(PathBuf),
    /// An object store, with the runtime that drives it.
    Object(Arc<dyn ObjectStore>, tokio::runtime::Handle),
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.starts_with(TMP_PREFIX))
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid store key {key:?}"),
        ))
    }
}

fn unique_suffix() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom_fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn getrandom_fill(b: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    fs::File::open("/dev/urandom")?.read_exact(b)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("fsync directory {}", dir.display()), e))
}

fn obj_err(what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::new(ErrorKind::NotFound, what.to_string()),
        other => Error::new(ErrorKind::Backend, format!("{what}: {other}")),
    }
}

impl Backend {
    fn local_path(root: &Path, key: &str) -> PathBuf {
        let mut p = root.to_path_buf();
        for c in key.split('/') {
            p.push(c);
        }
        p
    }

    /// Stores `data` under `key` unless the key exists; returns whether it was written.
    /// With `overwrite`, replaces it instead (only for small mutable control objects).
    pub fn put(&self, key: &str, data: &[u8], overwrite: bool) -> Result<bool> {
        check_key(key)?;
        match self {
            Backend::Local(root) => {
                let path = Self::local_path(root, key);
                if !overwrite && path.exists() {
                    return Ok(false);
                }
                let dir = path
                    .parent()
                    .ok_or_else(|| Error::new(ErrorKind::InvalidInput, format!("key {key}")))?;
                if !dir.exists() {
                    fs::create_dir_all(dir)
                        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                    // Make the new directory entries durable up to the root.
                    let mut d = dir;
                    while let Some(parent) = d.parent() {
                        sync_dir(parent)?;
                        if parent == root.as_path() || !parent.starts_with(root) {
                            break;
                        }
                        d = parent;
                    }
                }
                let tmp = dir.join(format!("{TMP_PREFIX}{}", unique_suffix()));
                let write = || -> std::io::Result<()> {
                    let mut f = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&tmp)?;
                    f.write_all(data)?;
                    f.sync_all()
                };
                if let Err(e) = write() {
                    let _ = fs::remove_file(&tmp);
                    return Err(Error::io(format!("writing {}", tmp.display()), e));
                }
                if !overwrite && path.exists() {
                    let _ = fs::remove_file(&tmp);
                    return Ok(false);
                }
                fs::rename(&tmp, &path).map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    Error::io(format!("renaming into {}", path.display()), e)
                })?;
                sync_dir(dir)?;
                Ok(true)
            }
            Backend::Object(os, rt) => {
                let loc = object_store::path::Path::from(key);
                let payload = PutPayload::from(data.to_vec());
                if overwrite {
                    rt.block_on(os.put(&loc, payload))
                        .map_err(|e| obj_err(key, e))?;
                    return Ok(true);
                }
                if rt.block_on(os.head(&loc)).is_ok() {
                    return Ok(false);
                }
                // Conditional create where the engine supports it; content-addressed keys
                // make a repeated upload harmless where it does not.
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match rt.block_on(os.put_opts(&loc, payload, opts)) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                    Err(object_store::Error::NotImplemented { .. }) => {
                        rt.block_on(os.put(&loc, PutPayload::from(data.to_vec())))
                            .map_err(|e| obj_err(key, e))?;
                        Ok(true)
                    }
                    Err(e) => Err(obj_err(key, e)),
                }
            }
        }
    }

    /// Reads an object; None when absent.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        match self {
            Backend::Local(root) => match fs::read(Self::local_path(root, key)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(format!("reading {key}"), e)),
            },
            Backend::Object(os, rt) => {
                let loc = object_store::path::Path::from(key);
                match rt.block_on(async { os.get(&loc).await?.bytes().await }) {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(obj_err(key, e)),
                }
            }
        }
    }

    /// Whether an object exists.
    pub fn exists(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        match self {
            Backend::Local(root) => Ok(Self::local_path(root, key).exists()),
            Backend::Object(os, rt) => {
                match rt.block_on(os.head(&object_store::path::Path::from(key))) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(obj_err(key, e)),
                }
            }
        }
    }

    /// Deletes an object (absent is fine).
    pub fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        match self {
            Backend::Local(root) => match fs::remove_file(Self::local_path(root, key)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(format!("deleting {key}"), e)),
            },
            Backend::Object(os, rt) => {
                match rt.block_on(os.delete(&object_store::path::Path::from(key))) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(obj_err(key, e)),
                }
            }
        }
    }

    /// Every object under `prefix` (a key prefix ending at a `/` boundary). In the local
    /// backend, temporary files are reported with their path relative to the root, so the
    /// garbage collector can remove stale ones.
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        match self {
            Backend::Local(root) => {
                let mut out = Vec::new();
                let start = Self::local_path(root, prefix.trim_end_matches('/'));
                if !start.exists() {
                    return Ok(out);
                }
                let mut stack = vec![start];
                while let Some(dir) = stack.pop() {
                    let rd = fs::read_dir(&dir)
                        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                    for ent in rd {
                        let ent =
                            ent.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
                        let ft = ent.file_type().map_err(|e| Error::io("file type", e))?;
                        let path = ent.path();
                        if ft.is_dir() {
                            stack.push(path);
                        } else if ft.is_file() {
                            let meta = ent.metadata().map_err(|e| Error::io("metadata", e))?;
                            let modified = meta
                                .modified()
                                .ok()
                                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                                .and_then(|d| i64::try_from(d.as_millis()).ok())
                                .unwrap_or(0);
                            let rel = path.strip_prefix(root).unwrap_or(&path);
                            let key = rel
                                .components()
                                .map(|c| c.as_os_str().to_string_lossy())
                                .collect::<Vec<_>>()
                                .join("/");
                            out.push(Entry {
                                key,
                                size: meta.len(),
                                modified_ms: modified,
                            });
                        }
                    }
                }
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            }
            Backend::Object(os, rt) => {
                let p = object_store::path::Path::from(prefix.trim_end_matches('/'));
                let metas: Vec<object_store::ObjectMeta> = rt
                    .block_on(os.list(Some(&p)).try_collect())
                    .map_err(|e| obj_err(prefix, e))?;
                let mut out: Vec<Entry> = metas
                    .into_iter()
                    .map(|m| Entry {
                        key: m.location.to_string(),
                        size: m.size,
                        modified_ms: m.last_modified.timestamp_millis(),
                    })
                    .collect();
                out.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(out)
            }
        }
    }

    /// Removes a stale temporary file reported by `list` (local backend only).
    pub fn remove_tmp(&self, key: &str) -> Result<()> {
        if let Backend::Local(root) = self {
            let name = key.rsplit('/').next().unwrap_or("");
            if name.starts_with(TMP_PREFIX) && !key.split('/').any(|c| c == "..") {
                let _ = fs::remove_file(Self::local_path(root, key));
            }
        }
        Ok(())
    }
}
