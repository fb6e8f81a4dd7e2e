//! The service layer: every rule (visibility, quotas, sharing, regions, states) lives here once.
