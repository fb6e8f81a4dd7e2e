//! Console sessions: a row per signed-in browser, keyed by the SHA-256 of its cookie token
//! (a stolen catalog yields no usable session), with its CSRF token and the times that
//! decide idle and absolute expiry (the service's rule).

use crate::{Catalog, Result};
use sqlx::Row;

/// A console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 of the cookie token (hex).
    pub token_hash: String,
    /// Account signed in.
    pub account_id: String,
    /// Token every state-changing request must carry.
    pub csrf: String,
    /// Signed in (unix seconds).
    pub created_at: i64,
    /// Last request (unix seconds).
    pub last_seen: i64,
}

impl Catalog {
    /// Stores a new session.
    pub async fn create_session(&self, s: &ConsoleSession) -> Result<()> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, account_id, csrf, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(&s.account_id)
        .bind(&s.csrf)
        .bind(s.created_at)
        .bind(s.last_seen)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A session by its token hash.
    pub async fn session(&self, token_hash: &str) -> Result<Option<ConsoleSession>> {
        let r = sqlx::query(
            "SELECT token_hash, account_id, csrf, created_at, last_seen FROM console_sessions
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| {
            Ok(ConsoleSession {
                token_hash: r.try_get("token_hash")?,
                account_id: r.try_get("account_id")?,
                csrf: r.try_get("csrf")?,
                created_at: r.try_get("created_at")?,
                last_seen: r.try_get("last_seen")?,
            })
        })
        .transpose()
    }

    /// Records activity on a session.
    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE console_sessions SET last_seen = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends every session of an account (it was disabled).
    pub async fn delete_account_sessions(&self, account_id: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE account_id = $1")
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }

    /// Forgets sessions idle since before `idle_before` or made before `made_before`.
    pub async fn prune_sessions(&self, idle_before: i64, made_before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM console_sessions WHERE last_seen < $1 OR created_at < $2")
            .bind(idle_before)
            .bind(made_before)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}
