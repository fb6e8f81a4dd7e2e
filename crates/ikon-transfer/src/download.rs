//! A download into the spool with a follower: while a [`Source`] writes the spool file, an
//! `ikon_store::Follower` hashes and stores its chunks as they arrive (and punches them out
//! of the spool), so storing overlaps the transfer and a large file is never written to
//! disk twice. When the follower punched the spool, the file exists only in the store: the
//! result then carries it as a disk of the store and the spool is dropped (it can never be
//! resumed; a retry downloads again, without rewriting chunks the store already has).
//!
//! A process that dies while following leaves a spool whose punched ranges read as zeros.
//! A marker file beside the spool says it is being followed (removed when a follow ends
//! without punching); an attempt that finds it starts the download over instead of resuming
//! onto the holes.

use crate::fetch::{FetchError, Fetched, UNWRITTEN_MAX};
use crate::source::Source;
use std::path::{Path, PathBuf};

/// A finished download.
pub struct Downloaded {
    /// What the source reported.
    pub fetched: Fetched,
    /// The chunks already stored for the file (they need not be written again).
    pub known: ikon_store::Known,
    /// The file as the store holds it, when the follower punched it out of the spool (the
    /// spool file is gone); `None`: the spool file holds it all.
    pub stored: Option<ikon_store::ManifestDisk>,
}

/// Why a download did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// The source failed (see [`FetchError`] for which failures another attempt may fix).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The source started over while its chunks were being stored: import again.
    #[error("the download started over while its chunks were being stored; importing again")]
    Restarted,
    /// The chunk store failed while storing the file's remaining chunks.
    #[error("chunk store: {0}")]
    Store(String),
}

/// Fetches `source` into `dest` within the store's write `session` (which keeps a garbage
/// collection from removing the stored chunks before a manifest names them), reporting
/// (bytes, total) to `report`.
pub async fn download_following(
    session: &ikon_store::WriteSession,
    source: &dyn Source,
    dest: &Path,
    report: &(dyn Fn(u64, Option<u64>) + Send + Sync),
) -> Result<Downloaded, DownloadError> {
    let marker = marker_path(dest);
    if tokio::fs::try_exists(&marker).await.unwrap_or(true) {
        // An earlier process followed this spool and died: never resume onto its holes.
        drop_spool(dest).await;
    }
    // Without the marker on disk the spool is not punched (a crash could not be told apart).
    let punch = tokio::fs::write(&marker, b"").await.is_ok();
    let follower = follower(session, dest, punch).await;
    let progress = |n: u64, total: Option<u64>| {
        report(n, total);
        if let Some(f) = &follower {
            f.advance(n.saturating_sub(UNWRITTEN_MAX));
        }
    };
    let fetched = source.fetch(dest, &progress).await;
    let followed = match follower {
        Some(f) => tokio::task::spawn_blocking(move || f.finish()).await.ok(),
        None => Some(ikon_store::Followed::default()),
    };
    match followed {
        Some(f) if !f.punched => {
            // Nothing was punched: the spool is whole and a later attempt may resume it.
            let _ = tokio::fs::remove_file(&marker).await;
            Ok(Downloaded {
                fetched: fetched?,
                known: f.known,
                stored: None,
            })
        }
        punched => {
            // The spool lacks the punched ranges: it is never resumed, whatever happens next.
            let built = stored_file(session, dest, punched, fetched).await;
            drop_spool(dest).await;
            built
        }
    }
}

/// After a download whose follower punched the spool: the whole file as the store holds it
/// (the tail and any chunk the follower missed are stored now).
async fn stored_file(
    session: &ikon_store::WriteSession,
    dest: &Path,
    followed: Option<ikon_store::Followed>,
    fetched: Result<Fetched, FetchError>,
) -> Result<Downloaded, DownloadError> {
    let fetched = fetched?;
    let mut known = match followed {
        Some(f) if !f.known.is_empty() => f.known,
        _ => return Err(DownloadError::Restarted),
    };
    let store = session.store().clone();
    let path = dest.to_path_buf();
    let (m, known) = tokio::task::spawn_blocking(move || {
        ikon_store::file_manifest(&store, &path, &mut known).map(|m| (m, known))
    })
    .await
    .map_err(|e| DownloadError::Store(format!("worker: {e}")))?
    .map_err(|e| DownloadError::Store(e.to_string()))?;
    Ok(Downloaded {
        fetched,
        known,
        stored: Some(session.store().open_disk(m)),
    })
}

/// Removes a spool file, its resume validator and its follow marker.
pub async fn drop_spool(dest: &Path) {
    let _ = tokio::fs::remove_file(dest).await;
    let mut v = dest.as_os_str().to_owned();
    v.push(".validator");
    let _ = tokio::fs::remove_file(PathBuf::from(v)).await;
    let _ = tokio::fs::remove_file(marker_path(dest)).await;
}

/// The marker saying a follower may have punched `dest` (see the module header).
fn marker_path(dest: &Path) -> PathBuf {
    let mut m = dest.as_os_str().to_owned();
    m.push(".following");
    PathBuf::from(m)
}

/// Starts storing the spool's chunks as they arrive (see `ikon_store::Follower`); `None`
/// if the spool cannot be opened (the chunks are then stored after the download).
async fn follower(
    session: &ikon_store::WriteSession,
    dest: &Path,
    punch: bool,
) -> Option<ikon_store::Follower> {
    tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dest)
        .await
        .ok()?;
    // One hasher per core (the follower has its own writer threads).
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .min(8);
    session.follow(dest.to_path_buf(), threads, punch).ok()
}
