//! The service's one error type, [`ApiError`], and its JSON body: every error
//! the service answers (a handler's, a rejected body's, a missing key's, a
//! timeout's) has the shape `{"error": {"code", "message"}}`, so clients parse
//! one thing. [`ServeError`] is why the service could not start.

use std::net::SocketAddr;

use allot_scenarios::StoreError;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

use crate::security::KeyFileError;
use crate::shared::SharedError;
use crate::experiments::ExperimentError;

/// A JSON error with a stable shape and an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code for programs and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case (`unknown_customer`, `forbidden`, `invalid_event`, ...).
    pub code: String,
    /// What happened, naming the offending input.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string())
    }

    /// The code and message, as they appear in the body (a batch reports a
    /// customer's error inline with it).
    pub(crate) fn detail(self) -> ErrorDetail {
        ErrorDetail { code: self.code.to_string(), message: self.message }
    }

    /// The message alone.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.detail() })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownPlan(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_plan", e.to_string()),
            StoreError::NothingToRollBack(_) => ApiError::new(StatusCode::CONFLICT, "nothing_to_roll_back", e.to_string()),
            StoreError::MovesCompacted { .. } => ApiError::new(StatusCode::CONFLICT, "moves_compacted", e.to_string()),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let code = if e.status() == StatusCode::PAYLOAD_TOO_LARGE { "payload_too_large" } else { "bad_request" };
        ApiError::new(e.status(), code, e.body_text())
    }
}

/// A JSON request body, or why it was rejected (turned into an [`ApiError`]
/// by the handler with `?`, so the rejection has our shape, not axum's text).
pub(crate) type JsonBody<T> = Result<Json<T>, JsonRejection>;

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The plan store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event or audit log could not be opened, or a thread not started.
    #[error("opening {what}: {source}")]
    Log {
        /// Which log.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The API key file is unusable.
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    /// The shared live state (PostgreSQL) could not be reached or read.
    #[error("the shared live state: {0}")]
    Database(#[from] SharedError),
    /// The address could not be bound or the server failed.
    #[error("server on {addr}: {source}")]
    Io {
        /// The listening address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<ExperimentError> for ApiError {
    fn from(e: ExperimentError) -> Self {
        let (status, code) = match &e {
            ExperimentError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_experiment"),
            ExperimentError::Unknown(_) => (StatusCode::NOT_FOUND, "unknown_experiment"),
            ExperimentError::KindRunning { .. } | ExperimentError::Conflict(_) => (StatusCode::CONFLICT, "experiment_conflict"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
