//! Transfer and task infrastructure beneath the service: how bytes come in and how long
//! work is carried, with no rule of the domain.
//! - [`fetch`]: downloads an import URL into a spool file, streamed, size-limited, retried
//!   and resumed, every hop checked by the SSRF [`guard`];
//! - [`source`]: where an import reads from (HTTP, an object-store bucket, an upload in the
//!   spool) behind one trait;
//! - [`download`]: a source fetched into the spool while a chunk-store follower stores its
//!   chunks as they arrive;
//! - [`runner`]: the durable task runner (claims with leases, heartbeats, retries, recovery
//!   of tasks whose worker died), generic over the context its handlers get.

pub mod download;
pub mod fetch;
pub mod guard;
pub mod runner;
pub mod source;
