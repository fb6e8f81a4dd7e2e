//! Image prices and metering. The rules (the clouds' pricing): public images are free except
//! Windows public images in the licence regions (North America), which carry a licence fee
//! per instance-hour; a marketplace image costs its provider's price per instance-hour; a
//! custom image made (through an instance) from a marketplace or licensed image inherits
//! that fee; custom images cost storage per GiB-month of the chunks only they hold (chunks
//! shared with public or marketplace images are free). Prices are kept in millionths of the
//! currency unit.
//!
//! Metering: every instance has one usage span per installed image, opened and closed in
//! the same transactions that create, re-install and terminate it, with the fee fixed when
//! the span starts; storage is sampled per account (`ikon serve` every
//! `pricing.storage_sample_secs`, or `ikon admin billing sample`). A month's report sums
//! instance-hours per billed image and GiB-hours of storage.

use crate::{ids, Caller, Error, ErrorKind, Result, Service};
use ikon_catalog::Image;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Millionths per currency unit.
pub const MICROS: i64 = 1_000_000;

/// Converts a price to millionths (rounded).
pub fn to_micros(v: f64) -> i64 {
    // Prices are validated to 0..=1e6 units, far inside i64 range.
    #[allow(clippy::cast_possible_truncation)]
    let m = (v * 1e6).round() as i64;
    m
}

/// A price in currency units (for display).
pub fn units(micros: i64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = micros as f64 / 1e6;
    v
}

/// The image part of an instance's hourly price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFee {
    /// The image whose fee applies (`""` when free).
    pub billed_image_id: String,
    /// Fee per instance-hour in millionths.
    pub micros_per_hour: i64,
    /// Why (for people).
    pub reason: String,
}

impl ImageFee {
    fn free(reason: &str) -> ImageFee {
        ImageFee {
            billed_image_id: String::new(),
            micros_per_hour: 0,
            reason: reason.into(),
        }
    }
}

/// One line of a bill: instance-hours of a billed image.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceLine {
    /// Image whose fee applies (or the image run, when free).
    pub image_id: String,
    /// Instance-hours in the month.
    pub instance_hours: f64,
    /// Fee per instance-hour.
    pub price_per_hour: f64,
    /// Amount.
    pub amount: f64,
}

/// A month's bill of an account.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BillingReport {
    /// Account.
    pub account_id: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Currency.
    pub currency: String,
    /// Instance-hours per image.
    pub instances: Vec<InstanceLine>,
    /// GiB-hours of unique custom-image chunks.
    #[serde(rename = "StorageGiBHours")]
    pub storage_gib_hours: f64,
    /// Storage price per GiB-month.
    #[serde(rename = "StoragePricePerGiBMonth")]
    pub storage_price_per_gib_month: f64,
    /// Storage amount.
    pub storage_amount: f64,
    /// Everything.
    pub total: f64,
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[allow(clippy::cast_precision_loss)]
fn f(v: i64) -> f64 {
    v as f64
}

impl Service {
    async fn market_fee(&self, image_id: &str) -> Result<ImageFee> {
        Ok(match self.catalog().listing_of_image(image_id).await? {
            Some(l) => ImageFee {
                billed_image_id: image_id.to_string(),
                micros_per_hour: l.price_micros,
                reason: format!("marketplace image {image_id} of provider {}", l.provider),
            },
            None => ImageFee::free("no fee"),
        })
    }
}

impl crate::facets::Market<'_> {
    /// The hourly fee of running `img` in `region` (see the module documentation).
    pub async fn image_fee(&self, region: &str, img: &Image) -> Result<ImageFee> {
        let p = &self.config().pricing;
        let licensed = |i: &Image| {
            (i.os_type.eq_ignore_ascii_case("windows")
                || i.platform.eq_ignore_ascii_case("windows"))
                && p.license_regions.iter().any(|r| r == region)
        };
        match img.kind.as_str() {
            "PUBLIC" if licensed(img) => Ok(ImageFee {
                billed_image_id: img.image_id.clone(),
                micros_per_hour: to_micros(p.windows_license_per_hour),
                reason: format!("Windows licence fee in {region}"),
            }),
            "PUBLIC" => Ok(ImageFee::free("public image")),
            "MARKET" => self.market_fee(&img.image_id).await,
            _ if img.origin.is_empty() => Ok(ImageFee::free("custom image")),
            _ => match self.catalog().image(&img.origin).await? {
                Some(o) if o.kind == "PUBLIC" && licensed(&o) => Ok(ImageFee {
                    billed_image_id: o.image_id.clone(),
                    micros_per_hour: to_micros(p.windows_license_per_hour),
                    reason: format!("made from licensed image {}", o.image_id),
                }),
                // Withdrawn marketplace images keep their listing (and price).
                _ => self.market_fee(&img.origin).await,
            },
        }
    }

    /// The image part of the hourly price of running `count` instances of `image_id`.
    pub async fn inquiry_price(
        &self,
        caller: &Caller,
        image_id: &str,
        zone: &str,
        count: u32,
    ) -> Result<(ImageFee, i64)> {
        self.instances().check_zone(caller, zone)?;
        let max = self.config().instances.max_per_call;
        if count == 0 || count > max {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                format!("InstanceCount must be between 1 and {max}"),
            ));
        }
        let v = self.usable_image(caller, image_id).await?;
        let fee = self.image_fee(&caller.region, &v.image).await?;
        let total = fee.micros_per_hour.saturating_mul(i64::from(count));
        Ok((fee, total))
    }

    /// Records one storage sample per account: bytes of chunks its custom images hold that
    /// no public or marketplace image holds (counted once per account).
    pub async fn sample_storage(&self) -> Result<usize> {
        let images = self.catalog().image_disks_by_owner().await?;
        let mut manifests: HashMap<(String, u64), ikon_store::Manifest> = HashMap::new();
        for (_, _, disks) in &images {
            for d in disks {
                if let std::collections::hash_map::Entry::Vacant(v) =
                    manifests.entry((d.disk_id.clone(), d.version))
                {
                    // No region at hand: the default store first, then any other.
                    v.insert(
                        self.content("", &d.disk_id, d.version, d.size_bytes)
                            .await?,
                    );
                }
            }
        }
        let mut platform = HashSet::new();
        let mut per_account: BTreeMap<String, HashMap<ikon_store::ChunkHash, u64>> =
            BTreeMap::new();
        for (kind, owner, disks) in &images {
            for d in disks {
                let Some(m) = manifests.get(&(d.disk_id.clone(), d.version)) else {
                    continue;
                };
                for (i, c) in m.chunks.iter().enumerate() {
                    let Some(h) = c else { continue };
                    if kind == "PRIVATE" {
                        per_account
                            .entry(owner.clone())
                            .or_default()
                            .insert(*h, m.chunk_len(i));
                    } else {
                        platform.insert(*h);
                    }
                }
            }
        }
        let now = ids::now();
        let mut n = 0;
        for acc in self.catalog().accounts().await? {
            let bytes: u64 = per_account
                .get(&acc.account_id)
                .map(|m| {
                    m.iter()
                        .filter(|(h, _)| !platform.contains(*h))
                        .map(|(_, l)| *l)
                        .sum()
                })
                .unwrap_or(0);
            self.catalog()
                .add_storage_sample(&acc.account_id, now, bytes)
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// The bill of `account` for `month` (`YYYY-MM`), up to now for the current month.
    pub async fn billing_report(&self, account: &str, month: &str) -> Result<BillingReport> {
        let (from, to) = ids::month_range(month).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidParameterValue,
                format!("month {month:?} is not YYYY-MM"),
            )
        })?;
        if self.catalog().account(account).await?.is_none() {
            return Err(Error::new(
                ErrorKind::AccountNotFound,
                format!("account {account} does not exist"),
            ));
        }
        let now = ids::now();
        let end = to.min(now);
        let mut lines: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for u in self.catalog().usage(account, from, to).await? {
            let s = u.started_at.max(from);
            let e = u.ended_at.unwrap_or(now).min(end);
            if e > s {
                let key = if u.billed_image_id.is_empty() {
                    (u.image_id.clone(), 0)
                } else {
                    (u.billed_image_id.clone(), u.price_micros)
                };
                *lines.entry(key).or_default() += e - s;
            }
        }
        let instances: Vec<InstanceLine> = lines
            .into_iter()
            .map(|((image_id, price), secs)| {
                let hours = f(secs) / 3600.0;
                InstanceLine {
                    image_id,
                    instance_hours: round6(hours),
                    price_per_hour: units(price),
                    amount: round6(hours * units(price)),
                }
            })
            .collect();
        let samples = self.catalog().storage_samples(account, from, to).await?;
        let mut gib_secs = 0.0;
        for (i, (at, bytes)) in samples.iter().enumerate() {
            let s = (*at).max(from);
            let e = samples.get(i + 1).map(|n| n.0).unwrap_or(end).min(end);
            if e > s {
                #[allow(clippy::cast_precision_loss)]
                let gib = *bytes as f64 / f64::from(1u32 << 30);
                gib_secs += gib * f(e - s);
            }
        }
        let gib_hours = gib_secs / 3600.0;
        let price = self.config().pricing.storage_per_gib_month;
        let storage_amount = round6(gib_hours / (30.0 * 24.0) * price);
        let total = round6(instances.iter().map(|l| l.amount).sum::<f64>() + storage_amount);
        Ok(BillingReport {
            account_id: account.to_string(),
            month: month.to_string(),
            currency: self.config().pricing.currency.clone(),
            instances,
            storage_gib_hours: round6(gib_hours),
            storage_price_per_gib_month: price,
            storage_amount,
            total,
        })
    }
}
