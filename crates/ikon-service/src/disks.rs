//! Instance disks as writable copy-on-write devices, and who may attach them over NBD.
//!
//! One open handle per disk per process ([`Instances::open_disk`](crate::facets::Instances::open_disk)) is shared by every NBD
//! connection and by the operations that need the disk's current content (snapshots,
//! images from instances, re-install), so they all see the same writes. A handle commits
//! new content by writing a manifest under the disk's id and moving the disk row to it.
//! A disk is served by one `ikon serve` process at a time.
//!
//! NBD access: the export name is `<disk-id>/<SecretId>/<token>` where `token` is the
//! lower-case hex HMAC-SHA256 of `ikon-nbd-v1:<disk-id>` under the SecretKey of an enabled
//! key of the disk's owner ([`nbd_token`]); disabling the key revokes every token made
//! with it. The bare disk id alone is never enough.

use crate::{ids, Error, ErrorKind, KeyLookup, Result, Service};
use hmac::{Hmac, Mac};
use ikon_catalog::Disk;
use ikon_store::{Manifest, ManifestRef, WritableDisk};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Open disk handles of this process.
#[derive(Default)]
pub(crate) struct OpenDisks {
    map: Mutex<HashMap<String, Weak<WritableDisk>>>,
}

impl OpenDisks {
    fn get(&self, id: &str) -> Option<Arc<WritableDisk>> {
        self.map.lock().ok()?.get(id).and_then(Weak::upgrade)
    }
}

/// The NBD access token for `disk_id` made with a key's secret (see the module docs).
pub fn nbd_token(secret_key: &str, disk_id: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("ikon-nbd-v1:{disk_id}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The full NBD export name for `disk_id` with a key pair.
pub fn nbd_export_name(secret_id: &str, secret_key: &str, disk_id: &str) -> String {
    format!("{disk_id}/{secret_id}/{}", nbd_token(secret_key, disk_id))
}

fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::caused_by(ErrorKind::Storage, "storage failed", e)
}

fn denied() -> Error {
    Error::new(
        ErrorKind::DiskNotFound,
        "no such export, or the export name does not carry a valid token for its owner",
    )
}

/// Equality of two secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Service {
    /// The manifest a disk (or snapshot) content reference of something in `region` names,
    /// sized to at least `size` bytes, and the store holding it (see
    /// [`Service::store_holding`]); an empty name means all zeros, in the region's store.
    pub(crate) async fn content_in(
        &self,
        region: &str,
        mdisk: &str,
        mver: u64,
        size: u64,
    ) -> Result<(Manifest, ikon_store::Store)> {
        if mdisk.is_empty() {
            let store = self.store_for(region);
            let m = Manifest::empty(size, store.chunk_size()).map_err(storage)?;
            return Ok((m, store));
        }
        let r = ManifestRef {
            disk_id: mdisk.to_string(),
            version: mver,
        };
        let store = self.store_holding(region, &r).await?;
        let m = store.get_manifest(&r).await.map_err(storage)?;
        Ok((m, store))
    }

    /// The manifest of [`Service::content_in`].
    pub(crate) async fn content(
        &self,
        region: &str,
        mdisk: &str,
        mver: u64,
        size: u64,
    ) -> Result<Manifest> {
        Ok(self.content_in(region, mdisk, mver, size).await?.0)
    }

    /// Commits an open disk's pending writes (if it is open) and returns its row as of
    /// after the commit, with an all-zero disk given a stored (empty) manifest, so that the
    /// row's reference can be shared by a snapshot or an image.
    pub(crate) async fn settled_disk(&self, disk_id: &str) -> Result<Disk> {
        if let Some(h) = self.inner.open_disks.get(disk_id) {
            tokio::task::spawn_blocking(move || h.commit())
                .await
                .map_err(|e| Error::caused_by(ErrorKind::Internal, "internal failure", e))?
                .map_err(storage)?;
        }
        let d = self.catalog().disk(disk_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::DiskNotFound,
                format!("disk {disk_id} does not exist"),
            )
        })?;
        if !d.manifest_disk.is_empty() {
            return Ok(d);
        }
        let store = self.store_for(&d.region);
        let m = Manifest::empty(d.size_bytes, store.chunk_size()).map_err(storage)?;
        let session = store.begin_write().await.map_err(storage)?;
        let r = store.put_manifest(disk_id, &m).await.map_err(storage)?;
        self.catalog()
            .set_disk_manifest(disk_id, &r.disk_id, r.version, ids::now())
            .await?;
        session.end().await.map_err(storage)?;
        self.catalog().disk(disk_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::DiskNotFound,
                format!("disk {disk_id} does not exist"),
            )
        })
    }

    /// Closes a disk's open handle (the disk is being deleted).
    pub(crate) fn close_disk(&self, disk_id: &str) {
        if let Some(h) = self.inner.open_disks.get(disk_id) {
            h.close();
        }
    }
}

impl crate::facets::Instances<'_> {
    /// The shared open handle of a disk (opened on first use).
    pub async fn open_disk(&self, disk_id: &str) -> Result<Arc<WritableDisk>> {
        if let Some(h) = self.inner.open_disks.get(disk_id) {
            return Ok(h);
        }
        let d = self.catalog().disk(disk_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::DiskNotFound,
                format!("disk {disk_id} does not exist"),
            )
        })?;
        // The disk lives where its content is: its region's store for everything made
        // since the region had one.
        let (base, store) = self
            .content_in(
                &d.region,
                &d.manifest_disk,
                d.manifest_version,
                d.size_bytes,
            )
            .await?;
        let catalog = self.catalog().clone();
        let rt = tokio::runtime::Handle::current();
        let id = d.disk_id.clone();
        let hook: ikon_store::CommitHook = Box::new(move |r: &ManifestRef| {
            let ok = rt
                .block_on(catalog.set_disk_manifest(&id, &r.disk_id, r.version, ids::now()))
                .map_err(|e| e.to_string())?;
            if ok {
                Ok(())
            } else {
                Err(format!("disk {id} no longer exists"))
            }
        });
        let h = Arc::new(
            WritableDisk::open(store, &d.disk_id, &base, d.size_bytes, hook).map_err(storage)?,
        );
        let mut map = self
            .inner
            .open_disks
            .map
            .lock()
            .map_err(|_| Error::internal("open disk table poisoned"))?;
        map.retain(|_, w| w.strong_count() > 0);
        // Another caller may have opened it meanwhile: keep theirs.
        if let Some(existing) = map.get(disk_id).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        map.insert(disk_id.to_string(), Arc::downgrade(&h));
        Ok(h)
    }

    /// Resolves an NBD export name to the disk it names, if it carries a valid token of an
    /// enabled key of the disk's owner (module docs).
    pub async fn nbd_open(&self, export_name: &str) -> Result<Arc<WritableDisk>> {
        let mut parts = export_name.splitn(3, '/');
        let (Some(disk_id), Some(secret_id), Some(token)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(denied());
        };
        if !ids::is_well_formed("disk", disk_id) {
            return Err(denied());
        }
        let KeyLookup::Active {
            secret_key,
            account_id,
            ..
        } = self.accounts().lookup_key(secret_id).await?
        else {
            return Err(denied());
        };
        if !constant_time_eq(nbd_token(&secret_key, disk_id).as_bytes(), token.as_bytes()) {
            return Err(denied());
        }
        match self.catalog().disk(disk_id).await? {
            Some(d) if d.owner == account_id => self.open_disk(disk_id).await,
            _ => Err(denied()),
        }
    }
}
