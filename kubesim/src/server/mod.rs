//! The Kubernetes API over HTTP, as kubectl 1.32 and kube-rs 5 use it.
//!
//! Request flow:
//! 1. The latency middleware applies the fault plan's delay.
//! 2. Fixed routes serve `/version`, health checks, discovery ([`discovery`])
//!    and kubesim's own endpoints ([`admin`]).
//! 3. [`resources`] parses resource URLs, checks the verb, injects planned
//!    errors and dispatches to [`read`], [`write`], [`patching`] and
//!    [`apply`], [`watch`], [`scale`], [`pod`] (log, proxy) or [`exec`].
//! 4. Failures become `Status` objects in [`error`].

mod admin;
mod apply;
mod discovery;
mod error;
mod exec;
mod patching;
mod pod;
mod read;
mod request;
mod resources;
mod scale;
mod selector;
mod slices;
mod table;
mod validate;
mod watch;
mod write;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, delete, get};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::cluster::Cluster;
use crate::programs::Programs;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub cluster: Cluster,
    pub programs: Programs,
    /// Address the server listens on, reported in `/api` discovery.
    pub address: SocketAddr,
    /// Becomes `true` when the server shuts down; open watches end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Builds the router for the whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/version", get(discovery::version))
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .route("/api", get(discovery::core_versions))
        .route("/api/v1", get(discovery::core_resource_list))
        .route("/apis", get(discovery::groups))
        .route("/apis/{group}", get(discovery::group))
        .route(
            "/apis/{group}/{version}",
            get(discovery::group_resource_list),
        )
        .route("/api/v1/{*rest}", any(resources::core))
        .route("/apis/{group}/{version}/{*rest}", any(resources::grouped))
        .route(
            "/kubesim/faults",
            get(admin::show_faults)
                .post(admin::add_faults)
                .delete(admin::clear_faults),
        )
        .route("/kubesim/nodes/{name}", delete(admin::delete_node))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            around_request,
        ))
        .with_state(state)
}

async fn ok() -> &'static str {
    "ok"
}

/// Everything without a route, `/openapi/v2` and `/openapi/v3` included.
/// kubectl needs OpenAPI only for `explain` and for the client-side
/// validation of `create -f` and `apply`, which `--validate=false` skips.
async fn not_found() -> Response {
    discovery::not_found_page()
}

/// Runs each request in a span and delays API requests by the fault plan's
/// latency. kubesim's own endpoints and health checks are not delayed.
async fn around_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let span = tracing::debug_span!("request", %method, %path);
    async move {
        let exempt = path.starts_with("/kubesim/")
            || matches!(path.as_str(), "/healthz" | "/readyz" | "/livez");
        if !exempt {
            let latency = state.cluster.faults.with(|plan| plan.latency);
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
        }
        let response = next.run(request).await;
        tracing::debug!(status = response.status().as_u16(), "request served");
        response
    }
    .instrument(span)
    .await
}

/// Serves the API on `listener` until `shutdown` completes, then stops
/// accepting connections and waits for open requests to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "kubesim API server listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!(%address, "kubesim API server stopped");
    Ok(())
}
