//! Fixed newstyle negotiation over any byte stream (plain TCP, then TLS after
//! NBD_OPT_STARTTLS): the greeting, then options until the client picks an export
//! (NBD_OPT_GO / EXPORT_NAME), aborts, or asks for TLS. While TLS is required and not up,
//! every option but STARTTLS and ABORT gets NBD_REP_ERR_TLS_REQD (EXPORT_NAME, which has
//! no error reply, closes the connection), as the NBD protocol's TLS section says.

use crate::proto::{self, opt, rep, Reader};
use crate::{protocol, Exports, Result, Session};
use ikon_disk::BlockDevice;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the option phase ended with.
pub(crate) enum Outcome {
    /// Serve this export.
    Serve(Arc<dyn BlockDevice>),
    /// The client asked for TLS (acknowledged; the handshake comes next).
    StartTls,
    /// The client gave up.
    Abort,
}

/// What the option phase needs to know.
pub(crate) struct Ctx<'a> {
    pub(crate) exports: &'a dyn Exports,
    pub(crate) no_zeroes: bool,
    pub(crate) tls_offered: bool,
    pub(crate) tls_required: bool,
}

/// Sends the greeting and reads the client's flags; returns whether the client asked for
/// no zero padding after NBD_OPT_EXPORT_NAME.
pub(crate) async fn greet<S: AsyncRead + AsyncWrite + Unpin>(st: &mut S) -> Result<bool> {
    st.write_u64(proto::NBDMAGIC).await?;
    st.write_u64(proto::IHAVEOPT).await?;
    st.write_u16(proto::FLAG_FIXED_NEWSTYLE | proto::FLAG_NO_ZEROES)
        .await?;
    st.flush().await?;
    let cflags = st.read_u32().await?;
    if cflags & proto::FLAG_C_FIXED_NEWSTYLE == 0 {
        return Err(protocol("client does not speak fixed newstyle"));
    }
    Ok(cflags & proto::FLAG_C_NO_ZEROES != 0)
}

async fn reply<W: AsyncWrite + Unpin>(
    w: &mut W,
    option: u32,
    kind: u32,
    data: &[u8],
) -> Result<()> {
    w.write_u64(proto::REPLY_MAGIC).await?;
    w.write_u32(option).await?;
    w.write_u32(kind).await?;
    w.write_u32(u32::try_from(data.len()).map_err(|_| protocol("reply too long"))?)
        .await?;
    w.write_all(data).await?;
    Ok(())
}

async fn reply_err<W: AsyncWrite + Unpin>(
    w: &mut W,
    option: u32,
    kind: u32,
    msg: &str,
) -> Result<()> {
    reply(w, option, kind, msg.as_bytes()).await?;
    w.flush().await?;
    Ok(())
}

pub(crate) fn tflags() -> u16 {
    use proto::tflag::*;
    HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_TRIM | SEND_WRITE_ZEROES | CAN_MULTI_CONN
}

async fn send_info<W: AsyncWrite + Unpin>(
    w: &mut W,
    option: u32,
    dev: &Arc<dyn BlockDevice>,
) -> Result<()> {
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

/// Reads one option: (option, data).
async fn read_option<S: AsyncRead + Unpin>(st: &mut S) -> Result<(u32, Vec<u8>)> {
    if st.read_u64().await? != proto::IHAVEOPT {
        return Err(protocol("bad option magic"));
    }
    let option = st.read_u32().await?;
    let len = st.read_u32().await?;
    if len > proto::MAX_OPTION {
        return Err(protocol(format!("option of {len} bytes")));
    }
    let mut data = vec![0u8; usize::try_from(len).map_err(|_| protocol("length"))?];
    st.read_exact(&mut data).await?;
    Ok((option, data))
}

/// The option phase; `secure` says whether TLS is already up.
pub(crate) async fn options<S: AsyncRead + AsyncWrite + Unpin>(
    st: &mut S,
    ctx: &Ctx<'_>,
    s: &mut Session,
    secure: bool,
) -> Result<Outcome> {
    loop {
        let (option, data) = read_option(st).await?;
        let tls_missing = ctx.tls_required && !secure;
        match option {
            opt::ABORT => {
                let _ = reply_err(st, option, rep::ACK, "").await;
                return Ok(Outcome::Abort);
            }
            opt::STARTTLS => {
                if secure {
                    reply_err(st, option, rep::ERR_INVALID, "TLS is already up").await?;
                } else if !ctx.tls_offered {
                    reply_err(st, option, rep::ERR_UNSUP, "TLS is not offered").await?;
                } else if !data.is_empty() {
                    reply_err(st, option, rep::ERR_INVALID, "unexpected data").await?;
                } else {
                    reply(st, option, rep::ACK, &[]).await?;
                    st.flush().await?;
                    return Ok(Outcome::StartTls);
                }
            }
            // No error reply exists for EXPORT_NAME: hang up.
            opt::EXPORT_NAME if tls_missing => return Err(protocol("TLS required")),
            _ if tls_missing => {
                reply_err(st, option, rep::ERR_TLS_REQD, "TLS is required").await?;
            }
            opt::EXPORT_NAME => {
                let name = String::from_utf8_lossy(&data).into_owned();
                match ctx.exports.open(&name).await {
                    Ok(dev) => {
                        st.write_u64(dev.len()).await?;
                        st.write_u16(tflags()).await?;
                        if !ctx.no_zeroes {
                            st.write_all(&[0u8; 124]).await?;
                        }
                        st.flush().await?;
                        return Ok(Outcome::Serve(dev));
                    }
                    Err(e) => return Err(protocol(format!("export refused: {e}"))),
                }
            }
            opt::LIST => {
                // Exports are per-owner secrets: nothing is listed.
                reply(st, option, rep::ACK, &[]).await?;
                st.flush().await?;
            }
            opt::INFO | opt::GO => {
                if let Some(dev) = info_or_go(st, ctx, option, &data).await? {
                    return Ok(Outcome::Serve(dev));
                }
            }
            opt::STRUCTURED_REPLY => {
                if data.is_empty() {
                    s.structured = true;
                    reply(st, option, rep::ACK, &[]).await?;
                    st.flush().await?;
                } else {
                    reply_err(st, option, rep::ERR_INVALID, "unexpected data").await?;
                }
            }
            opt::LIST_META_CONTEXT | opt::SET_META_CONTEXT => {
                meta_context(st, s, option, &data).await?;
            }
            _ => {
                reply_err(st, option, rep::ERR_UNSUP, "option not supported").await?;
            }
        }
    }
}

/// NBD_OPT_INFO / NBD_OPT_GO: the export's details; Some(device) when GO succeeded.
async fn info_or_go<S: AsyncRead + AsyncWrite + Unpin>(
    st: &mut S,
    ctx: &Ctx<'_>,
    option: u32,
    data: &[u8],
) -> Result<Option<Arc<dyn BlockDevice>>> {
    let mut rd = Reader::new(data);
    let parsed = rd.string().and_then(|name| {
        let n = rd.u16()?;
        for _ in 0..n {
            rd.u16()?;
        }
        rd.done().then_some(name)
    });
    let Some(name) = parsed else {
        reply_err(st, option, rep::ERR_INVALID, "malformed request").await?;
        return Ok(None);
    };
    match ctx.exports.open(&name).await {
        Ok(dev) => {
            send_info(st, option, &dev).await?;
            st.flush().await?;
            Ok((option == opt::GO).then_some(dev))
        }
        Err(e) => {
            tracing::info!("nbd export refused: {e}");
            reply_err(st, option, rep::ERR_UNKNOWN, "export unknown").await?;
            Ok(None)
        }
    }
}

async fn meta_context<S: AsyncRead + AsyncWrite + Unpin>(
    st: &mut S,
    s: &mut Session,
    option: u32,
    data: &[u8],
) -> Result<()> {
    let Some((_, queries)) = meta_queries(data) else {
        return reply_err(st, option, rep::ERR_INVALID, "malformed request").await;
    };
    if option == opt::SET_META_CONTEXT && !s.structured {
        return reply_err(st, option, rep::ERR_INVALID, "structured replies first").await;
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
        reply(st, option, rep::META_CONTEXT, &d).await?;
    }
    reply(st, option, rep::ACK, &[]).await?;
    st.flush().await?;
    Ok(())
}
