//! The catalog schema: one set of DDL statements that SQLite and PostgreSQL both accept
//! (BIGINT for every integer, TEXT for strings and JSON, unix seconds for times, 0/1 for
//! booleans), applied in order and recorded in `meta.schema_version`.

/// Schema migrations; index + 1 is the version reached after applying that entry.
pub const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS accounts (
        account_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        is_admin BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS api_keys (
        secret_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(account_id),
        secret_key TEXT NOT NULL,
        enabled BIGINT NOT NULL DEFAULT 1,
        created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS api_keys_account ON api_keys(account_id)",
    "CREATE TABLE IF NOT EXISTS images (
        image_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        owner TEXT NOT NULL,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        os_name TEXT NOT NULL DEFAULT '',
        os_type TEXT NOT NULL DEFAULT '',
        platform TEXT NOT NULL DEFAULT '',
        architecture TEXT NOT NULL DEFAULT 'x86_64',
        size_bytes BIGINT NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        state_reason TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL,
        license_type TEXT NOT NULL DEFAULT 'TencentCloud',
        family TEXT NOT NULL DEFAULT '',
        deprecated BIGINT NOT NULL DEFAULT 0,
        cloudinit BIGINT NOT NULL DEFAULT 0,
        sync_percent BIGINT,
        share_count BIGINT NOT NULL DEFAULT 0,
        disks TEXT NOT NULL DEFAULT '[]',
        origin TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL DEFAULT 1)",
    "CREATE UNIQUE INDEX IF NOT EXISTS images_owner_region_name ON images(owner, region, name)",
    "CREATE INDEX IF NOT EXISTS images_kind_created ON images(kind, created_at)",
    "CREATE INDEX IF NOT EXISTS images_owner_region ON images(owner, region, created_at)",
    "CREATE INDEX IF NOT EXISTS images_family ON images(family)",
    "CREATE TABLE IF NOT EXISTS image_tags (
        image_id TEXT NOT NULL,
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (image_id, tag_key))",
    "CREATE TABLE IF NOT EXISTS image_shares (
        image_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (image_id, account_id))",
    "CREATE INDEX IF NOT EXISTS image_shares_account ON image_shares(account_id)",
    "CREATE TABLE IF NOT EXISTS quota_usage (
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        used BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, region))",
    "CREATE TABLE IF NOT EXISTS daily_ops (
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        day TEXT NOT NULL,
        used BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (account_id, region, day))",
    "CREATE TABLE IF NOT EXISTS tasks (
        task_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        resource_id TEXT NOT NULL DEFAULT '',
        payload TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        max_attempts BIGINT NOT NULL DEFAULT 3,
        lease_owner TEXT NOT NULL DEFAULT '',
        lease_until BIGINT NOT NULL DEFAULT 0,
        run_after BIGINT NOT NULL DEFAULT 0,
        progress BIGINT NOT NULL DEFAULT 0,
        error TEXT NOT NULL DEFAULT '',
        result TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state, run_after)",
    "CREATE INDEX IF NOT EXISTS tasks_resource ON tasks(resource_id)",
], &[
    // Listing order (newest first, id as tie-break) served from indexes per category.
    "CREATE INDEX IF NOT EXISTS images_kind_order ON images(kind, created_at, image_id)",
    "CREATE INDEX IF NOT EXISTS images_owner_order ON images(owner, region, kind, created_at, image_id)",
    "CREATE INDEX IF NOT EXISTS images_region_kind_order ON images(region, kind, created_at, image_id)",
    "CREATE INDEX IF NOT EXISTS image_shares_account_image ON image_shares(account_id, image_id)",
], &[
    // A counter bumped in the same transaction as every change to images or shares, so
    // listing results can be cached and revalidated with one primary-key read.
    "CREATE TABLE IF NOT EXISTS generations (name TEXT PRIMARY KEY, gen BIGINT NOT NULL)",
    "INSERT INTO generations (name, gen) VALUES ('images', 0) ON CONFLICT (name) DO NOTHING",
], &[
    // Instances are sets of disks; a disk's content is a manifest in the chunk store
    // (`manifest_disk` + `manifest_version`, '' + 0 = all zeros) which it may share with the
    // image or snapshot it came from: creating one copies nothing.
    "CREATE TABLE IF NOT EXISTS instances (
        instance_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        region TEXT NOT NULL,
        zone TEXT NOT NULL,
        name TEXT NOT NULL,
        instance_type TEXT NOT NULL DEFAULT '',
        image_id TEXT NOT NULL,
        origin TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        latest_operation TEXT NOT NULL DEFAULT '',
        latest_operation_state TEXT NOT NULL DEFAULT '',
        latest_operation_request_id TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS instances_owner ON instances(owner, region, created_at, instance_id)",
    "CREATE TABLE IF NOT EXISTS disks (
        disk_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        region TEXT NOT NULL,
        zone TEXT NOT NULL,
        instance_id TEXT NOT NULL DEFAULT '',
        usage TEXT NOT NULL,
        disk_type TEXT NOT NULL DEFAULT 'CLOUD_PREMIUM',
        size_bytes BIGINT NOT NULL,
        manifest_disk TEXT NOT NULL DEFAULT '',
        manifest_version BIGINT NOT NULL DEFAULT 0,
        delete_with_instance BIGINT NOT NULL DEFAULT 1,
        slot BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        version BIGINT NOT NULL DEFAULT 1)",
    "CREATE INDEX IF NOT EXISTS disks_instance ON disks(instance_id)",
    "CREATE INDEX IF NOT EXISTS disks_owner ON disks(owner, region, created_at, disk_id)",
    "CREATE TABLE IF NOT EXISTS snapshots (
        snapshot_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        region TEXT NOT NULL,
        zone TEXT NOT NULL,
        disk_id TEXT NOT NULL,
        usage TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        manifest_disk TEXT NOT NULL DEFAULT '',
        manifest_version BIGINT NOT NULL DEFAULT 0,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        image_id TEXT NOT NULL DEFAULT '',
        deadline BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS snapshots_owner ON snapshots(owner, region, created_at, snapshot_id)",
    "CREATE INDEX IF NOT EXISTS snapshots_image ON snapshots(image_id)",
], &[
    // Marketplace submissions; an approved one is published as a MARKET image row.
    "CREATE TABLE IF NOT EXISTS market_listings (
        listing_id TEXT PRIMARY KEY,
        source_image_id TEXT NOT NULL,
        image_id TEXT NOT NULL DEFAULT '',
        provider TEXT NOT NULL,
        region TEXT NOT NULL,
        price_micros BIGINT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS market_listings_provider ON market_listings(provider, created_at)",
    "CREATE INDEX IF NOT EXISTS market_listings_image ON market_listings(image_id)",
    // Metering: one row per instance per installed image (closed on terminate or
    // re-install, in the same transaction), and storage samples per account.
    "CREATE TABLE IF NOT EXISTS instance_usage (
        instance_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        region TEXT NOT NULL,
        image_id TEXT NOT NULL,
        billed_image_id TEXT NOT NULL,
        price_micros BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        PRIMARY KEY (instance_id, started_at, image_id))",
    "CREATE INDEX IF NOT EXISTS instance_usage_account ON instance_usage(account_id, started_at)",
    "CREATE TABLE IF NOT EXISTS storage_samples (
        account_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        bytes BIGINT NOT NULL,
        PRIMARY KEY (account_id, at))",
],
// 2: whether an image holds a unit of its owner's custom-image quota is recorded on the
// image (the service decides which images count; the catalog keeps the count right).
// Rows from before held one when they were custom images.
&[
    "ALTER TABLE images ADD COLUMN quota_unit BIGINT NOT NULL DEFAULT 0",
    "UPDATE images SET quota_unit = 1 WHERE kind = 'PRIVATE'",
],
// 3: an image's facts (inspection and hygiene scan) are kept once per manifest, the system
// disk's (disk id + version): copies, shares and marketplace images with the same content
// reuse them. `facts_requested` marks the images whose facts have been asked for, so the
// service finds the NORMAL images still waiting with one indexed query. A marketplace
// listing keeps the findings it was reviewed with.
&[
    "CREATE TABLE IF NOT EXISTS manifest_facts (
        disk_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        state TEXT NOT NULL,
        inspection TEXT NOT NULL DEFAULT '',
        scan TEXT NOT NULL DEFAULT '',
        error TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (disk_id, version))",
    "ALTER TABLE images ADD COLUMN facts_requested BIGINT NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS images_facts ON images(facts_requested, state)",
    "ALTER TABLE market_listings ADD COLUMN findings TEXT NOT NULL DEFAULT ''",
],
// 4: an account can be disabled (every key refused, resources kept).
&[
    "ALTER TABLE accounts ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0",
    // Request rates: tokens taken per account, action and one-second window, by every node
    // sharing the catalog (`used` may pass the limit: it counts what was asked for).
    "CREATE TABLE IF NOT EXISTS rate_windows (
        account_id TEXT NOT NULL,
        action TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        used BIGINT NOT NULL,
        PRIMARY KEY (account_id, action, window_start))",
    "CREATE INDEX IF NOT EXISTS rate_windows_start ON rate_windows(window_start)",
],
// 5: console sessions (any node honours any session): the token's SHA-256, never the token.
&[
    "CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS console_sessions_account ON console_sessions(account_id)",
]];
