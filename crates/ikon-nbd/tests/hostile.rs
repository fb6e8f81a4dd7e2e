//! Hostile clients: wrong handshake flags, absurd option and payload lengths, malformed
//! option data, bad request magic and out-of-range requests end in a clear refusal or a
//! closed connection, never a panic or a large allocation, and the server keeps serving.

use ikon_disk::{BlockDevice, Extent, ExtentKind, WritableDevice};
use ikon_nbd::{proto, BoxFuture, Exports};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Zero;

impl WritableDevice for Zero {
    fn write_all_at(&self, _: &[u8], _: u64) -> ikon_disk::Result<()> {
        Ok(())
    }
    fn write_zeroes(&self, _: u64, _: u64) -> ikon_disk::Result<()> {
        Ok(())
    }
    fn flush(&self) -> ikon_disk::Result<()> {
        Ok(())
    }
}

impl BlockDevice for Zero {
    fn len(&self) -> u64 {
        1 << 20
    }
    fn read_exact_at(&self, buf: &mut [u8], _: u64) -> ikon_disk::Result<()> {
        buf.fill(0);
        Ok(())
    }
    fn as_writable(&self) -> Option<&dyn WritableDevice> {
        Some(self)
    }
    fn map(&self, offset: u64, len: u64) -> ikon_disk::Result<Vec<Extent>> {
        Ok(vec![Extent {
            offset,
            len,
            kind: ExtentKind::Zero,
            compressed: false,
        }])
    }
}

struct Any;

impl Exports for Any {
    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn BlockDevice>, String>> {
        Box::pin(async move {
            if name == "x" {
                let d: Arc<dyn BlockDevice> = Arc::new(Zero);
                Ok(d)
            } else {
                Err("no".to_string())
            }
        })
    }
}

async fn server() -> (u16, tokio::sync::oneshot::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ikon_nbd::serve(l, Arc::new(Any), async move {
        let _ = rx.await;
    }));
    (port, tx)
}

async fn hello(port: u16, flags: u32) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut greet = [0u8; 18];
    s.read_exact(&mut greet)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&greet[..8], b"NBDMAGIC");
    s.write_u32(flags).await.unwrap_or_else(|e| panic!("{e}"));
    s
}

async fn option(s: &mut TcpStream, opt: u32, data: &[u8]) {
    s.write_u64(proto::IHAVEOPT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_u32(opt).await.unwrap_or_else(|e| panic!("{e}"));
    s.write_u32(u32::try_from(data.len()).unwrap_or(0))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(data).await.unwrap_or_else(|e| panic!("{e}"));
}

/// Reads one option reply: (reply type, data).
async fn reply(s: &mut TcpStream) -> (u32, Vec<u8>) {
    assert_eq!(s.read_u64().await.unwrap_or(0), proto::REPLY_MAGIC);
    let _opt = s.read_u32().await.unwrap_or(0);
    let kind = s.read_u32().await.unwrap_or(0);
    let len = s.read_u32().await.unwrap_or(0);
    let mut d = vec![0u8; usize::try_from(len).unwrap_or(0)];
    s.read_exact(&mut d).await.unwrap_or_else(|e| panic!("{e}"));
    (kind, d)
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn go(name: &str) -> Vec<u8> {
    let mut d = u32::try_from(name.len())
        .unwrap_or(0)
        .to_be_bytes()
        .to_vec();
    d.extend_from_slice(name.as_bytes());
    d.extend_from_slice(&0u16.to_be_bytes());
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_refused() {
    let (port, stop) = server().await;
    // Not fixed newstyle: hung up.
    let mut s = hello(port, 0).await;
    assert!(closed(&mut s).await);
    // An option claiming 4 GiB of data: hung up without reading or allocating it.
    let mut s = hello(port, 3).await;
    s.write_u64(proto::IHAVEOPT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_u32(proto::opt::GO)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_u32(u32::MAX)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(closed(&mut s).await);
    // Malformed GO data (name length past the end): ERR_INVALID, then still negotiating.
    let mut s = hello(port, 3).await;
    option(&mut s, proto::opt::GO, &[0, 0, 0, 200, b'x']).await;
    assert_eq!(reply(&mut s).await.0, proto::rep::ERR_INVALID);
    // Unknown export and unknown option: errors, no disconnect.
    option(&mut s, proto::opt::GO, &go("nope")).await;
    assert_eq!(reply(&mut s).await.0, proto::rep::ERR_UNKNOWN);
    option(&mut s, 99, &[]).await;
    assert_eq!(reply(&mut s).await.0, proto::rep::ERR_UNSUP);
    // Metadata contexts before structured replies are refused.
    let mut meta = go("x");
    meta.truncate(meta.len() - 2);
    meta.extend_from_slice(&0u32.to_be_bytes());
    option(&mut s, proto::opt::SET_META_CONTEXT, &meta).await;
    assert_eq!(reply(&mut s).await.0, proto::rep::ERR_INVALID);
    // A good GO enters transmission.
    option(&mut s, proto::opt::GO, &go("x")).await;
    let mut saw_ack = false;
    for _ in 0..4 {
        let (k, _) = reply(&mut s).await;
        if k == proto::rep::ACK {
            saw_ack = true;
            break;
        }
        assert_eq!(k, proto::rep::INFO);
    }
    assert!(saw_ack);
    // A read past the end: EINVAL, connection kept.
    let req = |s: &mut Vec<u8>, kind: u16, off: u64, len: u32| {
        s.extend_from_slice(&proto::REQUEST_MAGIC.to_be_bytes());
        s.extend_from_slice(&0u16.to_be_bytes());
        s.extend_from_slice(&kind.to_be_bytes());
        s.extend_from_slice(&7u64.to_be_bytes());
        s.extend_from_slice(&off.to_be_bytes());
        s.extend_from_slice(&len.to_be_bytes());
    };
    let mut b = Vec::new();
    req(&mut b, proto::cmd::READ, u64::MAX - 10, 4096);
    s.write_all(&b).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.read_u32().await.unwrap_or(0), proto::SIMPLE_REPLY_MAGIC);
    assert_eq!(s.read_u32().await.unwrap_or(0), proto::errno::EINVAL);
    assert_eq!(s.read_u64().await.unwrap_or(0), 7);
    // A write announcing 3 GiB: hung up, nothing allocated.
    let mut b = Vec::new();
    req(&mut b, proto::cmd::WRITE, 0, 3 << 30);
    s.write_all(&b).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(closed(&mut s).await);
    // Bad request magic: hung up.
    let mut s2 = hello(port, 3).await;
    option(&mut s2, proto::opt::EXPORT_NAME, b"x").await;
    let mut info = [0u8; 10];
    s2.read_exact(&mut info)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s2.write_all(&[0xde; 28])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(closed(&mut s2).await);
    // Still serving.
    let mut s3 = hello(port, 3).await;
    option(&mut s3, proto::opt::LIST, &[]).await;
    assert_eq!(reply(&mut s3).await, (proto::rep::ACK, Vec::new()));
    let _ = stop.send(());
}
