//! The decision service of allot (HTTP, axum): eligibility, pick priorities,
//! live events and plan control over the plan store.
//!
//! Not built yet: this crate holds the workspace's place for it (see the
//! decision-service issue). It must never solve a full plan on a request path.
