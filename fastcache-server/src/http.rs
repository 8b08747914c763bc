//! The observability endpoint on `FASTCACHE_METRICS_ADDR`: `GET /metrics`
//! (Prometheus text format) and `GET /health` (JSON), over plain HTTP/1.1.
//! What they report is in [`crate::metrics`].
//!
//! It runs on the main thread's runtime, so a scrape never competes with
//! the threads serving clients for more than the locks it reads through.
//! Connections are capped and idle ones closed: the port is meant for a
//! scraper and a load balancer, not for the public.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::Status;
use crate::server::Shared;

/// HTTP connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 64;
/// A client must send a request's headers within this time, and an idle
/// keep-alive connection is closed after it.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr`, or logs why not and exits with status 2: the operator
/// asked for the endpoint, so running without it would hide a mistake.
pub async fn bind_or_exit(addr: SocketAddr) -> TcpListener {
    match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot serve FASTCACHE_METRICS_ADDR={addr}: {e}");
            eprintln!("fastcache-server: cannot serve FASTCACHE_METRICS_ADDR={addr}: {e}");
            std::process::exit(2);
        }
    }
}

/// Serves `/metrics` and `/health` until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /health");
    }
    let mut shutdown = shared.shutdown.subscribe();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Wait for a free slot before accepting, so excess clients queue
        // in the kernel instead of holding file descriptors here.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("metrics endpoint: accept failed: {e}; retrying in 50 ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&shared, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "metrics endpoint connection ended: {e}");
            }
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Routes one request; HEAD is answered like GET without a body (hyper
/// drops it).
fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/health") {
        return text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: try /metrics or /health\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "method not allowed\n");
        r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == "/metrics" {
        return text(StatusCode::OK, PROMETHEUS_TEXT, crate::metrics::render(shared));
    }
    let (status, body) = crate::metrics::health(shared);
    let code = if status == Status::Failed { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let mut body = body.to_string();
    body.push('\n');
    text(code, "application/json", body)
}
