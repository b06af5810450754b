//! The data plane's calls: a tower layer on the gRPC server that counts
//! each call by method and final status code, the calls in flight, and
//! how long each took (a stream: its whole life).
//!
//! A call's status is where gRPC puts it: in the response headers when the
//! call failed before answering (a unary error, "trailers-only"), else in
//! the trailers that end the response body. So the body is wrapped, and
//! the call is counted when its trailers pass, or when the body is dropped
//! before them (the client went away: `CANCELLED`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message;
use tonic::Code;

use super::names::code_name;

/// Call duration buckets, in seconds: from a cached lookup to a long
/// stream.
const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A method's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: Arc<str>,
    grpc_method: Arc<str>,
}

/// A finished call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    grpc_service: Arc<str>,
    grpc_method: Arc<str>,
    grpc_code: &'static str,
}

type Durations = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// The call metrics and the methods they are labelled with.
#[derive(Debug)]
pub(super) struct GrpcMetrics {
    requests: Family<CallLabels, Counter>,
    in_flight: Family<MethodLabels, Gauge>,
    durations: Durations,
    /// `/package.Service/Method` of every method in the API's descriptors
    /// (the data plane, health, reflection): a path not in it is labelled
    /// `unknown`, so a client cannot make up label values.
    methods: HashMap<Box<str>, MethodLabels>,
    unknown: MethodLabels,
}

/// The methods in encoded descriptor sets, by path.
fn methods_of(sets: &[&[u8]]) -> HashMap<Box<str>, MethodLabels> {
    let mut methods = HashMap::new();
    for set in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
            continue;
        };
        for file in set.file {
            for service in &file.service {
                let name: Arc<str> = match file.package() {
                    "" => service.name().into(),
                    package => format!("{package}.{}", service.name()).into(),
                };
                for method in &service.method {
                    methods.insert(
                        format!("/{name}/{}", method.name()).into(),
                        MethodLabels {
                            grpc_service: name.clone(),
                            grpc_method: method.name().into(),
                        },
                    );
                }
            }
        }
    }
    methods
}

impl GrpcMetrics {
    /// Registered in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = GrpcMetrics {
            requests: Family::default(),
            in_flight: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            methods: methods_of(&[
                crate::api::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ]),
            unknown: MethodLabels {
                grpc_service: "unknown".into(),
                grpc_method: "unknown".into(),
            },
        };
        registry.register(
            "grpc_requests",
            "Calls to the data-plane listener finished, by method and gRPC status code.",
            metrics.requests.clone(),
        );
        registry.register(
            "grpc_requests_in_flight",
            "Calls to the data-plane listener in progress (open streams included).",
            metrics.in_flight.clone(),
        );
        registry.register(
            "grpc_request_duration_seconds",
            "Time from a call's request to its final status (a stream: its whole life).",
            metrics.durations.clone(),
        );
        metrics
    }

    /// A call to `path` begins.
    fn begin(self: &Arc<Self>, path: &str) -> Call {
        let method = self.methods.get(path).unwrap_or(&self.unknown).clone();
        let in_flight = self.in_flight.get_or_create_owned(&method);
        in_flight.inc();
        Call {
            metrics: self.clone(),
            method,
            in_flight,
            started: Instant::now(),
            code: Code::Cancelled,
        }
    }
}

/// One call in progress; counted when dropped, with `code` (cancelled
/// unless a status was seen).
#[derive(Debug)]
struct Call {
    metrics: Arc<GrpcMetrics>,
    method: MethodLabels,
    in_flight: Gauge,
    started: Instant,
    code: Code,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.in_flight.dec();
        self.metrics
            .durations
            .get_or_create(&self.method)
            .observe(self.started.elapsed().as_secs_f64());
        let labels = CallLabels {
            grpc_service: self.method.grpc_service.clone(),
            grpc_method: self.method.grpc_method.clone(),
            grpc_code: code_name(self.code),
        };
        self.metrics.requests.get_or_create(&labels).inc();
    }
}

/// The status code in `grpc-status`, if the headers have one.
fn status_in(headers: &http::HeaderMap) -> Option<Code> {
    let code: i32 = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    Some(Code::from_i32(code))
}

impl Call {
    /// The response's headers are out: a status there ends the call now;
    /// otherwise the body carries the call until its trailers.
    fn respond<B>(mut self, response: http::Response<B>) -> http::Response<CountedBody<B>> {
        let call = match status_in(response.headers()) {
            Some(code) => {
                self.code = code;
                None
            }
            None => Some(self),
        };
        response.map(|inner| CountedBody { inner, call })
    }
}

/// The layer: metrics for every call through it, or none.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: Option<Arc<GrpcMetrics>>,
}

impl GrpcMetricsLayer {
    /// Counting into `metrics`; with `None`, only passing calls through.
    pub fn new(metrics: Option<&super::Metrics>) -> Self {
        GrpcMetricsLayer {
            metrics: metrics.map(|m| m.grpc.clone()),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service the layer wraps around the server's routes.
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Option<Arc<GrpcMetrics>>,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>>
    for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<CountedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        // Begun before the handler runs, so time in the handler and in
        // the evaluation queue counts; dropped with the future if the
        // client goes before the headers.
        let call = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.begin(request.uri().path()));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match call {
                Some(call) => call.respond(response),
                None => response.map(|inner| CountedBody { inner, call: None }),
            })
        })
    }
}

/// A response body that ends its call when its trailers pass.
#[derive(Debug)]
pub struct CountedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> Body for CountedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(next) = &polled {
            let code = match next {
                Some(Ok(frame)) => frame
                    .trailers_ref()
                    .map(|trailers| status_in(trailers).unwrap_or(Code::Unknown)),
                // A body that fails, or ends with no status, is not a
                // call that succeeded.
                Some(Err(_)) | None => Some(Code::Unknown),
            };
            if let Some(code) = code
                && let Some(mut call) = this.call.take()
            {
                call.code = code;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_method_is_known() {
        let mut registry = Registry::default();
        let metrics = GrpcMetrics::register(&mut registry);
        for path in [
            "/enforcement.v1.Enforcement/Evaluate",
            "/enforcement.v1.Enforcement/EvaluateStream",
            "/enforcement.v1.Enforcement/WatchDecisions",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            let method = &metrics.methods[path];
            assert_eq!(
                format!("/{}/{}", method.grpc_service, method.grpc_method),
                path
            );
        }
        assert!(
            !metrics
                .methods
                .contains_key("/enforcement.v1.Enforcement/Made-up")
        );
    }

    #[test]
    fn the_status_is_read_from_headers_or_trailers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_in(&headers), None);
        headers.insert("grpc-status", "3".parse().unwrap());
        assert_eq!(status_in(&headers), Some(Code::InvalidArgument));
    }
}
