//! An NBD server over Ikon block devices: fixed newstyle negotiation (NBD_OPT_GO / INFO /
//! EXPORT_NAME, LIST answering with no entries, structured replies, the `base:allocation`
//! metadata context), then read, write, flush, trim, write-zeroes and block status, each
//! device call run on a blocking thread. Which device an export name opens — and whether the
//! connection may have it — is the [`Exports`] implementation's decision; a refused or
//! unknown name gets the same "unknown export" answer, so names cannot be probed.
//!
//! Hostile clients: option and request payloads are bounded ([`proto::MAX_OPTION`],
//! [`proto::MAX_PAYLOAD`]), offsets are checked against the export size with checked
//! arithmetic, and malformed framing closes the connection.

pub mod proto;
mod transmit;

use ikon_disk::BlockDevice;
use proto::{opt, rep, Reader};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Resolves export names to devices.
pub trait Exports: Send + Sync + 'static {
    /// The device for `name`, or why not (logged, never sent to the client).
    fn open<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Arc<dyn BlockDevice>, String>>;
}

/// What went wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("NBD connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The client broke the protocol.
    #[error("NBD protocol violation: {0}")]
    Protocol(String),
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

fn protocol(msg: impl Into<String>) -> Error {
    Error::Protocol(msg.into())
}

/// Accepts connections until `stop` completes; each connection runs on its own task.
pub async fn serve(
    listener: TcpListener,
    exports: Arc<dyn Exports>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    let exports = exports.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(sock, exports).await {
                            tracing::info!(%peer, "nbd connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("nbd accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

pub(crate) type Rd = BufReader<tokio::net::tcp::OwnedReadHalf>;
pub(crate) type Wr = BufWriter<tokio::net::tcp::OwnedWriteHalf>;

/// Negotiated state.
#[derive(Default)]
pub(crate) struct Session {
    pub(crate) structured: bool,
    pub(crate) base_allocation: bool,
}

async fn reply(w: &mut Wr, option: u32, kind: u32, data: &[u8]) -> Result<()> {
    w.write_u64(proto::REPLY_MAGIC).await?;
    w.write_u32(option).await?;
    w.write_u32(kind).await?;
    w.write_u32(u32::try_from(data.len()).map_err(|_| protocol("reply too long"))?)
        .await?;
    w.write_all(data).await?;
    Ok(())
}

async fn reply_err(w: &mut Wr, option: u32, kind: u32, msg: &str) -> Result<()> {
    reply(w, option, kind, msg.as_bytes()).await?;
    w.flush().await?;
    Ok(())
}

fn tflags() -> u16 {
    use proto::tflag::*;
    HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_TRIM | SEND_WRITE_ZEROES | CAN_MULTI_CONN
}

async fn send_info(w: &mut Wr, option: u32, dev: &Arc<dyn BlockDevice>) -> Result<()> {
    let mut d = Vec::with_capacity(12);
    d.extend_from_slice(&proto::info::EXPORT.to_be_bytes());
    d.extend_from_slice(&dev.len().to_be_bytes());
    d.extend_from_slice(&tflags().to_be_bytes());
    reply(w, option, rep::INFO, &d).await?;
    let mut b = Vec::with_capacity(14);
    b.extend_from_slice(&proto::info::BLOCK_SIZE.to_be_bytes());
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&4096u32.to_be_bytes());
    b.extend_from_slice(&proto::MAX_PAYLOAD.to_be_bytes());
    reply(w, option, rep::INFO, &b).await?;
    reply(w, option, rep::ACK, &[]).await
}

/// Parses the queries of NBD_OPT_LIST/SET_META_CONTEXT: (export name, queries).
fn meta_queries(data: &[u8]) -> Option<(String, Vec<String>)> {
    let mut r = Reader::new(data);
    let name = r.string()?;
    let n = r.u32()?;
    let mut q = Vec::new();
    for _ in 0..n {
        q.push(r.string()?);
    }
    r.done().then_some((name, q))
}

/// Negotiates, then serves one export until the client disconnects.
pub async fn handle(sock: TcpStream, exports: Arc<dyn Exports>) -> Result<()> {
    sock.set_nodelay(true)?;
    let (r, w) = sock.into_split();
    let mut r: Rd = BufReader::new(r);
    let mut w: Wr = BufWriter::new(w);
    w.write_u64(proto::NBDMAGIC).await?;
    w.write_u64(proto::IHAVEOPT).await?;
    w.write_u16(proto::FLAG_FIXED_NEWSTYLE | proto::FLAG_NO_ZEROES)
        .await?;
    w.flush().await?;
    let cflags = r.read_u32().await?;
    if cflags & proto::FLAG_C_FIXED_NEWSTYLE == 0 {
        return Err(protocol("client does not speak fixed newstyle"));
    }
    let no_zeroes = cflags & proto::FLAG_C_NO_ZEROES != 0;
    let mut s = Session::default();
    let dev = loop {
        if r.read_u64().await? != proto::IHAVEOPT {
            return Err(protocol("bad option magic"));
        }
        let option = r.read_u32().await?;
        let len = r.read_u32().await?;
        if len > proto::MAX_OPTION {
            return Err(protocol(format!("option of {len} bytes")));
        }
        let mut data = vec![0u8; usize::try_from(len).map_err(|_| protocol("length"))?];
        r.read_exact(&mut data).await?;
        match option {
            opt::EXPORT_NAME => {
                let name = String::from_utf8_lossy(&data).into_owned();
                match exports.open(&name).await {
                    Ok(dev) => {
                        w.write_u64(dev.len()).await?;
                        w.write_u16(tflags()).await?;
                        if !no_zeroes {
                            w.write_all(&[0u8; 124]).await?;
                        }
                        w.flush().await?;
                        break dev;
                    }
                    // No error reply exists for this option: hang up.
                    Err(e) => return Err(protocol(format!("export refused: {e}"))),
                }
            }
            opt::ABORT => {
                let _ = reply_err(&mut w, option, rep::ACK, "").await;
                return Ok(());
            }
            opt::LIST => {
                // Exports are per-owner secrets: nothing is listed.
                reply(&mut w, option, rep::ACK, &[]).await?;
                w.flush().await?;
            }
            opt::INFO | opt::GO => {
                let mut rd = Reader::new(&data);
                let parsed = rd.string().and_then(|name| {
                    let n = rd.u16()?;
                    for _ in 0..n {
                        rd.u16()?;
                    }
                    rd.done().then_some(name)
                });
                let Some(name) = parsed else {
                    reply_err(&mut w, option, rep::ERR_INVALID, "malformed request").await?;
                    continue;
                };
                match exports.open(&name).await {
                    Ok(dev) => {
                        send_info(&mut w, option, &dev).await?;
                        w.flush().await?;
                        if option == opt::GO {
                            break dev;
                        }
                    }
                    Err(e) => {
                        tracing::info!("nbd export refused: {e}");
                        reply_err(&mut w, option, rep::ERR_UNKNOWN, "export unknown").await?;
                    }
                }
            }
            opt::STRUCTURED_REPLY => {
                if data.is_empty() {
                    s.structured = true;
                    reply(&mut w, option, rep::ACK, &[]).await?;
                    w.flush().await?;
                } else {
                    reply_err(&mut w, option, rep::ERR_INVALID, "unexpected data").await?;
                }
            }
            opt::LIST_META_CONTEXT | opt::SET_META_CONTEXT => {
                let Some((_, queries)) = meta_queries(&data) else {
                    reply_err(&mut w, option, rep::ERR_INVALID, "malformed request").await?;
                    continue;
                };
                if option == opt::SET_META_CONTEXT && !s.structured {
                    reply_err(&mut w, option, rep::ERR_INVALID, "structured replies first").await?;
                    continue;
                }
                let wanted = queries.is_empty() && option == opt::LIST_META_CONTEXT
                    || queries
                        .iter()
                        .any(|q| q == proto::BASE_ALLOCATION || q == "base:");
                if option == opt::SET_META_CONTEXT {
                    s.base_allocation = wanted;
                }
                if wanted {
                    let mut d = proto::BASE_ALLOCATION_ID.to_be_bytes().to_vec();
                    d.extend_from_slice(proto::BASE_ALLOCATION.as_bytes());
                    reply(&mut w, option, rep::META_CONTEXT, &d).await?;
                }
                reply(&mut w, option, rep::ACK, &[]).await?;
                w.flush().await?;
            }
            opt::STARTTLS => {
                reply_err(&mut w, option, rep::ERR_UNSUP, "TLS is not offered").await?;
            }
            _ => {
                reply_err(&mut w, option, rep::ERR_UNSUP, "option not supported").await?;
            }
        }
    };
    let result = transmit::run(&mut r, &mut w, &s, dev.clone()).await;
    // Whatever ended the connection, make completed writes durable.
    let d = dev.clone();
    let _ = tokio::task::spawn_blocking(move || d.flush()).await;
    result
}
