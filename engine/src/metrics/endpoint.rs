//! The `/metrics` endpoint, on a listener of its own (`[metrics] listen`):
//! `GET /metrics` answers the Prometheus text format, or OpenMetrics when
//! the scraper asks for it; every other path is 404. With a token set
//! (`[metrics] token`), a scrape without it is answered 401.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use super::Metrics;

/// What a scrape answers by default: the Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What a scrape answers when its `Accept` names OpenMetrics (as
/// Prometheus' own scraper does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a scrape reads, and the token it must bring.
#[derive(Clone)]
struct Endpoint {
    metrics: Arc<Metrics>,
    token: Option<Arc<str>>,
}

/// Serve `metrics` at `GET /metrics` on `listener` until `shutdown`
/// completes; with a `token`, only to scrapes that send it as a bearer
/// token.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let endpoint = Endpoint {
        metrics,
        token: token.map(Arc::from),
    };
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(endpoint);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(endpoint): State<Endpoint>, headers: HeaderMap) -> Response {
    if let Some(token) = &endpoint.token
        && !bears(&headers, token)
    {
        tracing::warn!("a metrics scrape without the metrics token was refused");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "this endpoint needs `Authorization: Bearer <metrics token>`\n",
        )
            .into_response();
    }
    let metrics = &endpoint.metrics;
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
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response()
    }
}

/// Whether the request's `Authorization` is `Bearer <token>` (compared in
/// constant time, as the gRPC listeners compare theirs).
fn bears(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|given| crate::access::constant_time_eq(given.as_bytes(), token.as_bytes()))
}
