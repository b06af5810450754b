//! The `/metrics` endpoint, on a listener of its own (`[metrics] listen`):
//! `GET /metrics` answers the Prometheus text format, or OpenMetrics when
//! the scraper asks for it; every other path is 404.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use tokio::net::TcpListener;

use super::Metrics;

/// What a scrape answers by default: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What a scrape answers when its `Accept` names OpenMetrics (as
/// Prometheus' own scraper does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `metrics` at `GET /metrics` on `listener` until `shutdown`
/// completes.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            metrics.encode_openmetrics(),
        )
    } else {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode())
    }
}
