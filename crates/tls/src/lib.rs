//! TLS for hydra's Forward connections, with rustls.
//!
//! - [`server_config`]: a certificate and key (PEM files), and optionally a
//!   CA to require and verify client certificates;
//! - [`client_config`]: the CA file to trust (or the system's roots), an
//!   optional client certificate, or, only when asked for explicitly, no
//!   verification at all ([`ClientTls::insecure`]).
//!
//! Errors name the file and what is wrong with it.
//!
//! ```
//! use hydra_tls::{ClientTls, ServerTls, client_config, server_config};
//! // A client that trusts the system's roots.
//! let _connector = client_config(&ClientTls::default())?;
//! // A server whose certificate is missing: refused, naming the file.
//! let missing = ServerTls {
//!     cert: "/nonexistent/cert.pem".into(),
//!     key: "/nonexistent/key.pem".into(),
//!     client_ca: None,
//! };
//! let err = server_config(&missing).err().expect("no certificate");
//! assert!(err.to_string().starts_with("/nonexistent/cert.pem: "), "{err}");
//! # Ok::<(), hydra_tls::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use rustls::pki_types::ServerName;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// What can be wrong with TLS settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A PEM file that cannot be read or holds nothing usable.
    #[error("{}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
    /// rustls refused the combination.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// A server name that is not a valid DNS name or IP address.
    #[error("invalid server name {name:?}")]
    ServerName {
        /// The name as configured (or the host).
        name: String,
    },
    /// Client-certificate verification could not be set up.
    #[error("client certificate verification: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// What is wrong with a PEM file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// It cannot be read, or is not PEM.
    #[error("{0}")]
    Pem(rustls::pki_types::pem::Error),
    /// It holds no certificate.
    #[error("no certificate in this file")]
    NoCertificate,
    /// It holds no private key that can be used.
    #[error("no usable private key: {0}")]
    NoKey(rustls::pki_types::pem::Error),
    /// A certificate that cannot be trusted as a root.
    #[error("{0}")]
    Certificate(rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let err = |problem: FileProblem| Error::File {
        path: path.to_owned(),
        problem,
    };
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(FileProblem::Pem(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(FileProblem::Pem(e)))?;
    if certs.is_empty() {
        return Err(err(FileProblem::NoCertificate));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| Error::File {
        path: path.to_owned(),
        problem: FileProblem::NoKey(e),
    })
}

fn roots(ca: &Path) -> Result<rustls::RootCertStore, Error> {
    let mut store = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        store.add(c).map_err(|e| Error::File {
            path: ca.to_owned(),
            problem: FileProblem::Certificate(e),
        })?;
    }
    Ok(store)
}

/// The server side of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// A TLS acceptor for `tls`.
pub fn server_config(tls: &ServerTls) -> Result<TlsAcceptor, Error> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs(&tls.cert)?, key(&tls.key)?)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The client side of TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// CA certificates to trust (PEM); the system's roots when absent.
    pub ca: Option<PathBuf>,
    /// Name expected in the server's certificate; the host by default.
    pub server_name: Option<String>,
    /// Client certificate (PEM), for servers that require one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Accept any server certificate. Only for tests and emergencies: a
    /// warning is logged when it is used.
    pub insecure: bool,
}

/// A TLS connector for `tls`.
pub fn client_config(tls: &ClientTls) -> Result<TlsConnector, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = if tls.insecure {
        tracing::warn!(
            "TLS certificate verification is off (insecure: true): anyone on the path can read and change the logs."
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(danger::AcceptAny(provider())))
    } else {
        let store = match &tls.ca {
            Some(ca) => roots(ca)?,
            None => {
                let mut store = rustls::RootCertStore::empty();
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = store.add(c);
                }
                store
            }
        };
        builder.with_root_certificates(store)
    };
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key_path)) => {
            builder.with_client_auth_cert(certs(cert)?, key(key_path)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name to verify for `host`, or the configured override.
pub fn server_name(tls: &ClientTls, host: &str) -> Result<ServerName<'static>, Error> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|_| Error::ServerName {
        name: name.to_owned(),
    })
}

mod danger {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Accepts every certificate, but still checks the handshake
    /// signatures.
    #[derive(Debug)]
    pub(crate) struct AcceptAny(pub(crate) Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}
