//! `ikon image import FILE`: the client side of importing a local file into a running
//! service. The file is streamed to `PUT /ikon/upload` (TC3-HMAC-SHA256 signed with
//! `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`, so it is never read into memory), then
//! ImportImage is called with `ImageUrl = upload://UPLOAD_ID`; `--wait` follows the image
//! until it is NORMAL or IMPORTFAILED and prints the reason. Credentials come from the
//! flags or `IKON_SECRET_ID` / `IKON_SECRET_KEY`.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use ikon_api::tencent::auth;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// `ikon image …` (client commands against a running service).
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Upload a local disk image and import it as a custom image (ImportImage).
    Import(ImportArgs),
    /// Show the hygiene scan's findings on one of your images (DescribeImageScan; exit 0
    /// clean or `info` only, 1 a `warn` or `block` finding, 2 not scanned or failed).
    Scan(ScanArgs),
}

/// Where the service is and who calls it.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Service endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8780")]
    pub endpoint: String,
    /// SecretId (default: $IKON_SECRET_ID).
    #[arg(long)]
    pub secret_id: Option<String>,
    /// SecretKey (default: $IKON_SECRET_KEY).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Region.
    #[arg(long, default_value = "ap-guangzhou")]
    pub region: String,
}

/// `ikon image import` options.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Disk image file (raw, qcow2, vhd, vmdk, …; the format is detected by the server).
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Image name.
    #[arg(long)]
    pub name: String,
    /// OS type as DescribeImportImageOs lists it (e.g. CentOS, Debian).
    #[arg(long)]
    pub os_type: String,
    /// OS version (e.g. 12).
    #[arg(long)]
    pub os_version: String,
    /// Architecture: x86_64, i386 or arm_64.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Skip the guest rules (never the safety rules).
    #[arg(long)]
    pub force: bool,
    /// Wait until the import finished; exit 1 if it failed.
    #[arg(long)]
    pub wait: bool,
    /// Output format: text or json.
    #[arg(long, value_enum, default_value = "text")]
    pub output: crate::output::Output,
}

/// `ikon image scan` options.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Image id.
    pub image_id: String,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Wait while the scan is pending (it runs after the image turns NORMAL).
    #[arg(long)]
    pub wait: bool,
    /// Output format: text or json.
    #[arg(long, value_enum, default_value = "text")]
    pub output: crate::output::Output,
}

/// A signing client for one endpoint.
pub(crate) struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    host: String,
    secret_id: String,
    secret_key: String,
    region: String,
}

impl Client {
    fn authorization(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        unsigned: bool,
        body: &[u8],
        ts: i64,
    ) -> String {
        let date = ikon_service::ids::utc_date(ts);
        let a = auth::Authorization {
            secret_id: self.secret_id.clone(),
            date: date.clone(),
            service: "cvm".into(),
            signed_headers: vec!["content-type".into(), "host".into()],
            signature: Vec::new(),
        };
        let host = self.host.clone();
        let ct = content_type.to_string();
        let header = move |name: &str| -> Option<String> {
            match name {
                "host" => Some(host.clone()),
                "content-type" => Some(ct.clone()),
                "x-tc-content-sha256" if unsigned => Some("UNSIGNED-PAYLOAD".into()),
                _ => None,
            }
        };
        let req = auth::SignedRequest {
            method,
            path,
            query: "",
            header: &header,
            body,
            timestamp: ts,
        };
        let sig = auth::sign(&self.secret_key, &a, &req);
        format!(
            "TC3-HMAC-SHA256 Credential={}/{date}/cvm/tc3_request, SignedHeaders=content-type;host, Signature={sig}",
            self.secret_id
        )
    }

    /// One API call; the `Response` object, or the API error as an error.
    pub(crate) async fn call(&self, action: &str, params: &Value) -> Result<Value> {
        let body = serde_json::to_vec(params)?;
        let ts = ikon_service::ids::now();
        let ct = "application/json";
        let resp = self
            .http
            .post(self.base.clone())
            .header("Host", &self.host)
            .header("Content-Type", ct)
            .header("X-TC-Action", action)
            .header("X-TC-Version", ikon_api::tencent::VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .header("X-TC-Region", &self.region)
            .header(
                "Authorization",
                self.authorization("POST", "/", ct, false, &body, ts),
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("calling {action} at {}", self.base))?;
        response(resp, action).await
    }

    async fn upload(&self, file: &std::path::Path) -> Result<Value> {
        let f = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let len = f.metadata().await?.len();
        let ts = ikon_service::ids::now();
        let ct = "application/octet-stream";
        let url = self.base.join("/ikon/upload")?;
        let stream = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20);
        let resp = self
            .http
            .put(url)
            .header("Host", &self.host)
            .header("Content-Type", ct)
            .header("Content-Length", len.to_string())
            .header("X-TC-Content-SHA256", "UNSIGNED-PAYLOAD")
            .header("X-TC-Timestamp", ts.to_string())
            .header("X-TC-Region", &self.region)
            .header(
                "Authorization",
                self.authorization("PUT", "/ikon/upload", ct, true, b"", ts),
            )
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .with_context(|| format!("uploading {}", file.display()))?;
        response(resp, "UploadImageFile").await
    }
}

async fn response(resp: reqwest::Response, action: &str) -> Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    let v: Value = serde_json::from_str(&text).map_err(|_| {
        anyhow!(
            "{action}: HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        )
    })?;
    let r = v["Response"].clone();
    if let Some(e) = r.get("Error") {
        bail!(
            "{action}: {}: {}",
            e["Code"].as_str().unwrap_or("?"),
            e["Message"].as_str().unwrap_or("")
        );
    }
    Ok(r)
}

/// Runs `ikon image …`: `import` exits 0 on success, 1 when a waited-for import failed;
/// `scan` exits as `ikon img scan` does.
pub fn run(cmd: ImageCommand) -> Result<u8> {
    // A server that closes an upload early must surface as an error, not kill the client.
    // SAFETY: changing a signal disposition before the runtime's threads start.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cmd {
        ImageCommand::Import(a) => {
            let client = Client::new(&a.conn)?;
            rt.block_on(import(client, a))
        }
        ImageCommand::Scan(a) => {
            let client = Client::new(&a.conn)?;
            rt.block_on(crate::client_scan::scan(&client, &a))
        }
    }
}

impl Client {
    fn new(c: &ConnArgs) -> Result<Client> {
        let secret_id = c
            .secret_id
            .clone()
            .or_else(|| std::env::var("IKON_SECRET_ID").ok())
            .context("--secret-id or IKON_SECRET_ID is required")?;
        let secret_key = c
            .secret_key
            .clone()
            .or_else(|| std::env::var("IKON_SECRET_KEY").ok())
            .context("--secret-key or IKON_SECRET_KEY is required")?;
        let base = reqwest::Url::parse(&c.endpoint)
            .with_context(|| format!("--endpoint {:?}", c.endpoint))?;
        let h = base.host_str().context("--endpoint has no host")?;
        let host = match base.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Client {
            http,
            base,
            host,
            secret_id,
            secret_key,
            region: c.region.clone(),
        })
    }
}

async fn import(client: Client, a: ImportArgs) -> Result<u8> {
    // Credentials and endpoint first: a refused upload would otherwise be noticed
    // only after the server closed the connection in mid-stream.
    client.call("DescribeImportImageOs", &json!({})).await?;
    let up = client.upload(&a.file).await?;
    let upload_id = up["UploadId"]
        .as_str()
        .context("no UploadId in the answer")?;
    let mut params = json!({
        "ImageUrl": format!("upload://{upload_id}"),
        "ImageName": a.name,
        "OsType": a.os_type,
        "OsVersion": a.os_version,
        "Architecture": a.arch,
        "Force": a.force,
    });
    if let Some(d) = &a.description {
        params["ImageDescription"] = json!(d);
    }
    let r = client.call("ImportImage", &params).await?;
    let image_id = r["ImageId"]
        .as_str()
        .context("no ImageId in the answer")?
        .to_string();
    let mut out = json!({ "ImageId": image_id, "UploadId": upload_id, "Size": up["Size"] });
    let mut code = 0;
    if a.wait {
        let img = loop {
            let r = client
                .call("DescribeImages", &json!({ "ImageIds": [image_id] }))
                .await?;
            let img = r["ImageSet"][0].clone();
            if img["ImageState"] != "IMPORTING" {
                break img;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        out["ImageState"] = img["ImageState"].clone();
        out["OsName"] = img["OsName"].clone();
        out["Platform"] = img["Platform"].clone();
        out["Architecture"] = img["Architecture"].clone();
        if img["ImageState"] != "NORMAL" {
            out["Reason"] = img["ImageDescription"].clone();
            code = 1;
        }
    }
    match a.output {
        crate::output::Output::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        crate::output::Output::Text => {
            println!(
                "uploaded {} bytes as {upload_id}; image {image_id}",
                up["Size"]
            );
            if a.wait {
                println!(
                    "{} {} ({}, {}){}",
                    out["ImageState"].as_str().unwrap_or(""),
                    out["OsName"].as_str().unwrap_or(""),
                    out["Platform"].as_str().unwrap_or(""),
                    out["Architecture"].as_str().unwrap_or(""),
                    out["Reason"]
                        .as_str()
                        .map(|r| format!("\n{r}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(code)
}
