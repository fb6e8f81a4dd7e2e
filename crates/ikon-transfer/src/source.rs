//! Where an import's file comes from, behind one trait: an `http(s)://` URL (fetched
//! through the SSRF guard), an `s3://bucket/key` in a bucket the server has registered
//! (any `object_store` backend: the S3 engine of the deployment, or an in-memory store in
//! tests), or `upload://upl-…`, a file the account uploaded with `ikon image import`. Each
//! lands in a spool file the disk engine then opens; every source streams and resumes.

use crate::fetch::{self, FetchError, FetchOptions, Fetched};
use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::io::AsyncWriteExt;

/// A parsed import location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// `http://…` or `https://…`.
    Http(String),
    /// `s3://bucket/key`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// `upload://upl-xxxxxxxx`: a file uploaded by the same account.
    Upload(String),
}

impl SourceUrl {
    /// Parses an `ImageUrl`.
    pub fn parse(url: &str) -> Result<SourceUrl, String> {
        let url = url.trim();
        if url.len() > 2048 || url.chars().any(char::is_control) {
            return Err("the image URL is too long or holds control characters".into());
        }
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a valid URL: {e}"))?;
            return Ok(SourceUrl::Http(url.to_string()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
                return Err(format!("{url:?}: expected s3://BUCKET/KEY"));
            }
            return Ok(SourceUrl::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        if let Some(id) = url.strip_prefix("upload://") {
            if !ikon_catalog::ids::is_well_formed("upl", id) {
                return Err(format!("{url:?}: expected upload://upl-xxxxxxxx"));
            }
            return Ok(SourceUrl::Upload(id.to_string()));
        }
        Err(format!(
            "{url:?}: the image URL must be http(s)://…, s3://BUCKET/KEY or upload://UPLOAD_ID"
        ))
    }
}

/// Brings a source's bytes into a spool file.
pub trait Source: Send + Sync {
    /// Fetches into `dest` (resuming a partial `dest`), reporting (bytes, total).
    fn fetch<'a>(
        &'a self,
        dest: &'a Path,
        progress: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> crate::runner::BoxFuture<'a, Result<Fetched, FetchError>>;
}

/// An HTTP(S) URL behind the SSRF guard.
pub struct HttpSource {
    /// URL.
    pub url: String,
    /// Guard, limits and retries.
    pub options: FetchOptions,
}

impl Source for HttpSource {
    fn fetch<'a>(
        &'a self,
        dest: &'a Path,
        progress: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> crate::runner::BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(fetch::fetch_http(&self.url, dest, &self.options, progress))
    }
}

/// An object in a registered bucket.
pub struct ObjectSource {
    /// The bucket's store.
    pub store: Arc<dyn ObjectStore>,
    /// Object key.
    pub key: String,
    /// Largest object accepted.
    pub max_bytes: u64,
    /// Attempts (each after the first resumes with a ranged GET).
    pub attempts: u32,
}

impl Source for ObjectSource {
    fn fetch<'a>(
        &'a self,
        dest: &'a Path,
        progress: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
    ) -> crate::runner::BoxFuture<'a, Result<Fetched, FetchError>> {
        Box::pin(async move {
            let path = object_store::path::Path::from(self.key.as_str());
            let io = |e: std::io::Error| {
                FetchError::Permanent(format!("spool file {}: {e}", dest.display()))
            };
            let meta = match self.store.head(&path).await {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(FetchError::Permanent(format!(
                        "object {} does not exist",
                        self.key
                    )))
                }
                Err(e) => return Err(FetchError::Transient(e.to_string())),
            };
            let size = meta.size;
            if size > self.max_bytes {
                return Err(FetchError::TooLarge(format!(
                    "the source is {size} bytes; the limit is {} bytes",
                    self.max_bytes
                )));
            }
            let mut out = Fetched::default();
            let mut last = String::new();
            for attempt in 0..self.attempts.max(1) {
                out.attempts = attempt + 1;
                let have = tokio::fs::metadata(dest)
                    .await
                    .map(|m| m.len())
                    .unwrap_or(0);
                let have = if have > size { 0 } else { have };
                if have == size && size > 0 {
                    out.bytes = size;
                    return Ok(out);
                }
                if have > 0 {
                    out.resumes += 1;
                }
                let opts = GetOptions {
                    range: (have > 0).then_some(GetRange::Offset(have)),
                    if_match: meta.e_tag.clone(),
                    ..GetOptions::default()
                };
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(dest)
                    .await
                    .map_err(io)?;
                file.set_len(have).await.map_err(io)?;
                let mut file = tokio::io::BufWriter::with_capacity(fetch::WRITE_BUFFER, file);
                {
                    use tokio::io::AsyncSeekExt;
                    file.seek(std::io::SeekFrom::Start(have))
                        .await
                        .map_err(io)?;
                }
                let mut done = have;
                let r = match self.store.get_opts(&path, opts).await {
                    Ok(r) => r,
                    Err(e) => {
                        last = e.to_string();
                        continue;
                    }
                };
                let mut stream = r.into_stream();
                let mut broke = None;
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(b) => {
                            done = done.saturating_add(u64::try_from(b.len()).unwrap_or(u64::MAX));
                            if done > size {
                                return Err(FetchError::Permanent(format!(
                                    "object {} grew while it was read",
                                    self.key
                                )));
                            }
                            file.write_all(&b).await.map_err(io)?;
                            progress(done, Some(size));
                        }
                        Err(e) => {
                            broke = Some(e.to_string());
                            break;
                        }
                    }
                }
                file.flush().await.map_err(io)?;
                match broke {
                    None if done == size => {
                        out.bytes = size;
                        return Ok(out);
                    }
                    None => last = format!("the object stream ended after {done} of {size} bytes"),
                    Some(e) => last = e,
                }
            }
            Err(FetchError::Transient(format!(
                "reading s3 object {} failed after {} attempts: {last}",
                self.key, out.attempts
            )))
        })
    }
}

/// Buckets `s3://` import URLs may name, by bucket name.
#[derive(Default)]
pub struct Buckets {
    map: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Buckets {
    /// Registers (or replaces) a bucket.
    pub fn register(&self, name: &str, store: Arc<dyn ObjectStore>) {
        if let Ok(mut m) = self.map.write() {
            m.insert(name.to_string(), store);
        }
    }

    /// A registered bucket.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ObjectStore>> {
        self.map.read().ok().and_then(|m| m.get(name).cloned())
    }
}

/// Where uploads of `account` are kept.
pub fn upload_dir(spool: &Path, account: &str) -> PathBuf {
    spool.join("uploads").join(sanitize(account))
}

/// An account id as a single path component.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
