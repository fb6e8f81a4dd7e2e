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

mod negotiate;
pub mod proto;
mod transmit;

use ikon_disk::BlockDevice;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, BufReader, BufStream, BufWriter, ReadHalf, WriteHalf};
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
    serve_with(listener, exports, None, stop).await;
}

/// [`serve`] with TLS offered (or required) as `tls` says.
pub async fn serve_with(
    listener: TcpListener,
    exports: Arc<dyn Exports>,
    tls: Option<Arc<Tls>>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    let (exports, tls) = (exports.clone(), tls.clone());
                    tokio::spawn(async move {
                        if let Err(e) = handle_with(sock, exports, tls).await {
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

/// A connection's byte stream after negotiation (plain TCP or TLS), buffered.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type Rd = BufReader<ReadHalf<Box<dyn Io>>>;
pub(crate) type Wr = BufWriter<WriteHalf<Box<dyn Io>>>;

/// Negotiated state.
#[derive(Default)]
pub(crate) struct Session {
    pub(crate) structured: bool,
    pub(crate) base_allocation: bool,
}

/// TLS for NBD (NBD_OPT_STARTTLS): the server's certificate, and whether a client must
/// upgrade before anything but NBD_OPT_ABORT is answered.
pub struct Tls {
    /// The TLS server configuration.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Refuse every option but STARTTLS and ABORT until TLS is up (NBD_REP_ERR_TLS_REQD).
    pub required: bool,
}

/// Negotiates (upgrading to TLS when the client asks and `tls` allows), then serves one
/// export until the client disconnects.
pub async fn handle(sock: TcpStream, exports: Arc<dyn Exports>) -> Result<()> {
    handle_with(sock, exports, None).await
}

/// [`handle`] with TLS offered (or required) as `tls` says.
pub async fn handle_with(
    sock: TcpStream,
    exports: Arc<dyn Exports>,
    tls: Option<Arc<Tls>>,
) -> Result<()> {
    sock.set_nodelay(true)?;
    let mut plain = BufStream::new(sock);
    let no_zeroes = negotiate::greet(&mut plain).await?;
    let mut s = Session::default();
    let ctx = negotiate::Ctx {
        exports: exports.as_ref(),
        no_zeroes,
        tls_offered: tls.is_some(),
        tls_required: tls.as_ref().is_some_and(|t| t.required),
    };
    let (io, dev): (Box<dyn Io>, _) =
        match negotiate::options(&mut plain, &ctx, &mut s, false).await? {
            negotiate::Outcome::Abort => return Ok(()),
            negotiate::Outcome::Serve(dev) => (Box::new(plain), dev),
            negotiate::Outcome::StartTls => {
                let Some(tls) = tls else {
                    return Err(protocol("STARTTLS without TLS"));
                };
                // The client waits for our ACK before its handshake: nothing is buffered.
                let sock = plain.into_inner();
                let stream = tls.acceptor.accept(sock).await?;
                let mut secure = BufStream::new(stream);
                let mut s2 = Session::default();
                match negotiate::options(&mut secure, &ctx, &mut s2, true).await? {
                    negotiate::Outcome::Abort => return Ok(()),
                    negotiate::Outcome::Serve(dev) => {
                        s = s2;
                        (Box::new(secure), dev)
                    }
                    negotiate::Outcome::StartTls => return Err(protocol("STARTTLS twice")),
                }
            }
        };
    let (r, w) = tokio::io::split(io);
    let mut r: Rd = BufReader::new(r);
    let mut w: Wr = BufWriter::new(w);
    let result = transmit::run(&mut r, &mut w, &s, dev.clone()).await;
    // Whatever ended the connection, make completed writes durable.
    let d = dev.clone();
    let _ = tokio::task::spawn_blocking(move || d.flush()).await;
    result
}
