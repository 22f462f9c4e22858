//! Starting and stopping the service: open the state (from the store, or
//! shared with other replicas in PostgreSQL), serve the router until Ctrl-C or
//! SIGTERM, and keep a thread applying what others record (in shared mode the
//! other replicas' events and activations; in file mode an activation the CLI
//! made).
//!
//! Connections are served by hyper's HTTP/1 builder with a timer, not
//! `axum::serve` (which has none), so that a client cannot hold the service:
//!
//! - **header-read timeout** ([`ConnectionLimits::header_read_timeout`]): a
//!   request head not complete in time closes the connection (slowloris). The
//!   timer also runs while a keep-alive connection waits for its next request,
//!   so it is the **idle timeout** as well;
//! - **connection cap** ([`ConnectionLimits::max_connections`]): a semaphore
//!   on accepted connections; at the cap the service stops accepting (the
//!   kernel queues new ones) until one closes;
//! - the **request timeout** (408) is the router's ([`crate::REQUEST_TIMEOUT`]),
//!   and blocking work a request starts checks its deadline first;
//! - hyper's own answers to what it cannot parse (a request target over
//!   64 KiB: 414, a malformed head: 400, too large a head: 431) have an empty
//!   body; [`JsonErrorIo`] gives them the service's JSON error body.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::errors::{ErrorBody, ErrorDetail, ServeError};
use crate::router::{code_of, router, App, REQUEST_TIMEOUT};
use crate::shared::{self, SharedLive};
use crate::state::{AppState, ServiceConfig, ServiceState};

/// What one client may hold of the service.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Longest wait for a complete request head, and for the next request on
    /// an idle keep-alive connection.
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// 1,024 connections, 10 s for a request head (and for an idle keep-alive).
    fn default() -> Self {
        ConnectionLimits { max_connections: 1024, header_read_timeout: Duration::from_secs(10) }
    }
}

/// Serves the store on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(store_dir: PathBuf, addr: SocketAddr, config: ServiceConfig, database: Option<String>, audit_retention: Duration) -> Result<(), ServeError> {
    let state = match database {
        None => {
            let state = Arc::new(ServiceState::open(store_dir, config)?);
            start_sync(&state)?;
            state
        }
        Some(url) => {
            let replica = format!("{addr}/{}", std::process::id());
            let connect = |url: String, replica: String| SharedLive::connect(&url, &replica).map(Arc::new);
            let shared = tokio::task::spawn_blocking(move || connect(url, replica))
                .await
                .map_err(|e| ServeError::Log { what: "the database connection", source: std::io::Error::other(e.to_string()) })??;
            let state = Arc::new(tokio::task::spawn_blocking(move || ServiceState::open_shared(store_dir, config, shared)).await.map_err(|e| {
                ServeError::Log { what: "the shared state", source: std::io::Error::other(e.to_string()) }
            })??);
            start_sync(&state)?;
            tracing::info!("live state shared in PostgreSQL as replica {addr}/{}", std::process::id());
            state
        }
    };
    state.audit.set_retention(audit_retention);
    match state.current() {
        Some(s) => tracing::info!(
            "serving plan {} ({} customers{}) on http://{addr}",
            s.plan.version(),
            s.plan.customers(),
            state.fallback_reason(&s).map_or(String::new(), |r| format!("; fallback: {r}"))
        ),
        None => tracing::warn!("no plan version in the store: /readyz answers 503 until one is activated; listening on http://{addr}"),
    }
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError::Io { addr, source })?;
    let served = serve_connections(listener, router(state.clone()), ConnectionLimits::default(), shutdown_signal()).await;
    // The last flush of the audit and the database connections block: they
    // close on a blocking thread, never on the async ones.
    let _ = tokio::task::spawn_blocking(move || drop(state)).await;
    served.map_err(|source| ServeError::Io { addr, source })
}

/// The background loop applying what others record: it waits for a
/// notification (shared mode) or [`shared::POLL_INTERVAL`] and calls
/// [`ServiceState::sync_live`]: in shared mode the other replicas' events and
/// activations, in file mode an activation another process (the CLI) made in
/// `live.db`. A lost connection is retried every poll interval; the service
/// keeps serving.
fn start_sync(state: &AppState) -> Result<(), ServeError> {
    let db = state.shared.clone();
    let weak = Arc::downgrade(state);
    std::thread::Builder::new()
        .name("allot-live-sync".to_string())
        .spawn(move || {
            let mut listener = None;
            while let Some(state) = weak.upgrade() {
                if let (None, Some(db)) = (&listener, &db) {
                    listener = shared::Listener::new(db).map_err(|e| tracing::warn!(error = %e, "cannot listen for other replicas")).ok();
                }
                if let Err(e) = state.sync_live() {
                    tracing::warn!(error = %e, "syncing with the live-state database");
                }
                crate::routes::plans::replan_on_drift(&state);
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
        .map_err(|source| ServeError::Log { what: "the live-state sync thread", source })
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

/// Serves `app` on `listener` under `limits` until `shutdown` completes; then
/// stops accepting, lets open requests finish (at most the request timeout
/// and a margin) and returns.
pub async fn serve_connections(listener: TcpListener, app: App, limits: ConnectionLimits, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut closed = closed.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(JsonErrorIo::new(stream)), service));
            let mut draining = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "connection closed");
                        }
                        break;
                    }
                    _ = closed.changed(), if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(5), drained).await.is_err() {
        tracing::warn!("connections still open at shutdown were dropped");
    }
    Ok(())
}

/// A connection's stream that replaces hyper's automatic error answers (a
/// 4xx or 5xx head with `content-length: 0`, written when a request cannot be
/// parsed, before the service sees it) with the same status and the service's
/// JSON error body. The router gives every error it answers a JSON body, so
/// an empty error head can only be hyper's.
pub struct JsonErrorIo<S> {
    inner: S,
    /// The replacement being written: its bytes, how many are written, and
    /// the length of the original write it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> JsonErrorIo<S> {
    /// Wraps an accepted stream.
    pub fn new(inner: S) -> Self {
        JsonErrorIo { inner, pending: None }
    }
}

/// The JSON answer standing for hyper's empty error head `head`, if it is one.
fn json_error_for(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ").or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    if !head.ends_with(b"\r\n\r\n") || !matches!(rest.first(), Some(b'4' | b'5')) {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    if !lower.windows(21).any(|w| w == b"\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status = StatusCode::from_bytes(rest.get(..3)?).ok()?;
    let message = match status {
        StatusCode::URI_TOO_LONG => "the request target is too long".to_string(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request head is too large".to_string(),
        StatusCode::BAD_REQUEST => "the request is not valid HTTP".to_string(),
        s => s.canonical_reason().unwrap_or("error").to_string(),
    };
    let body = serde_json::to_vec(&ErrorBody { error: ErrorDetail { code: code_of(status).to_string(), message } }).ok()?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrorIo<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> JsonErrorIo<S> {
    /// Writes the pending replacement in full, then reports the original write done.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let JsonErrorIo { inner, pending } = self;
        let Some((bytes, written, original)) = pending.as_mut() else { return Poll::Ready(Ok(0)) };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut *inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let original = *original;
        self.pending = None;
        Poll::Ready(Ok(original))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrorIo<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.pending.is_none() {
            match json_error_for(buf) {
                Some(json) => self.pending = Some((json, 0, buf.len())),
                None => return Pin::new(&mut self.inner).poll_write(cx, buf),
            }
        }
        self.poll_pending(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // An automatic error answer is a head alone: one non-empty slice.
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next()) {
            if self.pending.is_some() || json_error_for(only).is_some() {
                return self.poll_write(cx, only);
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            ready!(self.poll_pending(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.pending.is_some() {
            ready!(self.poll_pending(cx))?;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
