//! The marketplace: a provider submits one of its custom images with a price per
//! instance-hour; a platform administrator approves it (a MARKET image sharing the custom
//! image's disks appears to everyone in the region, with the provider as creator and the
//! price in its tags) or rejects it with a reason; the provider (or an administrator)
//! withdraws it (the MARKET image disappears; instances made from it keep running and keep
//! paying the price fixed when they started). Rules: only NORMAL custom images of one's own,
//! not BYOL, not themselves made from a marketplace image (no resale), one open listing per
//! image, price between 0 and `pricing.max_market_price_per_hour`, and no hygiene scan
//! finding the policy makes `block` (the listing keeps the other findings for its
//! reviewer).

use crate::images::{state, Visibility};
use crate::pricing::{to_micros, units};
use crate::{ids, Caller, Error, ErrorKind, Result};
use ikon_catalog::{Image, Listing};
use ikon_guest::scan::Severity;

/// Listing states.
pub mod lstate {
    /// Waiting for review.
    pub const PENDING: &str = "PENDING";
    /// Published.
    pub const APPROVED: &str = "APPROVED";
    /// Refused by review.
    pub const REJECTED: &str = "REJECTED";
    /// Taken down.
    pub const WITHDRAWN: &str = "WITHDRAWN";
}

/// Tag key carrying a marketplace image's price per instance-hour.
pub const PRICE_TAG: &str = "ikon:price-per-hour";
/// Tag key carrying a marketplace image's provider account.
pub const PROVIDER_TAG: &str = "ikon:provider";

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::InvalidParameterValue,
        format!("listing {id} does not exist"),
    )
}

impl crate::facets::Market<'_> {
    /// Submits the caller's custom image to the marketplace (PENDING review).
    pub async fn submit_listing(
        &self,
        caller: &Caller,
        image_id: &str,
        price: f64,
    ) -> Result<Listing> {
        let max = self.config().pricing.max_market_price_per_hour;
        if !(0.0..=max).contains(&price) || !price.is_finite() {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("price per hour must be between 0 and {max}"),
            ));
        }
        let v = self.images().visible_image(caller, image_id).await?;
        if v.visibility != Visibility::Private {
            return Err(Error::new(
                ErrorKind::NotOwner,
                format!("image {image_id} is not your custom image"),
            ));
        }
        let img = &v.image;
        if img.state != state::NORMAL {
            return Err(Error::new(
                ErrorKind::ImageIncorrectState,
                format!("image {image_id} is {}", img.state),
            ));
        }
        if img.license_type == "BYOL" {
            return Err(Error::new(
                ErrorKind::ByolShare,
                format!("image {image_id} is bring-your-own-licence and cannot be sold"),
            ));
        }
        if !img.origin.is_empty() {
            if let Some(l) = self.catalog().listing_of_image(&img.origin).await? {
                return Err(Error::new(
                    ErrorKind::InvalidParameterValue,
                    format!(
                        "image {image_id} was made from marketplace image {} of provider {}: it cannot be resold",
                        img.origin, l.provider
                    ),
                ));
            }
        }
        let open = self
            .catalog()
            .listings(Some(&caller.account_id), None)
            .await?
            .into_iter()
            .any(|l| {
                l.source_image_id == image_id
                    && matches!(l.state.as_str(), lstate::PENDING | lstate::APPROVED)
            });
        if open {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("image {image_id} already has an open marketplace listing"),
            ));
        }
        let findings = self.scan_for_listing(img).await?;
        let now = ids::now();
        let l = Listing {
            listing_id: ids::new_id("mkt"),
            source_image_id: image_id.to_string(),
            image_id: String::new(),
            provider: caller.account_id.clone(),
            region: img.region.clone(),
            price_micros: to_micros(price),
            state: lstate::PENDING.into(),
            reason: String::new(),
            created_at: now,
            updated_at: now,
            findings,
        };
        self.catalog().insert_listing(&l).await?;
        Ok(l)
    }

    /// The hygiene scan of a submitted image (computed now when its facts are not done):
    /// refused with every `block` finding in the error; otherwise the findings (JSON) the
    /// listing keeps for its reviewer and provider.
    async fn scan_for_listing(&self, img: &Image) -> Result<String> {
        let Some(scan) = self.facts_now(img).await? else {
            return Ok("[]".into());
        };
        let blocking: Vec<String> = scan
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Block)
            .map(|f| format!("{} at {}: {}", f.id, f.path, f.message))
            .collect();
        if !blocking.is_empty() {
            return Err(Error::new(
                ErrorKind::ScanBlocked,
                format!(
                    "image {} cannot be listed: the hygiene scan found {} blocking finding(s): {}",
                    img.image_id,
                    blocking.len(),
                    blocking.join("; ")
                ),
            ));
        }
        serde_json::to_string(&scan.findings)
            .map_err(|e| Error::caused_by(ErrorKind::Internal, "findings encoding", e))
    }

    /// Listings: the caller's own, or every one for an administrator (`provider` None).
    pub async fn listings(
        &self,
        provider: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<Listing>> {
        Ok(self.catalog().listings(provider, state).await?)
    }

    /// Approves a PENDING listing: publishes the MARKET image (administrators only).
    pub async fn approve_listing(&self, listing_id: &str) -> Result<Listing> {
        let l = self
            .catalog()
            .listing(listing_id)
            .await?
            .ok_or_else(|| not_found(listing_id))?;
        if l.state != lstate::PENDING {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("listing {listing_id} is {}, not PENDING", l.state),
            ));
        }
        let src = self
            .catalog()
            .image(&l.source_image_id)
            .await?
            .filter(|i| i.state == state::NORMAL)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::ImageIncorrectState,
                    format!(
                        "the submitted image {} is gone or not NORMAL",
                        l.source_image_id
                    ),
                )
            })?;
        let now = ids::now();
        let mut name: String = src.name.chars().take(51).collect();
        name.push_str(" [market]");
        // The content is shared; the provider's own references are not: the provider's
        // snapshots and family stay private to the provider.
        let disks = src
            .disks
            .iter()
            .map(|d| ikon_catalog::DiskRef {
                snapshot_id: if d.snapshot_id.is_empty() {
                    String::new()
                } else {
                    ids::new_id("snap")
                },
                ..d.clone()
            })
            .collect();
        let img = Image {
            image_id: ids::new_id("img"),
            kind: "MARKET".into(),
            name,
            disks,
            family: String::new(),
            share_count: 0,
            origin: String::new(),
            created_at: now,
            updated_at: now,
            version: 1,
            tags: vec![
                (PRICE_TAG.into(), format!("{}", units(l.price_micros))),
                (PROVIDER_TAG.into(), l.provider.clone()),
            ],
            ..src
        };
        if !self
            .catalog()
            .approve_listing(listing_id, &img, now)
            .await?
        {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("listing {listing_id} changed meanwhile"),
            ));
        }
        self.catalog()
            .listing(listing_id)
            .await?
            .ok_or_else(|| not_found(listing_id))
    }

    /// Rejects a PENDING listing with a reason (administrators only).
    pub async fn reject_listing(&self, listing_id: &str, reason: &str) -> Result<()> {
        if self
            .catalog()
            .close_listing(
                listing_id,
                &[lstate::PENDING],
                lstate::REJECTED,
                reason,
                ids::now(),
            )
            .await?
        {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("listing {listing_id} does not exist or is not PENDING"),
            ))
        }
    }

    /// Withdraws a PENDING or APPROVED listing: by its provider (`caller`) or, with
    /// `caller` None, by an administrator.
    pub async fn withdraw_listing(&self, caller: Option<&Caller>, listing_id: &str) -> Result<()> {
        let l = self
            .catalog()
            .listing(listing_id)
            .await?
            .ok_or_else(|| not_found(listing_id))?;
        if let Some(c) = caller {
            if c.account_id != l.provider && !c.is_admin {
                return Err(not_found(listing_id));
            }
        }
        if self
            .catalog()
            .close_listing(
                listing_id,
                &[lstate::PENDING, lstate::APPROVED],
                lstate::WITHDRAWN,
                "withdrawn",
                ids::now(),
            )
            .await?
        {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!(
                    "listing {listing_id} is {} and cannot be withdrawn",
                    l.state
                ),
            ))
        }
    }
}
