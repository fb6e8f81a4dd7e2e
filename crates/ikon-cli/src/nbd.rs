//! NBD in the binary: the adapter that lets `ikon serve` export instance disks (access
//! decided by the service: see `ikon_service::nbd_export_name`), the listener setup, and
//! `ikon nbd-url`, which prints the URL a disk's owner attaches with.

use anyhow::{Context, Result};
use clap::Args;
use ikon_disk::BlockDevice;
use ikon_service::Service;
use std::net::SocketAddr;
use std::sync::Arc;

/// Default NBD address of `ikon serve` (10809 is NBD's registered port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10809";

struct ServiceExports(Service);

impl ikon_nbd::Exports for ServiceExports {
    fn open<'a>(
        &'a self,
        name: &'a str,
    ) -> ikon_nbd::BoxFuture<'a, std::result::Result<Arc<dyn BlockDevice>, String>> {
        Box::pin(async move {
            let d = self
                .0
                .instances()
                .nbd_open(name)
                .await
                .map_err(|e| e.to_string())?;
            let d: Arc<dyn BlockDevice> = d;
            Ok(d)
        })
    }
}

/// Starts the NBD listener (offering or requiring TLS as `tls` says): `spec` is an address,
/// or `off`. The default address falls back
/// to no NBD (with a warning) when it is taken; an explicit one must bind.
pub async fn start(
    svc: &Service,
    spec: Option<&str>,
    tls: Option<Arc<ikon_nbd::Tls>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<(SocketAddr, tokio::task::JoinHandle<()>)>> {
    let explicit = spec.is_some();
    let spec = spec.unwrap_or(DEFAULT_LISTEN);
    if spec == "off" {
        return Ok(None);
    }
    let addr: SocketAddr = spec
        .parse()
        .with_context(|| format!("--nbd-listen {spec:?} is not an address"))?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if !explicit => {
            eprintln!("ikon nbd disabled: {addr} is not available ({e}); use --nbd-listen");
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("NBD listening on {addr}")),
    };
    let local = listener.local_addr()?;
    let exports: Arc<dyn ikon_nbd::Exports> = Arc::new(ServiceExports(svc.clone()));
    let task = tokio::spawn(async move {
        let mut rx = stop;
        ikon_nbd::serve_with(listener, exports, tls, async move {
            let _ = rx.changed().await;
        })
        .await;
    });
    Ok(Some((local, task)))
}

/// `ikon nbd-url`: the NBD URL for a disk, from the owner's key pair.
#[derive(Debug, Args)]
pub struct NbdUrlArgs {
    /// Disk id (`disk-…`, as DescribeInstances shows it).
    pub disk_id: String,
    /// SecretId of an enabled key of the disk's owner.
    #[arg(long, env = "IKON_SECRET_ID")]
    pub secret_id: String,
    /// Its SecretKey (used locally to make the token; never sent).
    #[arg(long, env = "IKON_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// NBD server address.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub server: String,
}

/// Prints the URL.
pub fn url(args: &NbdUrlArgs) -> Result<u8> {
    println!(
        "nbd://{}/{}",
        args.server,
        ikon_service::nbd_export_name(&args.secret_id, &args.secret_key, &args.disk_id)
    );
    Ok(0)
}
