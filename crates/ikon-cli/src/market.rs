//! `ikon admin market …` (review and manage marketplace listings) and `ikon admin billing
//! …` (storage samples and monthly reports). The rules live in `ikon_service::market` and
//! `ikon_service::pricing`; refusals exit 1 with the reason on stderr.

use crate::output::{print, Output};
use anyhow::Result;
use clap::Subcommand;
use ikon_service::pricing::units;
use ikon_service::{Listing, Service};

/// `ikon admin market …`.
#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// List listings (all providers), optionally in one state, each with the hygiene scan's
    /// findings it was submitted with (the reviewer's view).
    List {
        /// PENDING, APPROVED, REJECTED or WITHDRAWN.
        #[arg(long)]
        state: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Submit a provider's custom image with a price (as the provider would through the API).
    Submit {
        /// Provider account id.
        #[arg(long)]
        account: String,
        /// Price per instance-hour.
        #[arg(long)]
        price: f64,
        /// The provider's custom image.
        image_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Approve a PENDING listing: its MARKET image appears to everyone in the region.
    Approve {
        /// Listing id.
        listing_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Reject a PENDING listing.
    Reject {
        /// Listing id.
        listing_id: String,
        /// Why (shown to the provider).
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a PENDING or APPROVED listing.
    Withdraw {
        /// Listing id.
        listing_id: String,
    },
}

/// `ikon admin billing …`.
#[derive(Debug, Subcommand)]
pub enum BillingCommand {
    /// Record a storage sample for every account now (`ikon serve` does it periodically).
    Sample,
    /// Print an account's ledger for a month: instance-hours per image, storage GiB-hours.
    Report {
        /// Account id.
        #[arg(long)]
        account: String,
        /// Month, `YYYY-MM` (UTC).
        #[arg(long)]
        month: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

fn refused(e: ikon_service::Error) -> Result<u8> {
    eprintln!("ikon: {}", e.chain());
    Ok(1)
}

/// The findings a listing was submitted with.
fn findings(l: &Listing) -> Vec<ikon_service::Finding> {
    serde_json::from_str(&l.findings).unwrap_or_default()
}

fn line(l: &Listing) -> String {
    let mut s = format!(
        "{}  {:<9} image {} -> {}  provider {}  {} per hour  {}",
        l.listing_id,
        l.state,
        l.source_image_id,
        if l.image_id.is_empty() {
            "-"
        } else {
            &l.image_id
        },
        l.provider,
        units(l.price_micros),
        l.reason
    );
    for f in findings(l) {
        s.push_str(&format!(
            "\n    {:5} {} {}: {}",
            f.severity.name(),
            f.id,
            f.path,
            f.message
        ));
    }
    s
}

fn json(l: &Listing) -> serde_json::Value {
    serde_json::json!({
        "ListingId": l.listing_id, "SourceImageId": l.source_image_id, "ImageId": l.image_id,
        "Provider": l.provider, "Region": l.region, "PricePerHour": units(l.price_micros),
        "State": l.state, "Reason": l.reason,
        "Findings": findings(l).iter().map(|f| serde_json::json!({
            "Id": f.id, "Severity": f.severity.name(), "Path": f.path, "Message": f.message,
        })).collect::<Vec<_>>(),
    })
}

/// Runs a market command.
pub async fn market(svc: &Service, cmd: MarketCommand) -> Result<u8> {
    match cmd {
        MarketCommand::List { state, output } => {
            let list = svc.market().listings(None, state.as_deref()).await?;
            let v: Vec<_> = list.iter().map(json).collect();
            print(output, &v, || {
                list.iter().map(line).collect::<Vec<_>>().join("\n")
            })?;
        }
        MarketCommand::Submit {
            account,
            price,
            image_id,
            output,
        } => {
            let caller = match svc.accounts().caller_for_image(&account, &image_id).await {
                Ok(c) => c,
                Err(e) => return refused(e),
            };
            match svc.market().submit_listing(&caller, &image_id, price).await {
                Ok(l) => print(output, &json(&l), || line(&l))?,
                Err(e) => return refused(e),
            }
        }
        MarketCommand::Approve { listing_id, output } => {
            match svc.market().approve_listing(&listing_id).await {
                Ok(l) => print(output, &json(&l), || line(&l))?,
                Err(e) => return refused(e),
            }
        }
        MarketCommand::Reject { listing_id, reason } => {
            if let Err(e) = svc.market().reject_listing(&listing_id, &reason).await {
                return refused(e);
            }
            println!("listing {listing_id} rejected");
        }
        MarketCommand::Withdraw { listing_id } => {
            if let Err(e) = svc.market().withdraw_listing(None, &listing_id).await {
                return refused(e);
            }
            println!("listing {listing_id} withdrawn");
        }
    }
    Ok(0)
}

/// Runs a billing command.
pub async fn billing(svc: &Service, cmd: BillingCommand) -> Result<u8> {
    match cmd {
        BillingCommand::Sample => {
            let n = svc.market().sample_storage().await?;
            println!("storage sampled for {n} accounts");
        }
        BillingCommand::Report {
            account,
            month,
            output,
        } => {
            let r = match svc.market().billing_report(&account, &month).await {
                Ok(r) => r,
                Err(e) => return refused(e),
            };
            print(output, &r, || {
                let mut s = format!(
                    "account {}  month {}  ({})\n",
                    r.account_id, r.month, r.currency
                );
                for l in &r.instances {
                    s.push_str(&format!(
                        "  {:<14} {:>12.3} instance-hours x {:<10} = {:.6}\n",
                        l.image_id, l.instance_hours, l.price_per_hour, l.amount
                    ));
                }
                s.push_str(&format!(
                    "  storage        {:>12.3} GiB-hours at {} per GiB-month = {:.6}\n  total {:.6}",
                    r.storage_gib_hours, r.storage_price_per_gib_month, r.storage_amount, r.total
                ));
                s
            })?;
        }
    }
    Ok(0)
}
