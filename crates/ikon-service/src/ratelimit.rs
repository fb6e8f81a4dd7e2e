//! Request rates per account and action, one budget for every node sharing the catalog
//! (`[api] rate_limit_per_second`, exceptions in `[api.rate_limits]`).
//!
//! Time is cut into one-second windows. A node takes tokens from the catalog in small
//! batches (one atomic statement per batch: `used += k`, the tokens granted being what was
//! left under the limit before it), spends them locally, and remembers a window that ran
//! dry, so an account flooding an action costs the catalog about one statement per window
//! and node, not one per request. The sum admitted by all nodes in a window never passes
//! the limit; tokens a node took and did not spend lapse with their window.

use crate::{ids, Error, ErrorKind, Result};
use std::collections::HashMap;
use std::sync::Mutex;

/// Windows kept in the catalog before `prune` forgets them (seconds).
const KEEP_WINDOWS: i64 = 120;
/// Local entries kept before stale ones are swept.
const LOCAL_MAX: usize = 65_536;

/// What this node holds for one account and action.
#[derive(Debug, Clone, Copy, Default)]
struct Local {
    window: i64,
    tokens: i64,
    dry: bool,
}

impl Local {
    /// Spends a token of `window`: Some(true) admitted, Some(false) the window is dry
    /// cluster-wide, None ask the catalog.
    fn spend(&mut self, window: i64) -> Option<bool> {
        if self.window != window {
            return None;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            return Some(true);
        }
        self.dry.then_some(false)
    }
}

type Slot = std::sync::Arc<tokio::sync::Mutex<Local>>;

/// This node's side of the shared budgets: one slot per account and action; requests for
/// the same slot take turns, so one catalog trip at a time feeds them all and no granted
/// token is lost.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

fn batch(limit: i64) -> i64 {
    (limit / 5).max(1)
}

impl Limiter {
    fn slot(&self, key: (String, String), window: i64) -> Option<Slot> {
        let mut g = self.slots.lock().ok()?;
        if g.len() >= LOCAL_MAX {
            // Drop slots of past windows nobody is waiting on.
            g.retain(|_, s| s.try_lock().map_or(true, |l| l.window >= window));
        }
        Some(g.entry(key).or_default().clone())
    }
}

impl crate::facets::Accounts<'_> {
    /// Admits one request of `account_id` to `action`, or refuses it with
    /// [`ErrorKind::RateLimited`] when the account's budget for this second is spent.
    pub async fn admit(&self, account_id: &str, action: &str) -> Result<()> {
        let api = &self.config().api;
        let limit = i64::from(
            api.rate_limits
                .get(action)
                .copied()
                .unwrap_or(api.rate_limit_per_second),
        );
        if limit == 0 {
            return Ok(());
        }
        let window = ids::now();
        let slot = self
            .inner
            .limiter
            .slot((account_id.to_string(), action.to_string()), window)
            .ok_or_else(|| Error::internal("rate limiter lock poisoned"))?;
        let mut local = slot.lock().await;
        match local.spend(window) {
            Some(true) => return Ok(()),
            Some(false) => return Err(limited(action, limit)),
            None => {}
        }
        let want = batch(limit);
        let before = self
            .catalog()
            .take_rate_tokens(account_id, action, window, want)
            .await?;
        let granted = (limit - before).clamp(0, want);
        *local = Local {
            window,
            tokens: granted,
            // Less than asked for: the window's budget is spent cluster-wide.
            dry: granted < want,
        };
        if local.spend(window) == Some(true) {
            Ok(())
        } else {
            Err(limited(action, limit))
        }
    }

    /// Forgets rate windows older than two minutes (`ikon serve` calls it periodically).
    pub async fn prune_rate_windows(&self) -> Result<u64> {
        Ok(self
            .catalog()
            .prune_rate_windows(ids::now() - KEEP_WINDOWS)
            .await?)
    }
}

fn limited(action: &str, limit: i64) -> Error {
    Error::new(
        ErrorKind::RateLimited,
        format!(
            "more than {limit} {action} requests per second from this account; retry in a second"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_tokens_and_dry_windows() {
        let mut l = Local::default();
        assert_eq!(l.spend(5), None);
        l = Local {
            window: 5,
            tokens: 2,
            dry: false,
        };
        assert_eq!(l.spend(5), Some(true));
        assert_eq!(l.spend(5), Some(true));
        assert_eq!(l.spend(5), None, "out of local tokens: ask the catalog");
        assert_eq!(l.spend(6), None, "a new window");
        l = Local {
            window: 6,
            tokens: 0,
            dry: true,
        };
        assert_eq!(l.spend(6), Some(false));
        assert_eq!(batch(20), 4);
        assert_eq!(batch(3), 1);
    }
}
