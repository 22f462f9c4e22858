//! Starting and stopping the service: open the state (from the store, or
//! shared with other replicas in PostgreSQL), serve the router until Ctrl-C or
//! SIGTERM, and in shared mode keep a thread applying what other replicas
//! record.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::errors::ServeError;
use crate::router::router;
use crate::shared::{self, SharedLive};
use crate::state::{AppState, ServiceConfig, ServiceState};

/// Serves the store on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(store_dir: PathBuf, addr: SocketAddr, config: ServiceConfig, database: Option<String>) -> Result<(), ServeError> {
    let state = match database {
        None => Arc::new(ServiceState::open(store_dir, config)?),
        Some(url) => {
            let replica = format!("{addr}/{}", std::process::id());
            let connect = |url: String, replica: String| SharedLive::connect(&url, &replica).map(Arc::new);
            let shared = tokio::task::spawn_blocking(move || connect(url, replica))
                .await
                .map_err(|e| ServeError::Log { what: "the database connection", source: std::io::Error::other(e.to_string()) })??;
            let state = Arc::new(tokio::task::spawn_blocking(move || ServiceState::open_shared(store_dir, config, shared)).await.map_err(|e| {
                ServeError::Log { what: "the shared state", source: std::io::Error::other(e.to_string()) }
            })??);
            start_shared_sync(&state)?;
            tracing::info!("live state shared in PostgreSQL as replica {addr}/{}", std::process::id());
            state
        }
    };
    match state.current() {
        Some(s) => tracing::info!(
            "serving plan {} ({} customers{}) on http://{addr}",
            s.plan.version(),
            s.plan.customers(),
            state.fallback_reason(&s).map_or(String::new(), |r| format!("; fallback: {r}"))
        ),
        None => tracing::warn!("no plan version in the store: /readyz answers 503 until one is activated; listening on http://{addr}"),
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Io { addr, source })?;
    let served = axum::serve(listener, router(state.clone())).with_graceful_shutdown(shutdown_signal()).await;
    // The last flush of the audit and the database connections block: they
    // close on a blocking thread, never on the async ones.
    let _ = tokio::task::spawn_blocking(move || drop(state)).await;
    served.map_err(|source| ServeError::Io { addr, source })
}

/// The shared mode's background loop: waits for a notification (or
/// [`shared::POLL_INTERVAL`]) and applies what other replicas recorded. A lost
/// connection is retried every poll interval; the replica keeps serving.
fn start_shared_sync(state: &AppState) -> Result<(), ServeError> {
    let Some(db) = state.shared.clone() else { return Ok(()) };
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("allot-shared-sync".to_string())
        .spawn(move || {
            let mut listener = None;
            while let Some(state) = weak.upgrade() {
                if listener.is_none() {
                    listener = shared::Listener::new(&db).map_err(|e| tracing::warn!(error = %e, "cannot listen for other replicas")).ok();
                }
                if let Err(e) = state.sync_shared() {
                    tracing::warn!(error = %e, "syncing with the other replicas");
                }
                drop(state);
                match listener.as_mut().map(|l| l.wait(shared::POLL_INTERVAL)) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "notification connection lost; polling until it is back");
                        listener = None;
                        std::thread::sleep(shared::POLL_INTERVAL);
                    }
                    None => std::thread::sleep(shared::POLL_INTERVAL),
                }
            }
        })
        .map(|_| ())
        .map_err(|source| ServeError::Log { what: "the shared-state sync thread", source })
}

/// Ctrl-C or SIGTERM: in-flight requests finish, then the server stops.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A handler that does no work on the offers route, with no layers: the
/// baseline the load benchmark compares the real service against.
pub async fn serve_trivial(addr: SocketAddr) -> std::io::Result<()> {
    /// The offers route's shape with no offers.
    #[derive(Serialize)]
    struct NoOffers {
        customer_id: String,
        offers: Vec<()>,
    }
    async fn offers(Path(customer_id): Path<String>) -> Json<NoOffers> {
        Json(NoOffers { customer_id, offers: Vec::new() })
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("trivial handler on http://{addr}");
    axum::serve(listener, Router::new().route("/v1/customers/{id}/offers", get(offers))).with_graceful_shutdown(shutdown_signal()).await
}
