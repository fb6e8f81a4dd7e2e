//! The service's facets: one door per domain over the one shared service. A caller reaches
//! an operation through its domain — `svc.images().describe_images(…)`,
//! `svc.transfers().sync_images(…)` — so a reader finds an operation by following the types:
//! - [`Images`]: listing, attributes, sharing, deletion, families, making images
//!   (images.rs, snapshots.rs `create_image`);
//! - [`Instances`]: instances, their disks and snapshots, NBD (instances.rs, disks.rs,
//!   resources.rs, snapshots.rs);
//! - [`Transfers`]: import, upload, export, cross-region copy and their tasks (import.rs,
//!   export.rs, sync.rs, tasks.rs);
//! - [`Market`]: marketplace listings and pricing (market.rs, pricing.rs);
//! - [`Accounts`]: accounts and API keys (accounts.rs);
//! - [`Admin`]: publishing platform images, garbage collection, store usage (publish.rs,
//!   lib.rs).
//!
//! Each facet borrows the service; the rules and the shared helpers stay on [`Service`]
//! (reached through `Deref`), so a facet adds no state and no second copy of a rule.

use crate::Service;

macro_rules! facet {
    ($(#[$doc:meta])* $name:ident, $accessor:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<'a>(&'a Service);

        impl std::ops::Deref for $name<'_> {
            type Target = Service;
            fn deref(&self) -> &Service {
                self.0
            }
        }

        impl Service {
            $(#[$doc])*
            pub fn $accessor(&self) -> $name<'_> {
                $name(self)
            }
        }
    };
}

facet!(
    /// Images: listing, attributes, sharing, deletion, families, making images.
    Images,
    images
);
facet!(
    /// Instances, their disks and snapshots, NBD access.
    Instances,
    instances
);
facet!(
    /// Import, upload, export, cross-region copy and the tasks that carry them.
    Transfers,
    transfers
);
facet!(
    /// Marketplace listings and pricing.
    Market,
    market
);
facet!(
    /// Accounts and API keys.
    Accounts,
    accounts
);
facet!(
    /// Platform operations: publishing, garbage collection, store usage.
    Admin,
    admin
);
