//! Console sessions: an account's SecretId and SecretKey are exchanged for a server-side
//! session kept in the catalog (so any node honours it). The browser holds only a random
//! token (its SHA-256 is the row's key); every state-changing request carries the session's
//! CSRF token. A session ends on sign-out, after `IDLE_SECS` without a request, after
//! `MAX_SECS` in all, and at once when its account is disabled or its key is refused.

use crate::disks::constant_time_eq as same;
use crate::{ids, Caller, Error, ErrorKind, KeyLookup, Result};
use ikon_catalog::ConsoleSession;
use sha2::{Digest, Sha256};

/// A session ends after this long without a request.
pub const IDLE_SECS: i64 = 30 * 60;
/// A session ends this long after sign-in, whatever happens.
pub const MAX_SECS: i64 = 12 * 3600;
/// Activity is written to the catalog at most this often per session.
const TOUCH_EVERY: i64 = 60;

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct Session {
    /// Token for the cookie (shown once; the catalog keeps its hash).
    pub token: String,
    /// CSRF token for forms.
    pub csrf: String,
    /// Account.
    pub account_id: String,
    /// Platform administrator.
    pub is_admin: bool,
}

impl Session {
    /// A caller acting in `region`.
    pub fn caller(&self, region: &str) -> Caller {
        Caller {
            account_id: self.account_id.clone(),
            is_admin: self.is_admin,
            region: region.to_string(),
        }
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).map_err(|e| Error::internal(format!("random: {e}")))?;
    Ok(hex::encode(b))
}

fn refused() -> Error {
    Error::new(
        ErrorKind::AccountNotFound,
        "the SecretId or SecretKey is wrong, or the key or its account is disabled",
    )
}

impl crate::facets::Accounts<'_> {
    /// Signs in with a key pair: a new session, or one plain refusal for a wrong, unknown
    /// or disabled key (which of them is not said).
    pub async fn sign_in(&self, secret_id: &str, secret_key: &str) -> Result<Session> {
        let (key, account_id, is_admin) = match self.lookup_key(secret_id).await? {
            KeyLookup::Active {
                secret_key,
                account_id,
                is_admin,
            } => (secret_key, account_id, is_admin),
            KeyLookup::Unknown | KeyLookup::Disabled => return Err(refused()),
        };
        if !same(key.as_bytes(), secret_key.as_bytes()) {
            return Err(refused());
        }
        let token = random_hex(32)?;
        let csrf = random_hex(16)?;
        let now = ids::now();
        self.catalog()
            .create_session(&ConsoleSession {
                token_hash: token_hash(&token),
                account_id: account_id.clone(),
                csrf: csrf.clone(),
                created_at: now,
                last_seen: now,
            })
            .await?;
        Ok(Session {
            token,
            csrf,
            account_id,
            is_admin,
        })
    }

    /// The live session of `token`, if any (expired, signed-out and disabled accounts'
    /// sessions are none).
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        if token.len() != 64 {
            return Ok(None);
        }
        let hash = token_hash(token);
        let Some(s) = self.catalog().session(&hash).await? else {
            return Ok(None);
        };
        let now = ids::now();
        let account = self.catalog().account(&s.account_id).await?;
        let live = now - s.last_seen <= IDLE_SECS && now - s.created_at <= MAX_SECS;
        let Some(account) = account.filter(|a| live && !a.disabled) else {
            self.catalog().delete_session(&hash).await?;
            return Ok(None);
        };
        if now - s.last_seen >= TOUCH_EVERY {
            self.catalog().touch_session(&hash, now).await?;
        }
        Ok(Some(Session {
            token: token.to_string(),
            csrf: s.csrf,
            account_id: account.account_id,
            is_admin: account.is_admin,
        }))
    }

    /// Ends the session of `token`.
    pub async fn sign_out(&self, token: &str) -> Result<()> {
        Ok(self.catalog().delete_session(&token_hash(token)).await?)
    }

    /// Whether `given` is the session's CSRF token.
    pub fn csrf_ok(&self, s: &Session, given: &str) -> bool {
        same(s.csrf.as_bytes(), given.as_bytes())
    }
}
