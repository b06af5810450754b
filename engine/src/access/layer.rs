//! The access check as a tower layer: every request to a listener is
//! decided by [`AccessControl`] from its path, its `authorization` header
//! and its TLS client certificate before any service sees it. A refusal is
//! answered at once with the gRPC status; an allowed request carries the
//! caller's [`Grant`] and [`Caller`] for the service behind.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, FutureExt};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::{AccessControl, Plane};
use crate::registry::Caller;

/// Checks every request of one listener.
#[derive(Clone)]
pub struct AccessLayer {
    access: Arc<AccessControl>,
    plane: Plane,
}

impl AccessLayer {
    /// The check of `plane`'s listener under `access`.
    pub fn new(access: Arc<AccessControl>, plane: Plane) -> Self {
        AccessLayer { access, plane }
    }
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessService {
            inner,
            access: self.access.clone(),
            plane: self.plane,
        }
    }
}

/// [`AccessLayer`] around one service.
#[derive(Clone)]
pub struct AccessService<S> {
    inner: S,
    access: Arc<AccessControl>,
    plane: Plane,
}

impl<S, B> tower::Service<http::Request<B>> for AccessService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let tls = request.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
        let certificates = tls.and_then(|info| info.peer_certs());
        let peer = tls
            .and_then(|info| info.get_ref().remote_addr())
            .or_else(|| {
                request
                    .extensions()
                    .get::<TcpConnectInfo>()
                    .and_then(|info| info.remote_addr())
            });
        let decided = self.access.authorize(
            self.plane,
            request.uri().path(),
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|value| value.as_bytes()),
            certificates.as_deref().map(Vec::as_slice),
        );
        match decided {
            Ok(grant) => {
                if let Some(grant) = grant {
                    request.extensions_mut().insert(Caller {
                        identity: grant.identity.to_string(),
                        peer: peer.map(|addr| addr.to_string()),
                    });
                    request.extensions_mut().insert(grant);
                }
                // The clone is the one polled ready above, as tower asks.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                inner.call(request).boxed()
            }
            Err(status) => {
                tracing::warn!(
                    method = request.uri().path(),
                    peer = ?peer,
                    code = ?status.code(),
                    "refused: {}",
                    status.message()
                );
                let response = status.into_http::<tonic::body::Body>();
                std::future::ready(Ok(response)).boxed()
            }
        }
    }
}
