//! The import fetcher against a small HTTP server started in the test on 127.0.0.1: a
//! download that loses its connection half-way resumes with Range (If-Range) and yields the
//! exact file; the size limit holds with and without Content-Length; redirects are
//! re-checked at every hop (to another loopback address, to the metadata address, to a
//! IPv4-mapped private address); the resolver refuses host names that resolve to
//! refused addresses; and the S3 source (object_store's in-memory store) streams and
//! resumes too.

use ikon_transfer::fetch::{fetch_http, FetchError, FetchOptions};
use ikon_transfer::guard::Guard;
use ikon_transfer::source::{ObjectSource, Source};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The test server's file: 3 MiB of a byte pattern.
fn payload() -> Vec<u8> {
    (0..3u32 << 20)
        .map(|i| u8::try_from((i * 7 + i / 4096) % 251).unwrap_or(0))
        .collect()
}

/// Requests seen: (path, If-Range).
type Hits = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    port: u16,
    /// GET requests seen per path.
    hits: Hits,
}

async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        buf.push(b[0]);
        if buf.len() > 16384 {
            return None;
        }
    }
    String::from_utf8(buf).ok()
}

async fn serve(
    mut s: TcpStream,
    port: u16,
    data: Arc<Vec<u8>>,
    drops: Arc<AtomicUsize>,
    hits: Hits,
) {
    let Some(head) = read_head(&mut s).await else {
        return;
    };
    let mut lines = head.lines();
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let range = lines
        .clone()
        .find_map(|l| {
            l.strip_prefix("Range: bytes=")
                .or_else(|| l.strip_prefix("range: bytes="))
        })
        .and_then(|r| r.trim().trim_end_matches('-').parse::<usize>().ok());
    let if_range = lines
        .find_map(|l| {
            l.strip_prefix("If-Range: ")
                .or_else(|| l.strip_prefix("if-range: "))
        })
        .map(str::to_string);
    if let Ok(mut h) = hits.lock() {
        h.push((path.clone(), if_range));
    }
    let redirect = |to: String| {
        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let resp_head = match path.as_str() {
        "/redirect-ok" => redirect("/file".into()),
        "/redirect-loopback" => redirect(format!("http://127.0.0.2:{port}/file")),
        "/redirect-metadata" => redirect("http://169.254.169.254/latest/meta-data/".into()),
        "/redirect-mapped" => redirect(format!("http://[::ffff:10.0.0.1]:{port}/file")),
        "/redirect-loop" => redirect("/redirect-loop".into()),
        "/missing" => {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
        "/huge" => {
            "HTTP/1.1 200 OK\r\nContent-Length: 107374182400\r\nConnection: close\r\n\r\n".into()
        }
        "/unsized" => {
            // No Content-Length: the limit must hold while streaming.
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                .await;
            let _ = s.write_all(&data).await;
            return;
        }
        "/file" | "/drop" => {
            let start = range.unwrap_or(0).min(data.len());
            let mut body = &data[start..];
            let head = if range.is_some() {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n",
                    body.len(),
                    data.len() - 1,
                    data.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            };
            let _ = s.write_all(head.as_bytes()).await;
            // /drop: the first two responses die after 1 MiB + 5 bytes.
            if path == "/drop" && drops.fetch_add(1, Ordering::SeqCst) < 2 {
                body = &body[..body.len().min((1 << 20) + 5)];
                let _ = s.write_all(body).await;
                let _ = s.flush().await;
                return;
            }
            let _ = s.write_all(body).await;
            return;
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = s.write_all(resp_head.as_bytes()).await;
}

async fn server() -> Server {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let data = Arc::new(payload());
    let drops = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s, port, data.clone(), drops.clone(), h.clone()));
        }
    });
    Server { port, hits }
}

fn opts(allow: &[&str], max: u64) -> FetchOptions {
    FetchOptions {
        guard: Guard::new(allow).unwrap_or_else(|e| panic!("{e}")),
        max_bytes: max,
        attempts: 4,
        timeout: Duration::from_secs(10),
        backoff: Duration::from_millis(10),
    }
}

fn dest(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ikon-fetch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&d);
    d
}

fn noop(_: u64, _: Option<u64>) {}

#[tokio::test]
async fn resumes_after_a_dropped_connection() {
    let srv = server().await;
    let d = dest("drop");
    let got = fetch_http(
        &format!("http://127.0.0.1:{}/drop", srv.port),
        &d,
        &opts(&["127.0.0.1"], 1 << 30),
        &noop,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.resumes, 2, "{got:?}");
    assert_eq!(got.bytes, 3 << 20);
    let file = std::fs::read(&d).unwrap_or_default();
    assert!(
        file == payload(),
        "the resumed file differs from the source"
    );
    let hits = srv.hits.lock().map(|h| h.clone()).unwrap_or_default();
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert_eq!(hits[0].1, None, "first request is not ranged");
    assert_eq!(
        hits[1].1.as_deref(),
        Some("\"v1\""),
        "resume sends If-Range with the ETag"
    );
    let _ = std::fs::remove_file(&d);
}

#[tokio::test]
async fn same_host_redirect_is_followed() {
    let srv = server().await;
    let d = dest("redir");
    let got = fetch_http(
        &format!("http://127.0.0.1:{}/redirect-ok", srv.port),
        &d,
        &opts(&["127.0.0.1"], 1 << 30),
        &noop,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.bytes, 3 << 20);
    let _ = std::fs::remove_file(&d);
}

#[tokio::test]
async fn size_limit_with_and_without_content_length() {
    let srv = server().await;
    for path in ["huge", "unsized", "file"] {
        let d = dest(path);
        let r = fetch_http(
            &format!("http://127.0.0.1:{}/{path}", srv.port),
            &d,
            &opts(&["127.0.0.1"], 1 << 20),
            &noop,
        )
        .await;
        assert!(matches!(r, Err(FetchError::TooLarge(_))), "{path}: {r:?}");
        let _ = std::fs::remove_file(&d);
    }
}

#[tokio::test]
async fn refused_addresses_and_redirects() {
    let srv = server().await;
    let p = srv.port;
    // Not allow-listed at all.
    let r = fetch_http(
        &format!("http://127.0.0.1:{p}/file"),
        &dest("a"),
        &opts(&[], 1 << 30),
        &noop,
    )
    .await;
    assert!(matches!(r, Err(FetchError::Refused(_))), "{r:?}");
    // A host name that resolves to loopback: refused by the resolver, not by a pre-check.
    let r = fetch_http(
        &format!("http://localhost:{p}/file"),
        &dest("b"),
        &opts(&[], 1 << 30),
        &noop,
    )
    .await;
    assert!(
        matches!(&r, Err(FetchError::Refused(m)) if m.contains("localhost")),
        "{r:?}"
    );
    for (path, what) in [
        ("redirect-loopback", "127.0.0.2"),
        ("redirect-metadata", "169.254.169.254"),
        ("redirect-mapped", "10.0.0.1"),
    ] {
        let before = srv.hits.lock().map(|h| h.len()).unwrap_or(0);
        let r = fetch_http(
            &format!("http://127.0.0.1:{p}/{path}"),
            &dest(path),
            &opts(&["127.0.0.1"], 1 << 30),
            &noop,
        )
        .await;
        match &r {
            Err(FetchError::Refused(m)) => assert!(m.contains(what), "{path}: {m}"),
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
        let after = srv.hits.lock().map(|h| h.len()).unwrap_or(0);
        assert_eq!(
            after,
            before + 1,
            "{path}: only the first hop reached a server"
        );
    }
    let r = fetch_http(
        &format!("http://127.0.0.1:{p}/redirect-loop"),
        &dest("loop"),
        &opts(&["127.0.0.1"], 1 << 30),
        &noop,
    )
    .await;
    assert!(matches!(r, Err(FetchError::Permanent(_))), "{r:?}");
    let r = fetch_http(
        &format!("http://127.0.0.1:{p}/missing"),
        &dest("missing"),
        &opts(&["127.0.0.1"], 1 << 30),
        &noop,
    )
    .await;
    assert!(
        matches!(&r, Err(FetchError::Permanent(m)) if m.contains("404")),
        "{r:?}"
    );
    for u in [
        "ftp://127.0.0.1/x",
        "http://user:pw@127.0.0.1/x",
        "http://[fd00:ec2::254]/latest",
        "http://169.254.169.254/",
    ] {
        let r = fetch_http(u, &dest("bad"), &opts(&["127.0.0.1"], 1 << 30), &noop).await;
        assert!(r.is_err(), "{u}: {r:?}");
    }
}

#[tokio::test]
async fn s3_source_streams_and_resumes() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let data = payload();
    store
        .put(
            &object_store::path::Path::from("images/disk.raw"),
            data.clone().into(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let src = ObjectSource {
        store: store.clone(),
        key: "images/disk.raw".into(),
        max_bytes: 1 << 30,
        attempts: 2,
    };
    let d = dest("s3");
    // A partial file from an earlier attempt is continued, not restarted.
    std::fs::write(&d, &data[..1000]).unwrap_or_else(|e| panic!("{e}"));
    let got = src.fetch(&d, &noop).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.resumes, 1);
    assert!(std::fs::read(&d).unwrap_or_default() == data);
    let small = ObjectSource {
        store: store.clone(),
        key: "images/disk.raw".into(),
        max_bytes: 1000,
        attempts: 1,
    };
    assert!(matches!(
        small.fetch(&dest("s3small"), &noop).await,
        Err(FetchError::TooLarge(_))
    ));
    let missing = ObjectSource {
        store,
        key: "nope".into(),
        max_bytes: 1 << 30,
        attempts: 1,
    };
    assert!(matches!(
        missing.fetch(&dest("s3none"), &noop).await,
        Err(FetchError::Permanent(_))
    ));
    let _ = std::fs::remove_file(&d);
}

/// A process killed while its follower punched the spool leaves holes that read as zeros,
/// the validator and the follow marker. The next attempt must not resume onto the holes.
#[tokio::test]
async fn a_spool_left_by_a_dead_follower_is_not_resumed() {
    use ikon_transfer::download::download_following;
    use ikon_transfer::source::HttpSource;
    let srv = server().await;
    let d = dest("dead-follower");
    let store_dir = std::env::temp_dir().join(format!("ikon-fetch-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store_dir);
    let store = ikon_store::Store::open_local(&store_dir, 1 << 20)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let session = store.begin_write().await.unwrap_or_else(|e| panic!("{e}"));
    // What the dead process left: the first 2 MiB punched (zeros), the validator it saved
    // and its marker.
    let mut partial = payload();
    partial.truncate(2 << 20);
    partial[..1 << 20].fill(0);
    std::fs::write(&d, &partial).unwrap_or_else(|e| panic!("{e}"));
    let mut v = d.as_os_str().to_owned();
    v.push(".validator");
    std::fs::write(&v, "\"v1\"").unwrap_or_else(|e| panic!("{e}"));
    let mut m = d.as_os_str().to_owned();
    m.push(".following");
    std::fs::write(&m, "").unwrap_or_else(|e| panic!("{e}"));

    let source = HttpSource {
        url: format!("http://127.0.0.1:{}/file", srv.port),
        options: opts(&["127.0.0.1"], 1 << 30),
    };
    let got = download_following(&session, &source, &d, &noop)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut file = vec![0u8; 3 << 20];
    match &got.stored {
        Some(disk) => {
            use ikon_disk::BlockDevice;
            disk.read_exact_at(&mut file, 0)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        None => file = std::fs::read(&d).unwrap_or_default(),
    }
    assert!(
        file == payload(),
        "the download resumed onto the dead follower's holes"
    );
    let hits = srv.hits.lock().map(|h| h.clone()).unwrap_or_default();
    assert_eq!(hits[0].1, None, "the first request starts over: {hits:?}");
    ikon_transfer::download::drop_spool(&d).await;
    assert!(
        !std::path::Path::new(&m).exists(),
        "the marker goes with the spool"
    );
    let _ = std::fs::remove_dir_all(&store_dir);
}
