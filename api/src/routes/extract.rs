//! What handlers take from a request besides their body: a path id whose
//! rejection has the service's JSON shape, and the request's deadline, which
//! blocking work checks before it starts.

use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::errors::ApiError;

/// Longest a request may run before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One `{id}` path parameter, percent-decoded. A segment that is not UTF-8
/// once decoded (`%ff`) is a JSON 400 (`bad_request`), like every other error.
#[derive(Debug, Clone)]
pub(crate) struct PathId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())),
        }
    }
}

/// When the request is answered 408 by the router's timeout. Set by the router
/// on every routed request; work handed to a blocking thread checks it first,
/// so work queued behind a busy pool is dropped, not run for a client that
/// has already been told it timed out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub(crate) Instant);

impl<S: Send + Sync> FromRequestParts<S> for Deadline {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // The router always sets it; a handler mounted elsewhere gets the default budget.
        Ok(parts.extensions.get::<Deadline>().copied().unwrap_or_else(|| Deadline(Instant::now() + REQUEST_TIMEOUT)))
    }
}

impl Deadline {
    /// Runs `work` on a blocking thread unless the deadline has passed by the
    /// time a thread is free (then 408, and `work` never runs).
    pub(crate) async fn blocking<T: Send + 'static>(self, work: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
        let deadline = self.0;
        tokio::task::spawn_blocking(move || {
            if Instant::now() >= deadline {
                return Err(timed_out());
            }
            work()
        })
        .await
        .map_err(ApiError::internal)?
    }
}

/// The answer once a request's time is up.
pub(crate) fn timed_out() -> ApiError {
    ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the request took longer than the service allows")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Work whose request is already out of time is never started.
    #[tokio::test]
    async fn blocking_work_past_the_deadline_is_not_started() {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let past = Deadline(Instant::now() - Duration::from_millis(1));
        let e = past
            .blocking(move || {
                r.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(e.message(), timed_out().message());
        assert!(!ran.load(Ordering::SeqCst));
        let r = ran.clone();
        Deadline(Instant::now() + REQUEST_TIMEOUT)
            .blocking(move || {
                r.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap();
        assert!(ran.load(Ordering::SeqCst));
    }
}
