//! Object-store locations: the S3 connection ([`S3Options`]: endpoint, region, keys, plain
//! HTTP), store locations (`s3://bucket/prefix` or a directory, [`Location`]), and
//! [`Bucket`], a handle on one bucket for whole files (export files), uploaded in parts.
//!
//! Every S3 client built here retries 5xx answers, timeouts and connection failures with
//! exponential backoff (object_store's `RetryConfig`), and uses path-style requests, which
//! every S3 engine accepts (Ceph RGW, Garage, MinIO, s3s).

use crate::error::{Error, ErrorKind, Result};
use crate::Store;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Part size of multipart uploads (S3 allows 5 MiB to 5 GiB per part, 10,000 parts: with
/// 16 MiB parts a file may reach 156 GiB).
pub const PART_SIZE: usize = 16 << 20;
/// Parts uploaded at once (memory: this many parts in flight plus one being filled).
const PARTS_IN_FLIGHT: usize = 4;
/// Files smaller than this are sent in one PUT.
const SINGLE_PUT_MAX: u64 = 8 << 20;

/// How to reach the S3 engine. Unset fields fall back to the usual environment variables
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Options {
    /// Endpoint URL, e.g. `http://127.0.0.1:7480` (None: AWS itself or the environment).
    pub endpoint: Option<String>,
    /// Region name the engine expects in signatures (default `us-east-1`).
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints (default: only when the endpoint is on loopback).
    pub allow_http: Option<bool>,
    /// Retries of a failed request (5xx, timeouts, resets) before giving up (default 10).
    pub max_retries: Option<usize>,
    /// Seconds one request may take from start to end of its body (default 30), so a stalled
    /// engine is retried, then given up on, rather than waited for.
    pub timeout_secs: Option<u64>,
    /// Seconds to connect (default 5).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds a request may spend being retried in all (default 120).
    pub retry_timeout_secs: Option<u64>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl S3Options {
    /// The options with the environment filled in for unset fields.
    pub fn resolved(&self) -> S3Options {
        S3Options {
            endpoint: self.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL")),
            region: self
                .region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: self
                .access_key_id
                .clone()
                .or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: self
                .secret_access_key
                .clone()
                .or_else(|| env("AWS_SECRET_ACCESS_KEY")),
            allow_http: self.allow_http,
            max_retries: self.max_retries,
            timeout_secs: self.timeout_secs,
            connect_timeout_secs: self.connect_timeout_secs,
            retry_timeout_secs: self.retry_timeout_secs,
        }
    }

    /// An object store over `bucket` (nothing is sent until it is used).
    pub fn bucket_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        check_bucket_name(bucket)?;
        let o = self.resolved();
        let endpoint = o.endpoint.clone().unwrap_or_default();
        let allow_http = o
            .allow_http
            .unwrap_or_else(|| endpoint.is_empty() || is_loopback_url(&endpoint));
        let retry = object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: o.max_retries.unwrap_or(10),
            retry_timeout: Duration::from_secs(o.retry_timeout_secs.unwrap_or(120)),
        };
        let client = object_store::ClientOptions::new()
            .with_timeout(Duration::from_secs(o.timeout_secs.unwrap_or(30)))
            .with_connect_timeout(Duration::from_secs(o.connect_timeout_secs.unwrap_or(5)));
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(o.region.unwrap_or_else(|| "us-east-1".into()))
            .with_virtual_hosted_style_request(false)
            .with_allow_http(allow_http)
            .with_client_options(client.with_allow_http(allow_http))
            .with_retry(retry);
        if !endpoint.is_empty() {
            b = b.with_endpoint(endpoint);
        }
        if let Some(k) = o.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(s) = o.secret_access_key {
            b = b.with_secret_access_key(s);
        }
        let s3 = b
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("S3 bucket {bucket}: {e}")))?;
        Ok(Arc::new(s3))
    }
}

/// Checks an S3 bucket name (3–63 lower-case letters, digits, dots and hyphens).
pub fn check_bucket_name(bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{bucket:?} is not a bucket name (3-63 lower-case letters, digits, '.', '-')"),
        ))
    }
}

/// Where a chunk store lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A local directory.
    Dir(PathBuf),
    /// A bucket of the S3 engine, under an optional key prefix.
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix (no leading or trailing `/`; may be empty).
        prefix: String,
    },
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a directory path (absolute, or `file://…`).
    pub fn parse(s: &str) -> Result<Location> {
        let bad = |why: &str| Error::new(ErrorKind::InvalidInput, format!("store {s:?}: {why}"));
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket_name(bucket).map_err(|e| bad(&e.context))?;
            let prefix = prefix.trim_matches('/').to_string();
            if !prefix.is_empty()
                && !prefix.split('/').all(|c| {
                    !c.is_empty()
                        && c != "."
                        && c != ".."
                        && c.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                })
            {
                return Err(bad(
                    "the prefix may hold letters, digits, '-', '_', '.' and '/'",
                ));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.is_empty() || s.contains("://") && !s.starts_with("file://") {
            return Err(bad("expected s3://bucket/prefix or a directory"));
        }
        Ok(Location::Dir(PathBuf::from(path)))
    }

    /// Opens (creating if needed) the chunk store at this location.
    pub async fn open(&self, s3: &S3Options, chunk_size: u32) -> Result<Store> {
        match self {
            Location::Dir(d) => Store::open_local(d, chunk_size).await,
            Location::S3 { bucket, prefix } => {
                let os = s3.bucket_store(bucket)?;
                let place = format!(
                    "s3:{}/{bucket}/{prefix}",
                    s3.resolved()
                        .endpoint
                        .unwrap_or_default()
                        .trim_end_matches('/')
                );
                let os: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    os
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(
                        os,
                        ObjPath::from(prefix.as_str()),
                    ))
                };
                Store::open_object_store_at(os, chunk_size, Some(place)).await
            }
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "{}", d.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

fn obj_err(what: impl std::fmt::Display, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => {
            Error::new(ErrorKind::NotFound, format!("{what}: not found"))
        }
        other => Error::new(ErrorKind::Backend, format!("{what}: {other}")),
    }
}

/// One bucket, for whole files (export files, import sources).
#[derive(Clone, Debug)]
pub struct Bucket {
    name: String,
    os: Arc<dyn ObjectStore>,
}

impl Bucket {
    /// A bucket of the S3 engine.
    pub fn s3(s3: &S3Options, name: &str) -> Result<Bucket> {
        Ok(Bucket {
            name: name.to_string(),
            os: s3.bucket_store(name)?,
        })
    }

    /// Any object store as a bucket (tests).
    pub fn from_object_store(name: &str, os: Arc<dyn ObjectStore>) -> Bucket {
        Bucket {
            name: name.to_string(),
            os,
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the bucket exists and answers (a listing of one absent prefix).
    pub async fn check(&self) -> Result<()> {
        self.os
            .list_with_delimiter(Some(&ObjPath::from("ikon-probe-absent")))
            .await
            .map(|_| ())
            .map_err(|e| {
                let msg = e.to_string();
                if msg.contains("NoSuchBucket") || matches!(e, object_store::Error::NotFound { .. })
                {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("bucket {} does not exist", self.name),
                    )
                } else {
                    Error::new(ErrorKind::Backend, format!("bucket {}: {msg}", self.name))
                }
            })
    }

    /// Uploads a local file as `key`: one PUT when small, else a multipart upload with
    /// [`PART_SIZE`] parts ([`PARTS_IN_FLIGHT`] at once; aborted on failure).
    /// `progress(done, total)` follows the bytes sent. Returns the bytes uploaded.
    pub async fn upload_file(
        &self,
        key: &str,
        file: &Path,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<u64> {
        use tokio::io::AsyncReadExt;
        let loc = ObjPath::from(key);
        let mut f = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::io(format!("opening {}", file.display()), e))?;
        let total = f
            .metadata()
            .await
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?
            .len();
        if total < SINGLE_PUT_MAX {
            let mut data = Vec::new();
            f.read_to_end(&mut data)
                .await
                .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
            self.os
                .put(&loc, data.into())
                .await
                .map_err(|e| obj_err(format!("uploading {key}"), e))?;
            progress(total, total);
            return Ok(total);
        }
        let upload = self
            .os
            .put_multipart(&loc)
            .await
            .map_err(|e| obj_err(format!("starting the upload of {key}"), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; PART_SIZE];
        let mut done = 0u64;
        let result: Result<()> = async {
            loop {
                let n = f
                    .read(&mut buf)
                    .await
                    .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| obj_err(format!("uploading {key}"), e))?;
                w.write(&buf[..n]);
                done += n as u64;
                progress(done, total);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                w.finish()
                    .await
                    .map_err(|e| obj_err(format!("finishing the upload of {key}"), e))?;
                Ok(done)
            }
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }

    /// Downloads `key` into a local file (streamed); returns its size.
    pub async fn download_file(&self, key: &str, file: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let r = self
            .os
            .get(&ObjPath::from(key))
            .await
            .map_err(|e| obj_err(format!("downloading {key}"), e))?;
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| Error::io(format!("creating {}", file.display()), e))?;
        let mut stream = r.into_stream();
        let mut n = 0u64;
        while let Some(b) = stream
            .try_next()
            .await
            .map_err(|e| obj_err(format!("downloading {key}"), e))?
        {
            out.write_all(&b)
                .await
                .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
            n += b.len() as u64;
        }
        out.flush()
            .await
            .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
        Ok(n)
    }

    /// Keys and sizes under `prefix` (empty: the whole bucket), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let p = (!prefix.is_empty()).then(|| ObjPath::from(prefix));
        let mut v: Vec<(String, u64)> = self
            .os
            .list(p.as_ref())
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(|e| obj_err(format!("listing {}", self.name), e))?;
        v.sort();
        Ok(v)
    }

    /// Deletes `key` (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.os.delete(&ObjPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(obj_err(format!("deleting {key}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://ikon-a/region/gz").ok(),
            Some(Location::S3 {
                bucket: "ikon-a".into(),
                prefix: "region/gz".into()
            })
        );
        assert_eq!(
            Location::parse("s3://ikon-a").ok(),
            Some(Location::S3 {
                bucket: "ikon-a".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            Location::parse("/var/lib/ikon/gz").ok(),
            Some(Location::Dir("/var/lib/ikon/gz".into()))
        );
        for bad in ["s3://A", "s3://ab", "s3://ok-bucket/../x", "gs://x/y", ""] {
            assert!(Location::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(is_loopback_url("http://127.0.0.1:7480"));
        assert!(is_loopback_url("http://localhost:7480/"));
        assert!(is_loopback_url("http://[::1]:7480"));
        assert!(!is_loopback_url("http://10.0.0.1:7480"));
    }
}
