//! Catalog: accounts, keys, images, shares, quotas, counters and durable tasks on sqlx.
