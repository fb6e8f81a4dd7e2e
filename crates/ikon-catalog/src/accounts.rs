//! Accounts and their API keys (SecretId / SecretKey pairs used by the TC3 and Alibaba
//! signatures). Secret keys are stored as issued: HMAC verification needs the key itself.

use crate::{conflict_or, Catalog, Result};
use sqlx::Row;

/// An account (a tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Decimal account id (12 digits).
    pub account_id: String,
    /// Unique human name.
    pub name: String,
    /// Platform administrator.
    pub is_admin: bool,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Disabled: every key of the account is refused; its resources are kept.
    pub disabled: bool,
}

/// An API key and the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public half (`AKID…`).
    pub secret_id: String,
    /// Secret half.
    pub secret_key: String,
    /// Owner.
    pub account_id: String,
    /// Whether the key may sign requests.
    pub enabled: bool,
}

impl Catalog {
    /// Creates an account; a taken name or id is a Conflict.
    pub async fn create_account(&self, a: &Account) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (account_id, name, is_admin, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&a.account_id)
        .bind(&a.name)
        .bind(i64::from(a.is_admin))
        .bind(a.created_at)
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("account {:?}", a.name)))?;
        Ok(())
    }

    /// Looks an account up by id.
    pub async fn account(&self, account_id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT account_id, name, is_admin, created_at, disabled FROM accounts WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    /// Looks an account up by name.
    pub async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT account_id, name, is_admin, created_at, disabled FROM accounts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| account_from_row(&r)).transpose()
    }

    /// All accounts, oldest first.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT account_id, name, is_admin, created_at, disabled FROM accounts ORDER BY created_at, account_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// Stores a new API key.
    pub async fn create_key(&self, k: &ApiKey, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (secret_id, account_id, secret_key, enabled, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.secret_id)
        .bind(&k.account_id)
        .bind(&k.secret_key)
        .bind(i64::from(k.enabled))
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| conflict_or(e, || format!("key {}", k.secret_id)))?;
        Ok(())
    }

    /// Looks a key up by its SecretId.
    pub async fn key(&self, secret_id: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(
            "SELECT secret_id, secret_key, account_id, enabled FROM api_keys WHERE secret_id = $1",
        )
        .bind(secret_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ApiKey {
                secret_id: r.try_get("secret_id")?,
                secret_key: r.try_get("secret_key")?,
                account_id: r.try_get("account_id")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
            })
        })
        .transpose()
    }

    /// A key and its account in one query (the authentication hot path).
    pub async fn key_with_account(&self, secret_id: &str) -> Result<Option<(ApiKey, Account)>> {
        let row = sqlx::query(
            "SELECT k.secret_id, k.secret_key, k.account_id, k.enabled, a.name, a.is_admin, a.created_at, a.disabled
             FROM api_keys k JOIN accounts a ON a.account_id = k.account_id WHERE k.secret_id = $1",
        )
        .bind(secret_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            let key = ApiKey {
                secret_id: r.try_get("secret_id")?,
                secret_key: r.try_get("secret_key")?,
                account_id: r.try_get("account_id")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
            };
            let account = Account {
                account_id: key.account_id.clone(),
                name: r.try_get("name")?,
                is_admin: r.try_get::<i64, _>("is_admin")? != 0,
                created_at: r.try_get("created_at")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
            };
            Ok((key, account))
        })
        .transpose()
    }

    /// Disables or re-enables an account (all its keys, and anything else that signs in as
    /// it); returns whether it exists.
    pub async fn set_account_disabled(&self, account_id: &str, disabled: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE accounts SET disabled = $1 WHERE account_id = $2")
            .bind(i64::from(disabled))
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every API key (for re-sealing secrets).
    pub async fn all_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT secret_id, secret_key, account_id, enabled FROM api_keys ORDER BY secret_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKey {
                    secret_id: r.try_get("secret_id")?,
                    secret_key: r.try_get("secret_key")?,
                    account_id: r.try_get("account_id")?,
                    enabled: r.try_get::<i64, _>("enabled")? != 0,
                })
            })
            .collect()
    }

    /// Replaces the stored secrets of the given keys in one transaction, with (when given)
    /// a compare-and-set of one meta value (`key`, expected old value, new value); nothing
    /// changes when the meta value is not the expected one (a Conflict).
    pub async fn reseal_keys(
        &self,
        secrets: &[(String, String)],
        meta: Option<(&str, &str, &str)>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if let Some((key, old, new)) = meta {
            let r = sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
                .bind(new)
                .bind(key)
                .bind(old)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() != 1 {
                return Err(crate::Error::Conflict(format!(
                    "meta {key} changed meanwhile"
                )));
            }
        }
        for (id, stored) in secrets {
            sqlx::query("UPDATE api_keys SET secret_key = $1 WHERE secret_id = $2")
                .bind(stored)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Takes `want` request tokens of `account_id`'s budget for `action` in the window
    /// starting at `window` (one statement, atomic across nodes); returns how many were
    /// asked for in that window before this call.
    pub async fn take_rate_tokens(
        &self,
        account_id: &str,
        action: &str,
        window: i64,
        want: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO rate_windows (account_id, action, window_start, used) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, action, window_start)
             DO UPDATE SET used = rate_windows.used + excluded.used RETURNING used",
        )
        .bind(account_id)
        .bind(action)
        .bind(window)
        .bind(want)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("used")? - want)
    }

    /// Forgets rate windows that started before `before`.
    pub async fn prune_rate_windows(&self, before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM rate_windows WHERE window_start < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }

    /// Enables or disables a key; returns whether it exists.
    pub async fn set_key_enabled(&self, secret_id: &str, enabled: bool) -> Result<bool> {
        let r = sqlx::query("UPDATE api_keys SET enabled = $1 WHERE secret_id = $2")
            .bind(i64::from(enabled))
            .bind(secret_id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

fn account_from_row(r: &sqlx::any::AnyRow) -> Result<Account> {
    Ok(Account {
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        is_admin: r.try_get::<i64, _>("is_admin")? != 0,
        created_at: r.try_get("created_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
    })
}
