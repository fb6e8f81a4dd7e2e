//! `ikon serve` and `ikon admin`: the service half of the binary. Both open the same data
//! directory (SQLite catalog `catalog.db` and chunk store `chunks/` under it) or a
//! PostgreSQL catalog named with `--database`, and the chunk stores the configuration names
//! per region (S3 or directories).

use crate::output::{print, Output};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ikon_service::{Config, Service};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the service keeps its state.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Data directory: SQLite catalog and local chunk store.
    #[arg(long, default_value = "ikon-data")]
    pub data_dir: PathBuf,
    /// Catalog database URL (`postgres://…` or `sqlite://…`) instead of DIR/catalog.db.
    #[arg(long)]
    pub database: Option<String>,
    /// Configuration file (TOML); keys it leaves out come from the preset.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Defaults preset: `tencent` (region ids, limits and import rules of Tencent Cloud) or
    /// `alibaba`; overrides `preset` in the configuration file. Both API dialects answer
    /// under either.
    #[arg(long)]
    pub preset: Option<String>,
    /// Master key file sealing the API secret keys in the catalog (0600; default
    /// DIR/master.key). Made at the first start of a new catalog; every node sharing a
    /// catalog needs the same file (a node with another key refuses to start).
    #[arg(long, value_name = "FILE")]
    pub master_key: Option<PathBuf>,
}

impl DataArgs {
    /// The master key file.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// `ikon serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8780")]
    pub listen: SocketAddr,
    /// Log format: `text` or `json`.
    #[arg(long, default_value = "text")]
    pub log_format: String,
    /// Allow ImportImage URLs to reach this address or CIDR block although it is loopback,
    /// private, link-local or a metadata address (repeatable; adds to `import.allow`).
    #[arg(long = "allow-import-from", value_name = "ADDR[/PREFIX]")]
    pub allow_import_from: Vec<String>,
    /// Address of the NBD server exporting instance disks (`off` = none). Default
    /// 127.0.0.1:10809, skipped with a warning when that port is taken.
    #[arg(long)]
    pub nbd_listen: Option<String>,
    /// Serve the API (and the console) over HTTPS with this certificate chain (PEM); NBD
    /// then offers NBD_OPT_STARTTLS with it.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// NBD TLS: `on` offers STARTTLS (the default with --tls-cert), `require` refuses every
    /// client that does not upgrade, `off` never offers it.
    #[arg(long, value_name = "off|on|require")]
    pub nbd_tls: Option<String>,
}

/// `ikon admin` commands.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Platform and custom images.
    #[command(subcommand)]
    Image(crate::publish::ImageCommand),
    /// Marketplace listings: review, approve, reject, withdraw.
    #[command(subcommand)]
    Market(crate::market::MarketCommand),
    /// Metering: storage samples and monthly reports.
    #[command(subcommand)]
    Billing(crate::market::BillingCommand),
    /// Chunk store usage: chunks and bytes held, bytes referenced by images, disks and
    /// snapshots.
    Usage {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The policy: every limit, default, table and price in force.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Remove chunks and manifests no image, disk or snapshot references (safe while the
    /// server runs).
    Gc {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// The master key sealing API secret keys.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Check the catalog against the stores: every manifest an image, disk or snapshot uses
    /// is present, every chunk it names is there and matches its hash; chunks nothing names
    /// are reported as orphans (`ikon admin gc` removes them). Reads every chunk. Exit 0
    /// clean, 1 otherwise.
    Fsck {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

/// Output format of `ikon admin policy show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PolicyOutput {
    /// TOML, as a `--config` file is written.
    Toml,
    /// JSON.
    Json,
}

/// `ikon admin policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the merged policy (the preset's document with `--config` merged onto it), as
    /// `ikon serve` with the same `--preset` and `--config` runs it.
    Show {
        /// Preset: tencent or alibaba (overrides `--preset` before the subcommand and the
        /// file's `preset`).
        #[arg(long)]
        preset: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "toml")]
        output: PolicyOutput,
    },
}

/// `ikon admin master-key …`.
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Print the id of the master key in force (a keyed hash; never the key).
    Show,
    /// Seal every API secret under a new master key and replace the key file (running
    /// servers using the same file pick the new key up by themselves; other nodes need the
    /// new file copied to them).
    Rotate,
}

/// `ikon admin account …`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account with one API key (the secret is shown once).
    Create {
        /// Unique account name.
        name: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// List accounts.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Disable an account: every key (and NBD token) of it is refused from now on; its
    /// images, instances, disks and shares are kept.
    Disable {
        /// Account id.
        account_id: String,
    },
    /// Re-enable a disabled account.
    Enable {
        /// Account id.
        account_id: String,
    },
}

/// `ikon admin key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue another key for an account.
    Create {
        /// Account id.
        account_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Disable a key (its requests are refused from now on).
    Disable {
        /// SecretId.
        secret_id: String,
    },
}

/// Loads the configuration named on the command line over its preset.
pub fn load_config(data: &DataArgs) -> Result<Config> {
    Ok(Config::load_with(
        data.config.as_deref(),
        data.preset.as_deref(),
    )?)
}

fn catalog_url(data: &DataArgs) -> Result<String> {
    if let Some(url) = &data.database {
        return Ok(url.clone());
    }
    std::fs::create_dir_all(&data.data_dir)
        .with_context(|| format!("creating data directory {}", data.data_dir.display()))?;
    let path = data.data_dir.join("catalog.db");
    let abs = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(format!("sqlite://{}", abs.display()))
}

/// Opens the service over the data directory / database.
pub async fn open_service(data: &DataArgs) -> Result<Service> {
    open_service_with(data, &[]).await
}

/// Opens the service, adding `allow` to the import allow-list; the import spool defaults
/// to `DIR/spool`.
pub async fn open_service_with(data: &DataArgs, allow: &[String]) -> Result<Service> {
    let mut config = load_config(data)?;
    config.import.allow.extend(allow.iter().cloned());
    if config.import.spool_dir.is_none() {
        config.import.spool_dir = Some(data.data_dir.join("spool"));
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let url = catalog_url(data)?;
    let catalog = ikon_catalog::Catalog::connect(&url)
        .await
        .with_context(|| format!("opening the catalog {}", redact(&url)))?;
    let dir = chunk_dir(&data.data_dir);
    let store = ikon_service::Store::open_local(&dir, config.chunk_size)
        .await
        .with_context(|| format!("opening the chunk store {}", dir.display()))?;
    let regions = Service::open_region_stores(&config).await?;
    let path = data.master_key_path();
    let key = ikon_service::secrets::open_master_key(&path, &catalog)
        .await
        .map_err(|e| anyhow::anyhow!("master key {}: {}", path.display(), e.chain()))?;
    Ok(Service::new(catalog, config, store)
        .with_region_stores(regions)
        .with_master_key(key, path))
}

/// The local chunk store directory.
pub fn chunk_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("chunks")
}

fn redact(url: &str) -> String {
    // postgres://user:password@host → hide the password.
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((u, _)) => format!("{}{u}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Seconds between sweeps for NORMAL images whose facts were never asked for.
const FACTS_SWEEP_SECS: u64 = 3;

/// The API's TLS acceptor and NBD's TLS settings from `--tls-cert`, `--tls-key` and
/// `--nbd-tls`.
fn tls_setup(
    args: &ServeArgs,
) -> Result<(
    Option<tokio_rustls::TlsAcceptor>,
    Option<std::sync::Arc<ikon_nbd::Tls>>,
)> {
    let mode = args.nbd_tls.as_deref();
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        if matches!(mode, Some("on" | "require")) {
            anyhow::bail!(
                "--nbd-tls {} needs --tls-cert and --tls-key",
                mode.unwrap_or("")
            );
        }
        return Ok((None, None));
    };
    let api = crate::tls::acceptor(cert, key, &[b"http/1.1"])?;
    let nbd = match mode.unwrap_or("on") {
        "off" => None,
        m @ ("on" | "require") => Some(std::sync::Arc::new(ikon_nbd::Tls {
            acceptor: crate::tls::acceptor(cert, key, &[])?,
            required: m == "require",
        })),
        other => anyhow::bail!("--nbd-tls {other:?}: expected off, on or require"),
    };
    Ok((Some(api), nbd))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `ikon serve`.
pub fn serve(args: ServeArgs) -> Result<u8> {
    init_logging(&args.log_format)?;
    runtime()?.block_on(async move {
        let svc = open_service_with(&args.data, &args.allow_import_from).await?;
        if let Some(c) = svc.accounts().bootstrap_admin().await? {
            println!(
                "platform administrator: SecretId={} SecretKey={} (AccountId {}; shown once)",
                c.secret_id, c.secret_key, c.account_id
            );
        }
        let mut state = ikon_api::AppState::new(svc.clone());
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let (api_tls, nbd_tls) = tls_setup(&args)?;
        state.tls = api_tls.is_some();
        let mut runner = svc.task_runner(30);
        runner.register(std::sync::Arc::new(ikon_service::PublishHandler));
        runner.register(std::sync::Arc::new(ikon_service::ImportHandler));
        runner.register(std::sync::Arc::new(ikon_service::CreateImageHandler));
        runner.register(std::sync::Arc::new(ikon_service::ExportHandler));
        runner.register(std::sync::Arc::new(ikon_service::SyncHandler));
        runner.register(std::sync::Arc::new(ikon_service::ScanHandler));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let nbd =
            crate::nbd::start(&svc, args.nbd_listen.as_deref(), nbd_tls, stop_rx.clone()).await?;
        let worker = tokio::spawn(async move {
            let mut rx = stop_rx;
            runner
                .run_until(std::time::Duration::from_secs(1), async move {
                    let _ = rx.changed().await;
                })
                .await;
        });
        let metrics = state.metrics.clone();
        let msvc = svc.clone();
        let refresher = tokio::spawn(async move {
            loop {
                match msvc.admin().store_usage().await {
                    Ok((held, referenced)) => {
                        metrics
                            .store_bytes
                            .set(i64::try_from(held).unwrap_or(i64::MAX));
                        metrics
                            .logical_bytes
                            .set(i64::try_from(referenced).unwrap_or(i64::MAX));
                        let ratio = if held == 0 {
                            1.0
                        } else {
                            referenced as f64 / held as f64
                        };
                        metrics.dedup_ratio.set(ratio);
                    }
                    Err(e) => tracing::warn!("store metrics: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
        });
        if let Some((a, _)) = &nbd {
            println!("ikon nbd listening on nbd://{a}");
        }
        let ssvc = svc.clone();
        let every = svc.config().pricing.storage_sample_secs.max(60);
        let sampler = tokio::spawn(async move {
            loop {
                if let Err(e) = ssvc.market().sample_storage().await {
                    tracing::warn!("storage sample: {e}");
                }
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
            }
        });
        // Facts (inspection and hygiene scan) for every NORMAL image, however it was made:
        // one sweep every few seconds asks for the missing ones, one task per manifest; the
        // same loop prunes old request-rate windows.
        let fsvc = svc.clone();
        let facts = tokio::spawn(async move {
            for sweep in 0u64.. {
                if let Err(e) = fsvc.images().request_missing_facts().await {
                    tracing::warn!("image facts: {e}");
                }
                // About once a minute: forget request-rate windows nobody can use again.
                if sweep % 20 == 0 {
                    if let Err(e) = fsvc.accounts().prune_rate_windows().await {
                        tracing::warn!("rate windows: {e}");
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(FACTS_SWEEP_SECS)).await;
            }
        });
        let app = ikon_api::app(state);
        match api_tls {
            Some(acceptor) => {
                println!("ikon listening on https://{addr}");
                axum::serve(crate::tls::TlsListener::new(listener, acceptor)?, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await?;
            }
            None => {
                println!("ikon listening on http://{addr}");
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown_signal())
                    .await?;
            }
        }
        let _ = stop_tx.send(true);
        let _ = worker.await;
        if let Some((_, t)) = nbd {
            let _ = t.await;
        }
        refresher.abort();
        sampler.abort();
        facts.abort();
        Ok(0)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn init_logging(format: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IKON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let res = match format {
        "json" => builder.json().try_init(),
        "text" => builder.try_init(),
        other => bail!("--log-format {other}: expected text or json"),
    };
    res.map_err(|e| anyhow::anyhow!("logging: {e}"))
}

/// `ikon admin`.
pub fn admin(args: AdminArgs) -> Result<u8> {
    // The policy needs no catalog or store.
    if let AdminCommand::Policy(PolicyCommand::Show { preset, output }) = &args.command {
        let preset = preset.as_deref().or(args.data.preset.as_deref());
        let config = Config::load_with(args.data.config.as_deref(), preset)?;
        match output {
            PolicyOutput::Toml => print!(
                "{}",
                config
                    .to_toml()
                    .map_err(|e| anyhow::anyhow!("policy: {e}"))?
            ),
            PolicyOutput::Json => println!("{}", serde_json::to_string_pretty(&config)?),
        }
        return Ok(0);
    }
    runtime()?.block_on(async move {
        let svc = open_service(&args.data).await?;
        match args.command {
            AdminCommand::Account(AccountCommand::Create { name, output }) => {
                let c = svc.accounts().create_account(&name, false).await?;
                print(output, &c, || {
                    format!(
                        "account {} ({}) created\nSecretId:  {}\nSecretKey: {}",
                        c.account_id, c.name, c.secret_id, c.secret_key
                    )
                })?;
            }
            AdminCommand::Account(AccountCommand::List { output }) => {
                let accounts = svc.accounts().list_accounts().await?;
                let rows: Vec<serde_json::Value> = accounts
                    .iter()
                    .map(|a| serde_json::json!({"AccountId": a.account_id, "Name": a.name, "Admin": a.is_admin, "Disabled": a.disabled}))
                    .collect();
                print(output, &rows, || {
                    accounts
                        .iter()
                        .map(|a| format!("{}  {}{}{}", a.account_id, a.name, if a.is_admin { "  (admin)" } else { "" }, if a.disabled { "  (disabled)" } else { "" }))
                        .collect::<Vec<_>>()
                        .join("\n")
                })?;
            }
            AdminCommand::Account(AccountCommand::Disable { account_id }) => {
                if !svc.accounts().disable_account(&account_id).await? {
                    bail!("account {account_id} does not exist");
                }
                println!("account {account_id} disabled");
            }
            AdminCommand::Account(AccountCommand::Enable { account_id }) => {
                if !svc.accounts().enable_account(&account_id).await? {
                    bail!("account {account_id} does not exist");
                }
                println!("account {account_id} enabled");
            }
            AdminCommand::Key(KeyCommand::Create { account_id, output }) => {
                let c = svc.accounts().create_key_for(&account_id).await?;
                print(output, &c, || format!("SecretId:  {}\nSecretKey: {}", c.secret_id, c.secret_key))?;
            }
            AdminCommand::Key(KeyCommand::Disable { secret_id }) => {
                if !svc.accounts().disable_key(&secret_id).await? {
                    bail!("key {secret_id} does not exist");
                }
                println!("key {secret_id} disabled");
            }
            AdminCommand::Policy(_) => {}
            AdminCommand::Image(cmd) => return crate::publish::run(&svc, cmd).await,
            AdminCommand::Market(cmd) => return crate::market::market(&svc, cmd).await,
            AdminCommand::Billing(cmd) => return crate::market::billing(&svc, cmd).await,
            AdminCommand::Usage { output } => {
                let u = svc.admin().usage().await?;
                print(output, &u, || {
                    format!(
                        "{} chunks, {} bytes held; {} bytes referenced",
                        u.chunks, u.bytes_held, u.referenced_bytes
                    )
                })?;
            }
            AdminCommand::Gc { output } => {
                let st = svc.admin().collect_garbage().await?;
                let v = serde_json::json!({
                    "LiveChunks": st.live_chunks,
                    "DeletedChunks": st.deleted_chunks,
                    "DeletedBytes": st.deleted_bytes,
                    "DeletedManifests": st.deleted_manifests,
                    "RemovedTemporaryFiles": st.removed_tmp,
                });
                print(output, &v, || {
                    format!(
                        "{} chunks live; deleted {} chunks ({} bytes), {} manifests, {} temporary files",
                        st.live_chunks, st.deleted_chunks, st.deleted_bytes, st.deleted_manifests, st.removed_tmp
                    )
                })?;
            }
            AdminCommand::MasterKey(MasterKeyCommand::Show) => {
                println!("master key {}", svc.admin().master_key_id()?);
            }
            AdminCommand::MasterKey(MasterKeyCommand::Rotate) => {
                let path = args.data.master_key_path();
                let id = svc.admin().rotate_master_key(&path).await?;
                println!("master key rotated: {} is now {id}", path.display());
            }
            AdminCommand::Fsck { output } => {
                let r = svc.admin().fsck().await?;
                print(output, &fsck_json(&r), || fsck_text(&r))?;
                return Ok(if r.is_clean() { 0 } else { 1 });
            }
        }
        Ok(0)
    })
}

/// `ikon admin fsck --output json`.
fn fsck_json(r: &ikon_service::FsckReport) -> serde_json::Value {
    let refs = |v: &[ikon_service::ManifestRef]| -> Vec<String> {
        v.iter()
            .map(|m| format!("{}@{}", m.disk_id, m.version))
            .collect()
    };
    let hashes = |v: &[ikon_service::ChunkHash]| -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    };
    serde_json::json!({
        "Manifests": r.manifests,
        "MissingManifests": refs(&r.missing_manifests),
        "CorruptManifests": refs(&r.corrupt_manifests),
        "Chunks": r.chunks,
        "MissingChunks": hashes(&r.missing_chunks),
        "CorruptChunks": hashes(&r.corrupt_chunks),
        "OrphanChunks": r.orphan_chunks,
        "OrphanBytes": r.orphan_bytes,
        "Clean": r.is_clean(),
    })
}

/// `ikon admin fsck` for people: the figures, then every problem on a line of its own.
fn fsck_text(r: &ikon_service::FsckReport) -> String {
    let mut t = format!(
        "{} manifests, {} chunks checked: {} missing, {} damaged; {} orphan chunks ({} bytes)",
        r.manifests,
        r.chunks,
        r.missing_chunks.len(),
        r.corrupt_chunks.len(),
        r.orphan_chunks,
        r.orphan_bytes
    );
    for m in &r.missing_manifests {
        t.push_str(&format!("\nmissing manifest {}@{}", m.disk_id, m.version));
    }
    for m in &r.corrupt_manifests {
        t.push_str(&format!("\ndamaged manifest {}@{}", m.disk_id, m.version));
    }
    for h in &r.missing_chunks {
        t.push_str(&format!("\nmissing chunk {h}"));
    }
    for h in &r.corrupt_chunks {
        t.push_str(&format!("\ndamaged chunk {h}"));
    }
    t.push_str(if r.is_clean() {
        "\nclean"
    } else {
        "\nNOT clean"
    });
    t
}
