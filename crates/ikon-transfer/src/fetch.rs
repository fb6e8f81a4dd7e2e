//! Downloads an import source into a spool file: streamed (a bounded buffer, never the
//! whole file in memory), size-limited (Content-Length and the bytes actually received),
//! retried with back-off, and resumed with `Range` (guarded by `If-Range`) after a dropped
//! connection, also across task attempts (the partial file and its validator stay in the
//! spool). Every hop of a redirect chain is checked by the [`Guard`]: IP-literal hosts
//! before the request, host names inside the client's resolver, which hands the connector
//! exactly the addresses it checked (no second lookup an attacker could rebind). Proxies
//! from the environment are ignored (they would bypass the guard).

use crate::guard::Guard;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 10;
/// Write buffer between the network and the spool file.
pub const WRITE_BUFFER: usize = 1 << 20;
/// Sources report the bytes they received; at most this many of them may still be in their
/// write buffer (`WRITE_BUFFER`) or in tokio's file buffer (2 MiB, tokio::fs::File's
/// default maximum) rather than in the spool file.
pub const UNWRITTEN_MAX: u64 = WRITE_BUFFER as u64 + (2 << 20);

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Which addresses may be reached.
    pub guard: Guard,
    /// Largest file accepted.
    pub max_bytes: u64,
    /// Attempts (each after the first resumes).
    pub attempts: u32,
    /// Connect timeout and longest pause between reads.
    pub timeout: Duration,
    /// First back-off between attempts (doubles, at most 10 s).
    pub backoff: Duration,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Size of the complete file.
    pub bytes: u64,
    /// Times the download continued from a partial file with `Range`.
    pub resumes: u32,
    /// Attempts used.
    pub attempts: u32,
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL or a redirect points at a refused address (SSRF guard).
    #[error("{0}")]
    Refused(String),
    /// The file is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// Another try will not help (bad URL, 404, ...).
    #[error("{0}")]
    Permanent(String),
    /// The network failed every attempt; a later attempt may resume.
    #[error("{0}")]
    Transient(String),
}

/// The resolver's refusal, found again in the client's error chain.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Resolves host names and refuses the whole name when any of its addresses is refused;
/// the connector then uses exactly these addresses.
struct GuardedResolver {
    guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            for a in &addrs {
                if let Err(why) = guard.check(a.ip()) {
                    return Err(
                        Box::new(Refusal(format!("{host} resolves to {}: {why}", a.ip())))
                            as Box<dyn std::error::Error + Send + Sync>,
                    );
                }
            }
            let it: Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// Checks a URL's scheme and, for an IP-literal host, its address.
pub fn check_url(url: &Url, guard: &Guard) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Permanent(format!(
            "{url}: only http and https URLs can be fetched"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Permanent(
            "URLs with user names or passwords are not accepted".into(),
        ));
    }
    match url.host() {
        Some(url::Host::Ipv4(a)) => guard.check(IpAddr::V4(a)).map_err(FetchError::Refused),
        Some(url::Host::Ipv6(a)) => guard.check(IpAddr::V6(a)).map_err(FetchError::Refused),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(FetchError::Permanent(format!("{url} has no host"))),
    }
}

/// Resolves `url`'s host now and checks every address: the early answer ImportImage gives
/// (the fetch checks again at connection time).
pub async fn precheck(url: &str, guard: &Guard) -> Result<(), FetchError> {
    let url = Url::parse(url).map_err(|e| FetchError::Permanent(format!("{url}: {e}")))?;
    check_url(&url, guard)?;
    if let Some(url::Host::Domain(d)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(80);
        let lookup =
            tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host((d, port))).await;
        if let Ok(Ok(addrs)) = lookup {
            for a in addrs {
                guard.check(a.ip()).map_err(|why| {
                    FetchError::Refused(format!("{d} resolves to {}: {why}", a.ip()))
                })?;
            }
        }
        // A name that does not resolve now may resolve later: the fetch decides.
    }
    Ok(())
}

fn client(opts: &FetchOptions) -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            guard: opts.guard.clone(),
        }))
        .connect_timeout(opts.timeout)
        .read_timeout(opts.timeout)
        .user_agent(concat!("ikon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FetchError::Permanent(format!("HTTP client: {e}")))
}

/// The refusal in a client error's chain, if the resolver refused.
fn refusal(e: &reqwest::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return Some(r.0.clone());
        }
        cur = err.source();
    }
    None
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        s.push_str(": ");
        s.push_str(&err.to_string());
        cur = err.source();
    }
    s
}

fn validator_path(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".validator");
    PathBuf::from(p)
}

/// A strong ETag or a Last-Modified date: what `If-Range` sends back.
fn validator(h: &HeaderMap) -> Option<String> {
    let etag = h.get(ETAG).and_then(|v| v.to_str().ok());
    match etag {
        Some(e) if !e.starts_with("W/") => Some(e.to_string()),
        _ => h
            .get(LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// `bytes START-END/TOTAL` or `bytes */TOTAL`.
fn content_range(h: &HeaderMap) -> Option<(Option<u64>, Option<u64>)> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?.trim();
    let rest = v.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = if range.trim() == "*" {
        None
    } else {
        Some(range.split_once('-')?.0.trim().parse().ok()?)
    };
    Some((start, total))
}

/// One pass's outcome.
enum Pass {
    Done(u64),
    Retry(String),
}

/// Downloads `url` into `dest` (see the module documentation). `progress(bytes, total)`.
pub async fn fetch_http(
    url: &str,
    dest: &Path,
    opts: &FetchOptions,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<Fetched, FetchError> {
    let start = Url::parse(url).map_err(|e| FetchError::Permanent(format!("{url}: {e}")))?;
    check_url(&start, &opts.guard)?;
    let client = client(opts)?;
    let mut out = Fetched::default();
    let mut last = String::new();
    let mut wait = opts.backoff;
    for attempt in 0..opts.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
        out.attempts = attempt + 1;
        match one_pass(&client, &start, dest, opts, progress, &mut out).await? {
            Pass::Done(n) => {
                out.bytes = n;
                let _ = tokio::fs::remove_file(validator_path(dest)).await;
                return Ok(out);
            }
            Pass::Retry(why) => {
                tracing::warn!(url = %start, attempt = attempt + 1, "import download interrupted: {why}");
                last = why;
            }
        }
    }
    Err(FetchError::Transient(format!(
        "downloading {start} failed after {} attempts: {last}",
        out.attempts
    )))
}

async fn one_pass(
    client: &reqwest::Client,
    start: &Url,
    dest: &Path,
    opts: &FetchOptions,
    progress: &(dyn Fn(u64, Option<u64>) + Send + Sync),
    out: &mut Fetched,
) -> Result<Pass, FetchError> {
    let io =
        |e: std::io::Error| FetchError::Permanent(format!("spool file {}: {e}", dest.display()));
    let mut have = match tokio::fs::metadata(dest).await {
        Ok(m) => m.len(),
        Err(_) => 0,
    };
    let saved = tokio::fs::read_to_string(validator_path(dest)).await.ok();
    if have > 0 && saved.is_none() {
        // A partial file whose version cannot be confirmed is not resumed.
        have = 0;
    }
    let mut url = start.clone();
    let mut hops = 0;
    let resp = loop {
        check_url(&url, &opts.guard)?;
        let mut req = client.get(url.clone());
        if have > 0 {
            req = req.header(RANGE, format!("bytes={have}-"));
            if let Some(v) = &saved {
                req = req.header(IF_RANGE, v.as_str());
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(r) = refusal(&e) {
                    return Err(FetchError::Refused(r));
                }
                if e.is_builder() {
                    return Err(FetchError::Permanent(describe(&e)));
                }
                return Ok(Pass::Retry(describe(&e)));
            }
        };
        if resp.status().is_redirection() {
            let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Err(FetchError::Permanent(format!(
                    "{url} answered {} without a Location",
                    resp.status()
                )));
            };
            let next = url
                .join(loc)
                .map_err(|e| FetchError::Permanent(format!("redirect to {loc:?}: {e}")))?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(FetchError::Permanent(format!(
                    "more than {MAX_REDIRECTS} redirects from {start}"
                )));
            }
            url = next;
            continue;
        }
        break resp;
    };
    let status = resp.status();
    let mut total: Option<u64>;
    match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => {
            let (from, t) = content_range(resp.headers()).unwrap_or((None, None));
            if from != Some(have) {
                // Not the range asked for: start over.
                tokio::fs::write(dest, b"").await.map_err(io)?;
                let _ = tokio::fs::remove_file(validator_path(dest)).await;
                return Ok(Pass::Retry(format!(
                    "{url} answered a range starting at {from:?} instead of {have}"
                )));
            }
            total = t;
            out.resumes += 1;
        }
        StatusCode::OK | StatusCode::PARTIAL_CONTENT => {
            have = 0;
            total = resp.content_length();
        }
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            if let Some((_, Some(t))) = content_range(resp.headers()) {
                if t == have {
                    return Ok(Pass::Done(have));
                }
            }
            tokio::fs::write(dest, b"").await.map_err(io)?;
            let _ = tokio::fs::remove_file(validator_path(dest)).await;
            return Ok(Pass::Retry(format!(
                "{url}: the partial download no longer fits the file"
            )));
        }
        s if s.is_server_error()
            || s == StatusCode::REQUEST_TIMEOUT
            || s == StatusCode::TOO_MANY_REQUESTS =>
        {
            return Ok(Pass::Retry(format!("{url} answered HTTP {s}")));
        }
        s => {
            return Err(FetchError::Permanent(format!("{url} answered HTTP {s}")));
        }
    }
    if let Some(t) = total {
        if t > opts.max_bytes {
            return Err(FetchError::TooLarge(format!(
                "the source is {t} bytes; the limit is {} bytes",
                opts.max_bytes
            )));
        }
    }
    if total.is_none() && have > 0 {
        total = None;
    }
    if let Some(v) = validator(resp.headers()) {
        tokio::fs::write(validator_path(dest), v.as_bytes())
            .await
            .map_err(io)?;
    } else {
        let _ = tokio::fs::remove_file(validator_path(dest)).await;
    }
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dest)
        .await
        .map_err(io)?;
    file.set_len(have).await.map_err(io)?;
    let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    {
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(have))
            .await
            .map_err(io)?;
    }
    let mut resp = resp;
    let result = loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                let n = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                have = have.saturating_add(n);
                if have > opts.max_bytes {
                    let _ = file.flush().await;
                    return Err(FetchError::TooLarge(format!(
                        "the source is larger than the limit of {} bytes",
                        opts.max_bytes
                    )));
                }
                file.write_all(&bytes).await.map_err(io)?;
                progress(have, total);
            }
            Ok(None) => break None,
            Err(e) => break Some(describe(&e)),
        }
    };
    // No fsync: the spool is scratch, read back at once from the page cache and deleted;
    // after a host crash a resumed download trusts the length the filesystem kept.
    file.flush().await.map_err(io)?;
    if let Some(why) = result {
        return Ok(Pass::Retry(format!(
            "connection lost after {have} bytes: {why}"
        )));
    }
    match total {
        Some(t) if have < t => Ok(Pass::Retry(format!(
            "connection closed after {have} of {t} bytes"
        ))),
        _ => Ok(Pass::Done(have)),
    }
}
