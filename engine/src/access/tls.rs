//! TLS on the gRPC listeners (rustls): the server's certificate and key,
//! and with a client CA, mutual TLS, where the client's certificate both
//! opens the connection and names the client to [`super::AccessControl`].
//! Files are read and checked at start, so a bad key stops the engine with
//! the file's name instead of failing every handshake.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A client that opens a connection and then says nothing cannot hold it
/// longer than this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether clients must present a certificate when a client CA is set.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientCertificates {
    /// Every connection must present a certificate the client CA signed:
    /// a connection without one fails its handshake.
    #[default]
    Required,
    /// A certificate is checked when presented; clients without one may
    /// still connect and prove who they are with a bearer token.
    Optional,
}

/// `[tls]`: serve both gRPC listeners over TLS.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// The server's private key (PEM).
    pub private_key: PathBuf,
    /// The CA certificates (PEM) that sign client certificates. Set:
    /// mutual TLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: whether a client certificate is required.
    #[serde(default)]
    pub client_certificates: ClientCertificates,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("[tls] {key}: cannot read {}: {error}", path.display())]
    Read {
        /// The key naming it.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The certificates and key do not make a TLS server.
    #[error("[tls]: the certificate, key or client CA cannot be used: {0}")]
    Unusable(String),
}

/// The PEM material of a TLS listener, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    certificate: Vec<u8>,
    private_key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    client_certificates: ClientCertificates,
}

impl TlsSettings {
    /// Read the files and check that they make a TLS server.
    pub fn load(&self) -> Result<ServerTls, TlsError> {
        let read = |key: &'static str, path: &Path| {
            std::fs::read(path).map_err(|error| TlsError::Read {
                key,
                path: path.to_owned(),
                error,
            })
        };
        ServerTls::from_pem(
            read("certificate", &self.certificate)?,
            read("private_key", &self.private_key)?,
            self.client_ca
                .as_deref()
                .map(|path| read("client_ca", path))
                .transpose()?,
            self.client_certificates,
        )
    }
}

impl ServerTls {
    /// A TLS listener's material from PEM text; `client_ca` set: mutual
    /// TLS.
    pub fn from_pem(
        certificate: Vec<u8>,
        private_key: Vec<u8>,
        client_ca: Option<Vec<u8>>,
        client_certificates: ClientCertificates,
    ) -> Result<Self, TlsError> {
        let tls = ServerTls {
            certificate,
            private_key,
            client_ca,
            client_certificates,
        };
        // tonic reads the PEM only when a server is given the config:
        // give it one now, so that a mistake is found at start.
        tonic::transport::Server::builder()
            .tls_config(tls.server_config())
            .map_err(|e| TlsError::Unusable(error_chain(&e)))?;
        Ok(tls)
    }

    /// Whether clients are asked for certificates.
    pub fn is_mutual(&self) -> bool {
        self.client_ca.is_some()
    }

    /// tonic's configuration for a listener.
    pub fn server_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.certificate, &self.private_key))
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.client_ca {
            Some(ca) => config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(self.client_certificates == ClientCertificates::Optional),
            None => config,
        }
    }
}

/// An error with its sources, for a message that says what was wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
