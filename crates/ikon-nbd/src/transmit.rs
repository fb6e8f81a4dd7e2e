//! The transmission phase: one request at a time, each device call on a blocking thread;
//! reads and block status answer with structured replies when negotiated, everything else
//! with simple replies.

use crate::proto::{self, cflag, cmd, errno, reply};
use crate::{protocol, Rd, Result, Session, Wr};
use ikon_disk::{BlockDevice, ExtentKind};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Request {
    flags: u16,
    kind: u16,
    cookie: u64,
    offset: u64,
    len: u32,
}

async fn simple(w: &mut Wr, cookie: u64, error: u32, data: &[u8]) -> Result<()> {
    w.write_u32(proto::SIMPLE_REPLY_MAGIC).await?;
    w.write_u32(error).await?;
    w.write_u64(cookie).await?;
    w.write_all(data).await?;
    w.flush().await?;
    Ok(())
}

async fn chunk(w: &mut Wr, cookie: u64, flags: u16, kind: u16, payload: &[&[u8]]) -> Result<()> {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    w.write_u32(proto::STRUCTURED_REPLY_MAGIC).await?;
    w.write_u16(flags).await?;
    w.write_u16(kind).await?;
    w.write_u64(cookie).await?;
    w.write_u32(u32::try_from(len).map_err(|_| protocol("reply too long"))?)
        .await?;
    for p in payload {
        w.write_all(p).await?;
    }
    Ok(())
}

async fn fail(w: &mut Wr, s: &Session, req: &Request, error: u32, msg: &str) -> Result<()> {
    let structured = s.structured && matches!(req.kind, cmd::READ | cmd::BLOCK_STATUS);
    if structured {
        let m = msg.as_bytes();
        let m = &m[..m.len().min(4096)];
        let mlen = u16::try_from(m.len()).unwrap_or(0).to_be_bytes();
        chunk(
            w,
            req.cookie,
            reply::FLAG_DONE,
            reply::ERROR,
            &[&error.to_be_bytes(), &mlen, m],
        )
        .await?;
        w.flush().await?;
        Ok(())
    } else {
        simple(w, req.cookie, error, &[]).await
    }
}

fn errno_of(e: &ikon_disk::Error) -> u32 {
    match e.kind() {
        ikon_disk::ErrorKind::InvalidInput => errno::EINVAL,
        ikon_disk::ErrorKind::ReadOnly => errno::EPERM,
        _ => errno::EIO,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ikon_disk::Result<T> + Send + 'static,
) -> ikon_disk::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ikon_disk::Error::io(
            std::io::Error::other(e.to_string()),
            "nbd worker",
        ))
    })
}

/// Serves requests until NBD_CMD_DISC or end of stream.
pub(crate) async fn run(
    r: &mut Rd,
    w: &mut Wr,
    s: &Session,
    dev: Arc<dyn BlockDevice>,
) -> Result<()> {
    loop {
        let magic = match r.read_u32().await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if magic != proto::REQUEST_MAGIC {
            return Err(protocol(format!("bad request magic {magic:#x}")));
        }
        let req = Request {
            flags: r.read_u16().await?,
            kind: r.read_u16().await?,
            cookie: r.read_u64().await?,
            offset: r.read_u64().await?,
            len: r.read_u32().await?,
        };
        let size = dev.len();
        let in_range = req
            .offset
            .checked_add(u64::from(req.len))
            .is_some_and(|e| e <= size);
        match req.kind {
            cmd::DISC => return Ok(()),
            cmd::WRITE => {
                if req.len > proto::MAX_PAYLOAD {
                    return Err(protocol(format!("write of {} bytes", req.len)));
                }
                let mut data = vec![0u8; usize::try_from(req.len).map_err(|_| protocol("len"))?];
                r.read_exact(&mut data).await?;
                if !in_range {
                    fail(w, s, &req, errno::ENOSPC, "write past the end").await?;
                    continue;
                }
                let d = dev.clone();
                let (off, fua) = (req.offset, req.flags & cflag::FUA != 0);
                match blocking(move || {
                    d.write_all_at(&data, off)?;
                    if fua {
                        d.flush()?;
                    }
                    Ok(())
                })
                .await
                {
                    Ok(()) => simple(w, req.cookie, 0, &[]).await?,
                    Err(e) => fail(w, s, &req, errno_of(&e), &e.to_string()).await?,
                }
            }
            cmd::READ => {
                if req.len > proto::MAX_PAYLOAD || !in_range {
                    fail(w, s, &req, errno::EINVAL, "read outside the export").await?;
                    continue;
                }
                let d = dev.clone();
                let (off, len) = (req.offset, req.len);
                let res = blocking(move || {
                    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
                    d.read_exact_at(&mut buf, off)?;
                    Ok(buf)
                })
                .await;
                match res {
                    Ok(buf) if s.structured => {
                        if buf.is_empty() {
                            chunk(w, req.cookie, reply::FLAG_DONE, reply::NONE, &[]).await?;
                        } else {
                            chunk(
                                w,
                                req.cookie,
                                reply::FLAG_DONE,
                                reply::OFFSET_DATA,
                                &[&req.offset.to_be_bytes(), &buf],
                            )
                            .await?;
                        }
                        w.flush().await?;
                    }
                    Ok(buf) => simple(w, req.cookie, 0, &buf).await?,
                    Err(e) => fail(w, s, &req, errno_of(&e), &e.to_string()).await?,
                }
            }
            cmd::FLUSH => {
                let d = dev.clone();
                match blocking(move || d.flush()).await {
                    Ok(()) => simple(w, req.cookie, 0, &[]).await?,
                    Err(e) => fail(w, s, &req, errno_of(&e), &e.to_string()).await?,
                }
            }
            cmd::TRIM | cmd::WRITE_ZEROES => {
                if !in_range {
                    fail(w, s, &req, errno::ENOSPC, "range past the end").await?;
                    continue;
                }
                let d = dev.clone();
                let (off, len, fua) = (req.offset, u64::from(req.len), req.flags & cflag::FUA != 0);
                match blocking(move || {
                    d.write_zeroes(off, len)?;
                    if fua {
                        d.flush()?;
                    }
                    Ok(())
                })
                .await
                {
                    Ok(()) => simple(w, req.cookie, 0, &[]).await?,
                    Err(e) => fail(w, s, &req, errno_of(&e), &e.to_string()).await?,
                }
            }
            cmd::BLOCK_STATUS => {
                if !s.structured || !s.base_allocation {
                    fail(w, s, &req, errno::EINVAL, "no metadata context negotiated").await?;
                    continue;
                }
                if !in_range || req.len == 0 {
                    fail(w, s, &req, errno::EINVAL, "range outside the export").await?;
                    continue;
                }
                let d = dev.clone();
                let (off, len) = (req.offset, u64::from(req.len));
                match blocking(move || d.map(off, len)).await {
                    Ok(extents) => {
                        let one = req.flags & cflag::REQ_ONE != 0;
                        let mut payload = proto::BASE_ALLOCATION_ID.to_be_bytes().to_vec();
                        for e in extents.iter().take(if one { 1 } else { usize::MAX }) {
                            let state = match e.kind {
                                ExtentKind::Data => 0,
                                ExtentKind::Zero => proto::STATE_ZERO,
                                ExtentKind::Unallocated => proto::STATE_HOLE | proto::STATE_ZERO,
                            };
                            // Extents of a request never exceed its u32 length.
                            payload.extend_from_slice(
                                &u32::try_from(e.len).unwrap_or(u32::MAX).to_be_bytes(),
                            );
                            payload.extend_from_slice(&state.to_be_bytes());
                        }
                        chunk(
                            w,
                            req.cookie,
                            reply::FLAG_DONE,
                            reply::BLOCK_STATUS,
                            &[&payload],
                        )
                        .await?;
                        w.flush().await?;
                    }
                    Err(e) => fail(w, s, &req, errno_of(&e), &e.to_string()).await?,
                }
            }
            _ => {
                fail(w, s, &req, errno::ENOTSUP, "command not supported").await?;
            }
        }
    }
}
