//! `ikon image scan IMAGE_ID`: the hygiene scan's findings on one of the caller's images,
//! through Ikon's own DescribeImageScan action (the owner's and the administrator's view).
//! Exit 0 clean or `info` only, 1 a `warn` or `block` finding, 2 not scanned or failed.

use crate::client::{Client, ScanArgs};
use anyhow::Result;
use serde_json::{json, Value};
use std::time::Duration;

fn exit_code(r: &Value) -> u8 {
    if r["State"] != "DONE" {
        return 2;
    }
    let serious = r["Findings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x["Severity"] != "info"));
    if serious {
        1
    } else if r["Scanned"].as_array().is_none_or(Vec::is_empty) {
        2
    } else {
        0
    }
}

fn print_text(r: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!("image {}: scan {}", s(&r["ImageId"]), s(&r["State"]));
    for f in r["Findings"].as_array().into_iter().flatten() {
        println!(
            "{:5}  {:20} {}",
            s(&f["Severity"]),
            s(&f["Id"]),
            s(&f["Path"])
        );
        println!("       {}", s(&f["Message"]));
    }
    for p in r["Problems"].as_array().into_iter().flatten() {
        println!("problem: {}", s(p));
    }
    if !s(&r["FailureReason"]).is_empty() {
        println!("failed: {}", s(&r["FailureReason"]));
    }
}

/// Runs `ikon image scan`.
pub async fn scan(client: &Client, a: &ScanArgs) -> Result<u8> {
    let params = json!({ "ImageId": a.image_id });
    let r = loop {
        let r = client.call("DescribeImageScan", &params).await?;
        if !a.wait || !matches!(r["State"].as_str(), Some("PENDING" | "NONE")) {
            break r;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    match a.output {
        crate::output::Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        crate::output::Output::Text => print_text(&r),
    }
    Ok(exit_code(&r))
}
