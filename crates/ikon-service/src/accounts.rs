//! Accounts and API keys: creation (admin), the platform administrator made on first
//! start, and key lookup for request authentication. Secret keys are stored sealed under
//! the master key (`secrets`) and opened only to verify a signature.

use crate::secrets::MasterKey;
use crate::{ids, Caller, Error, ErrorKind, Result};
use ikon_catalog::{Account, ApiKey};

/// A newly issued key pair with its account.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    /// Account id.
    pub account_id: String,
    /// Account name.
    pub name: String,
    /// Public key half.
    pub secret_id: String,
    /// Secret key half (shown once).
    pub secret_key: String,
}

/// What a SecretId resolves to.
#[derive(Debug, Clone)]
pub enum KeyLookup {
    /// Unknown SecretId.
    Unknown,
    /// Known but disabled.
    Disabled,
    /// Usable: the secret to verify with and the account acting.
    Active {
        /// Secret key.
        secret_key: String,
        /// Account id.
        account_id: String,
        /// Platform administrator.
        is_admin: bool,
    },
}

/// Meta key recording that the platform administrator exists.
const ADMIN_KEY: &str = "platform_admin";

impl crate::facets::Accounts<'_> {
    /// Creates an account with one key.
    pub async fn create_account(&self, name: &str, is_admin: bool) -> Result<Credentials> {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidParameterValue,
                "account names are 1 to 64 printable characters",
            ));
        }
        let now = ids::now();
        let mut account = Account {
            account_id: ids::new_account_id(),
            name: name.to_string(),
            is_admin,
            created_at: now,
            disabled: false,
        };
        // A random 12-digit id can collide; a taken name cannot be retried.
        let mut tries = 0;
        loop {
            match self.catalog().create_account(&account).await {
                Ok(()) => break,
                Err(ikon_catalog::Error::Conflict(_)) if tries < 5 => {
                    if self.catalog().account_by_name(name).await?.is_some() {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            format!("an account named {name:?} exists"),
                        ));
                    }
                    tries += 1;
                    account.account_id = ids::new_account_id();
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.create_key(&account.account_id, name).await
    }

    /// Issues another key for an existing account.
    pub async fn create_key(&self, account_id: &str, name: &str) -> Result<Credentials> {
        let (secret_id, secret_key) = ids::new_key_pair().map_err(Error::internal)?;
        let key = ApiKey {
            secret_id: secret_id.clone(),
            secret_key: self.sealing_key().await?.seal(&secret_id, &secret_key)?,
            account_id: account_id.to_string(),
            enabled: true,
        };
        self.catalog().create_key(&key, ids::now()).await?;
        Ok(Credentials {
            account_id: account_id.to_string(),
            name: name.to_string(),
            secret_id,
            secret_key,
        })
    }

    /// Creates the platform administrator if this catalog has none yet; returns its
    /// credentials only the first time (they are never shown again).
    pub async fn bootstrap_admin(&self) -> Result<Option<Credentials>> {
        if self.catalog().meta_get(ADMIN_KEY).await?.is_some() {
            return Ok(None);
        }
        // Claim the right to create it first, so two nodes starting together make one.
        if !self
            .catalog()
            .meta_set_if_absent(ADMIN_KEY, "creating")
            .await?
        {
            return Ok(None);
        }
        let creds = self.create_account("platform-admin", true).await?;
        self.catalog()
            .meta_set(ADMIN_KEY, &creds.account_id)
            .await?;
        Ok(Some(creds))
    }

    /// Resolves a SecretId for authentication.
    pub async fn lookup_key(&self, secret_id: &str) -> Result<KeyLookup> {
        let Some((key, account)) = self.catalog().key_with_account(secret_id).await? else {
            return Ok(KeyLookup::Unknown);
        };
        if !key.enabled || account.disabled {
            return Ok(KeyLookup::Disabled);
        }
        let mut master = self.master_key()?;
        if let Some(id) = MasterKey::sealed_under(&key.secret_key) {
            if id != master.id() {
                // Sealed under a newer key: another process rotated it.
                master = self.reload_master_key(id)?.ok_or_else(|| {
                    Error::internal(format!(
                        "key {secret_id} is sealed under master key {id}, which this node does not hold"
                    ))
                })?;
            }
        }
        Ok(KeyLookup::Active {
            secret_key: master.open(secret_id, &key.secret_key)?,
            account_id: account.account_id,
            is_admin: account.is_admin,
        })
    }

    /// Every account (admin).
    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        Ok(self.catalog().accounts().await?)
    }

    /// One account (admin), or None.
    pub async fn account(&self, account_id: &str) -> Result<Option<Account>> {
        Ok(self.catalog().account(account_id).await?)
    }

    /// Issues another key for an existing account (admin).
    pub async fn create_key_for(&self, account_id: &str) -> Result<Credentials> {
        let a = self.account(account_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::AccountNotFound,
                format!("account {account_id} does not exist"),
            )
        })?;
        self.create_key(&a.account_id, &a.name).await
    }

    /// Disables a key: its requests are refused from now on (admin). False when no such
    /// key exists.
    pub async fn disable_key(&self, secret_id: &str) -> Result<bool> {
        Ok(self.catalog().set_key_enabled(secret_id, false).await?)
    }

    /// Disables an account (admin): every key of it is refused from now on, as is anything
    /// that authenticates as it (NBD tokens, uploads, console sessions); its images,
    /// instances and shares are kept. False when no such account exists.
    pub async fn disable_account(&self, account_id: &str) -> Result<bool> {
        let found = self
            .catalog()
            .set_account_disabled(account_id, true)
            .await?;
        // Console sessions end too (they are also checked against the account on use).
        self.catalog().delete_account_sessions(account_id).await?;
        Ok(found)
    }

    /// Re-enables a disabled account (admin). False when no such account exists.
    pub async fn enable_account(&self, account_id: &str) -> Result<bool> {
        Ok(self
            .catalog()
            .set_account_disabled(account_id, false)
            .await?)
    }

    /// A caller acting as `account_id` in the region of image `image_id` (for admin
    /// commands that name an image); the image must exist.
    pub async fn caller_for_image(&self, account_id: &str, image_id: &str) -> Result<Caller> {
        let img = self
            .catalog()
            .image(image_id)
            .await?
            .ok_or_else(|| Error::image_not_found(image_id))?;
        self.caller_for(account_id, &img.region).await
    }

    /// A caller acting as `account_id` in `region` (for admin commands).
    pub async fn caller_for(&self, account_id: &str, region: &str) -> Result<Caller> {
        let account = self.catalog().account(account_id).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::AccountNotFound,
                format!("account {account_id} does not exist"),
            )
        })?;
        self.check_region(region)?;
        Ok(Caller {
            account_id: account.account_id,
            is_admin: account.is_admin,
            region: region.to_string(),
        })
    }
}
