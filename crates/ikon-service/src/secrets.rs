//! Secrets at rest: every API secret key is stored sealed under the service's master key
//! (ChaCha20-Poly1305, a random nonce per seal, the SecretId as associated data so a sealed
//! value cannot be moved to another key's row), so a stolen catalog alone yields no usable
//! key.
//!
//! The master key lives in a 0600 file (default `DIR/master.key`, hex). The catalog records
//! its id (a keyed hash, never the key) in `meta.master_key_id`: a node whose file holds a
//! different key refuses to start, and a file is created only when the catalog has no id
//! yet (the first node). Rotation writes the new key beside the old one (`.new`), re-seals
//! every key and records the new id in one transaction, then renames the file into place; a
//! crash in between is finished at the next start. A running node that meets a value sealed
//! under a newer key reloads the file.

use crate::{Error, ErrorKind, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ikon_catalog::Catalog;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Meta key holding the id of the master key the catalog's secrets are sealed under.
pub const MASTER_KEY_ID: &str = "master_key_id";
/// Prefix of a sealed value: `enc1:<key id>:<hex of nonce ‖ ciphertext ‖ tag>`.
const SEALED: &str = "enc1:";
/// ChaCha20-Poly1305 nonce length (RFC 8439 §2.8).
const NONCE_LEN: usize = 12;

fn internal(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Internal, msg.into())
}

/// The master key.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Result<MasterKey> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).map_err(|e| internal(format!("random: {e}")))?;
        Ok(MasterKey::from_bytes(key))
    }

    fn from_bytes(key: [u8; 32]) -> MasterKey {
        let digest = Sha256::new()
            .chain_update(b"ikon-master-key-id-v1")
            .chain_update(key)
            .finalize();
        let id = hex::encode(&digest[..8]);
        MasterKey { key, id }
    }

    /// The key from its file's text (64 hex digits).
    pub fn parse(text: &str) -> Result<MasterKey> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| internal("the master key file does not hold 64 hex digits"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| internal("the master key file does not hold 64 hex digits"))?;
        Ok(MasterKey::from_bytes(key))
    }

    /// Its id (a keyed hash of the key; safe to show and store).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.key))
    }

    /// Seals the secret of `secret_id`.
    pub fn seal(&self, secret_id: &str, secret: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| internal(format!("random: {e}")))?;
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: secret_id.as_bytes(),
                },
            )
            .map_err(|_| internal("sealing a secret failed"))?;
        let mut all = nonce.to_vec();
        all.extend_from_slice(&ct);
        Ok(format!("{SEALED}{}:{}", self.id, hex::encode(all)))
    }

    /// Opens a value stored for `secret_id` (a value from before sealing, without the
    /// prefix, is returned as it is).
    pub fn open(&self, secret_id: &str, stored: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_string());
        };
        let (id, body) = rest
            .split_once(':')
            .ok_or_else(|| internal("a sealed secret is malformed"))?;
        if id != self.id {
            return Err(internal(format!(
                "a secret is sealed under master key {id}, not {}",
                self.id
            )));
        }
        let raw = hex::decode(body).map_err(|_| internal("a sealed secret is malformed"))?;
        if raw.len() < NONCE_LEN {
            return Err(internal("a sealed secret is malformed"));
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let pt = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: secret_id.as_bytes(),
                },
            )
            .map_err(|_| internal("a sealed secret does not open (tampered or moved)"))?;
        String::from_utf8(pt).map_err(|_| internal("a sealed secret is not text"))
    }

    /// The id a stored value was sealed under (None: not sealed).
    pub fn sealed_under(stored: &str) -> Option<&str> {
        stored
            .strip_prefix(SEALED)
            .and_then(|r| r.split_once(':'))
            .map(|(id, _)| id)
    }
}

/// The `.new` file a rotation writes first.
pub fn pending_path(path: &Path) -> PathBuf {
    pending(path)
}

fn pending(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

fn read_key(path: &Path) -> Result<Option<MasterKey>> {
    match std::fs::read_to_string(path) {
        Ok(t) => MasterKey::parse(&t)
            .map(Some)
            .map_err(|e| internal(format!("{}: {}", path.display(), e.message))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(internal(format!("reading {}: {e}", path.display()))),
    }
}

/// Writes a key file (mode 0600, created new, synced).
fn write_key(path: &Path, key: &MasterKey) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| internal(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(format!("{}\n", hex::encode(key.key)).as_bytes())
        .map_err(io)?;
    f.sync_all().map_err(io)
}

fn rename_into_place(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .map_err(|e| internal(format!("renaming {} into place: {e}", from.display())))?;
    if let Some(dir) = to.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Opens the master key at `path` for `catalog` (see the module's rules), creating it when
/// the catalog has none yet, and seals any secret still stored in clear.
pub async fn open_master_key(path: &Path, catalog: &Catalog) -> Result<MasterKey> {
    let recorded = catalog.meta_get(MASTER_KEY_ID).await?;
    let current = read_key(path)?;
    let next = read_key(&pending(path))?;
    let key = match (recorded, current) {
        (None, Some(k)) => {
            if !catalog.meta_set_if_absent(MASTER_KEY_ID, k.id()).await? {
                return Box::pin(open_master_key(path, catalog)).await;
            }
            k
        }
        (None, None) => {
            let k = MasterKey::generate()?;
            write_key(path, &k)?;
            if !catalog.meta_set_if_absent(MASTER_KEY_ID, k.id()).await? {
                // Another node recorded its key first: ours must not be used.
                let _ = std::fs::remove_file(path);
                return Err(refused(path, catalog).await);
            }
            k
        }
        (Some(id), Some(k)) if id == k.id() => k,
        (Some(id), _) if next.as_ref().is_some_and(|n| n.id() == id) => {
            // A rotation committed but did not rename its file: finish it.
            rename_into_place(&pending(path), path)?;
            next.clone()
                .ok_or_else(|| internal("rotation state vanished"))?
        }
        (Some(_), _) => return Err(refused(path, catalog).await),
    };
    if next.as_ref().is_some_and(|n| n.id() != key.id()) {
        // A rotation that never committed: its key sealed nothing.
        let _ = std::fs::remove_file(pending(path));
    }
    seal_clear_secrets(catalog, &key).await?;
    Ok(key)
}

async fn refused(path: &Path, catalog: &Catalog) -> Error {
    let id = catalog
        .meta_get(MASTER_KEY_ID)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    Error::new(
        ErrorKind::InvalidParameterValue,
        format!(
            "the catalog's API keys are sealed under master key {id}, which {} does not hold: \
             give this node the same master key file as the others (or point --master-key at it)",
            path.display()
        ),
    )
}

/// Meta key recording that no secret is stored in clear any more (keys are sealed when
/// made, so the sweep below runs once per catalog, not at every start or admin command).
const ALL_SEALED: &str = "secrets_sealed";

/// Seals every secret still stored in clear (catalogs from before sealing).
async fn seal_clear_secrets(catalog: &Catalog, key: &MasterKey) -> Result<()> {
    if catalog.meta_get(ALL_SEALED).await?.is_some() {
        return Ok(());
    }
    let mut changed = Vec::new();
    for k in catalog.all_keys().await? {
        if MasterKey::sealed_under(&k.secret_key).is_none() {
            changed.push((k.secret_id.clone(), key.seal(&k.secret_id, &k.secret_key)?));
        }
    }
    if !changed.is_empty() {
        catalog.reseal_keys(&changed, None).await?;
        tracing::info!(keys = changed.len(), "sealed API secrets stored in clear");
    }
    catalog.meta_set(ALL_SEALED, "1").await?;
    Ok(())
}

/// Rotates the master key at `path`: a new key seals every secret; returns it.
pub async fn rotate_master_key(path: &Path, catalog: &Catalog) -> Result<MasterKey> {
    let old = open_master_key(path, catalog).await?;
    let new = MasterKey::generate()?;
    let next = pending(path);
    let _ = std::fs::remove_file(&next);
    write_key(&next, &new)?;
    let mut changed = Vec::new();
    for k in catalog.all_keys().await? {
        let secret = old.open(&k.secret_id, &k.secret_key)?;
        changed.push((k.secret_id.clone(), new.seal(&k.secret_id, &secret)?));
    }
    catalog
        .reseal_keys(&changed, Some((MASTER_KEY_ID, old.id(), new.id())))
        .await?;
    // A key created meanwhile by a process still holding the old key: seal it anew.
    let mut late = Vec::new();
    for k in catalog.all_keys().await? {
        if MasterKey::sealed_under(&k.secret_key) == Some(old.id()) {
            let secret = old.open(&k.secret_id, &k.secret_key)?;
            late.push((k.secret_id.clone(), new.seal(&k.secret_id, &secret)?));
        }
    }
    if !late.is_empty() {
        catalog.reseal_keys(&late, None).await?;
    }
    rename_into_place(&next, path)?;
    Ok(new)
}

impl crate::facets::Admin<'_> {
    /// The id of the master key this service seals secrets under.
    pub fn master_key_id(&self) -> Result<String> {
        Ok(self.master_key()?.id().to_string())
    }

    /// Rotates the master key in `path` (see [`rotate_master_key`]); returns the new id.
    pub async fn rotate_master_key(&self, path: &Path) -> Result<String> {
        let key = rotate_master_key(path, self.catalog()).await?;
        let id = key.id().to_string();
        if let Ok(mut g) = self.inner.master.write() {
            g.0 = Some(std::sync::Arc::new(key));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let k = MasterKey::generate().unwrap_or_else(|e| panic!("{}", e.message));
        let s = k
            .seal("AKID1", "secret")
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert!(s.starts_with("enc1:") && !s.contains("secret"));
        assert_eq!(k.open("AKID1", &s).ok().as_deref(), Some("secret"));
        // Bound to its SecretId, its key, and its bytes.
        assert!(k.open("AKID2", &s).is_err());
        let other = MasterKey::generate().unwrap_or_else(|e| panic!("{}", e.message));
        assert!(other.open("AKID1", &s).is_err());
        let mut t = s.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'0' { b'1' } else { b'0' };
        assert!(k.open("AKID1", &String::from_utf8_lossy(&t)).is_err());
        // Values from before sealing pass through (and are sealed at start).
        assert_eq!(k.open("AKID1", "plain").ok().as_deref(), Some("plain"));
        let again =
            MasterKey::parse(&hex::encode(k.key)).unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(again.id(), k.id());
        assert!(MasterKey::parse("zz").is_err());
    }
}
