//! TLS through rustls: configuration from the options, the handshake, and
//! what a failed handshake means.

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, HandshakeKind,
    RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

use crate::connection::{ConnectionInfo, TlsInfo, Transport};
use crate::error::{ConnectError, ConnectErrorKind, TlsFailure};
use crate::options::{ConnectOptions, Roots};
use crate::session_cache::SessionCache;

const H1: &[u8] = b"http/1.1";
const H2: &[u8] = b"h2";

/// The two client configurations of a connector, one offering `h2` and one
/// not, sharing one session cache so that both resume the same sessions.
#[derive(Clone)]
pub(crate) struct TlsConnectors {
    http1: TlsConnector,
    h2: TlsConnector,
}

impl TlsConnectors {
    pub(crate) fn new(options: &ConnectOptions) -> Result<Self, ConnectError> {
        let base = match &options.tls_config {
            Some(config) => (**config).clone(),
            None => build_config(options)?,
        };
        let mut http1 = base.clone();
        http1.alpn_protocols = vec![H1.to_vec()];
        let mut h2 = base;
        h2.alpn_protocols = if options.prefer_h2 {
            vec![H2.to_vec(), H1.to_vec()]
        } else {
            vec![H1.to_vec(), H2.to_vec()]
        };
        Ok(TlsConnectors {
            http1: TlsConnector::from(Arc::new(http1)),
            h2: TlsConnector::from(Arc::new(h2)),
        })
    }

    pub(crate) async fn handshake(
        &self,
        transport: Transport,
        server_name: &str,
        allow_h2: bool,
        socket: &ConnectionInfo,
    ) -> Result<(Transport, TlsInfo), ConnectError> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            ConnectError::invalid(format!("{server_name:?} is not a valid TLS server name"))
        })?;
        let connector = if allow_h2 { &self.h2 } else { &self.http1 };
        let stream = connector.connect(name, transport).await.map_err(|err| {
            handshake_error(err, server_name).with_addrs(socket.local_addr(), socket.remote_addr())
        })?;
        let (_, session) = stream.get_ref();
        let info = TlsInfo {
            version: session.protocol_version(),
            alpn: session.alpn_protocol().map(<[u8]>::to_vec),
            resumed: session.handshake_kind() == Some(HandshakeKind::Resumed),
            server_name: server_name.to_owned(),
            peer_certificates: session
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        };
        Ok((Transport::Tls(Box::new(stream)), info))
    }
}

/// The crypto provider of this crate's features: ring, else aws-lc-rs,
/// else whatever the process installed as rustls's default.
pub(crate) fn default_provider() -> Option<Arc<CryptoProvider>> {
    #[cfg(feature = "ring")]
    {
        Some(Arc::new(rustls::crypto::ring::default_provider()))
    }
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    {
        Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    {
        CryptoProvider::get_default().cloned()
    }
}

fn build_config(options: &ConnectOptions) -> Result<ClientConfig, ConnectError> {
    let provider = options
        .crypto_provider
        .clone()
        .or_else(default_provider)
        .ok_or_else(|| {
            ConnectError::invalid(
                "no TLS crypto provider: enable the `ring` or `aws-lc-rs` feature, \
                 or pass one with ConnectOptions::crypto_provider",
            )
        })?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| ConnectError::invalid("TLS protocol versions").with_source(err))?;
    let builder = if options.reject_unauthorized {
        builder.with_root_certificates(root_store(options)?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
    };
    let mut config = match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let chain = parse_certificates(cert, "cert")?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|err| {
                ConnectError::invalid("`key` holds no PEM private key").with_source(err)
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|err| {
                ConnectError::invalid("client certificate and key do not match").with_source(err)
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ConnectError::invalid(
                "a client certificate needs both `cert` and `key`",
            ))
        }
    };
    config.resumption = if options.max_cached_sessions == 0 {
        Resumption::disabled()
    } else {
        Resumption::store(Arc::new(SessionCache::new(options.max_cached_sessions)))
    };
    Ok(config)
}

fn root_store(options: &ConnectOptions) -> Result<RootCertStore, ConnectError> {
    let mut store = RootCertStore::empty();
    if options.ca.is_empty() {
        add_default_roots(&mut store, options.roots)?;
    }
    for pem in options.ca.iter().chain(&options.extra_ca) {
        for cert in parse_certificates(pem, "ca")? {
            store.add(cert).map_err(|err| {
                ConnectError::invalid("a CA certificate is not valid").with_source(err)
            })?;
        }
    }
    Ok(store)
}

fn add_default_roots(store: &mut RootCertStore, roots: Roots) -> Result<(), ConnectError> {
    match roots {
        Roots::Empty => Ok(()),
        Roots::WebPki => {
            #[cfg(feature = "webpki-roots")]
            {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                Ok(())
            }
            #[cfg(not(feature = "webpki-roots"))]
            {
                let _ = store;
                Err(ConnectError::invalid(
                    "Roots::WebPki needs the `webpki-roots` feature",
                ))
            }
        }
        Roots::Native => {
            #[cfg(feature = "native-roots")]
            {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    if let Some(err) = found.errors.into_iter().next() {
                        return Err(
                            ConnectError::invalid("no system root certificates").with_source(err)
                        );
                    }
                }
                let _ = store.add_parsable_certificates(found.certs);
                Ok(())
            }
            #[cfg(not(feature = "native-roots"))]
            {
                Err(ConnectError::invalid(
                    "Roots::Native needs the `native-roots` feature",
                ))
            }
        }
    }
}

fn parse_certificates(
    pem: &[u8],
    option: &str,
) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            ConnectError::invalid(format!("`{option}` is not valid PEM")).with_source(err)
        })?;
    if certs.is_empty() {
        return Err(ConnectError::invalid(format!(
            "`{option}` holds no PEM certificate"
        )));
    }
    Ok(certs)
}

/// What a failed handshake means, with rustls's error kept as the source.
fn handshake_error(err: io::Error, server_name: &str) -> ConnectError {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return ConnectError::io_in_handshake(err, server_name);
    };
    let failure = classify(tls);
    // The rustls error itself is the source, not the `io::Error` tokio-rustls
    // wrapped it in: `io::Error::source` skips the error it wraps, so a
    // walk of the source chain would never reach rustls's.
    ConnectError::new(
        ConnectErrorKind::Tls(failure),
        format!("TLS handshake with {server_name:?} failed"),
    )
    .with_source(tls.clone())
}

pub(crate) fn classify(err: &rustls::Error) -> TlsFailure {
    use CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::WrongName,
            C::Expired | C::ExpiredContext { .. } => TlsFailure::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsFailure::NotYetValid,
            _ => TlsFailure::Other,
        },
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied => TlsFailure::ClientCertificateRejected,
            AlertDescription::HandshakeFailure
            | AlertDescription::ProtocolVersion
            | AlertDescription::InsufficientSecurity => TlsFailure::HandshakeFailure,
            _ => TlsFailure::Other,
        },
        rustls::Error::PeerIncompatible(_) => TlsFailure::HandshakeFailure,
        _ => TlsFailure::Other,
    }
}

/// The verifier behind `reject_unauthorized(false)`: any certificate is
/// accepted, but the handshake signatures are still checked, so the session
/// is sound even though the peer is not authenticated.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_pem_is_an_invalid_argument() {
        let err = TlsConnectors::new(&ConnectOptions::new().ca("not a certificate")).err();
        assert_eq!(err.map(|e| e.code()), Some("UND_ERR_INVALID_ARG"));
    }

    #[test]
    fn cert_without_key_is_an_invalid_argument() {
        let err = TlsConnectors::new(&ConnectOptions::new().cert("x")).err();
        assert_eq!(err.map(|e| e.code()), Some("UND_ERR_INVALID_ARG"));
    }

    fn store_len(options: &ConnectOptions) -> usize {
        root_store(options).unwrap().len()
    }

    #[cfg(feature = "webpki-roots")]
    #[test]
    fn the_default_roots_are_mozillas() {
        let roots = store_len(&ConnectOptions::new());
        assert!(roots > 0);
        assert_eq!(roots, webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[cfg(feature = "webpki-roots")]
    #[test]
    fn extra_ca_adds_to_the_default_roots() {
        let pki = undici_test_support::TestPki::new();
        let other = undici_test_support::TestPki::new();
        let options = ConnectOptions::new()
            .extra_ca(pki.ca_pem())
            .extra_ca(other.ca_pem());
        assert_eq!(
            store_len(&options),
            webpki_roots::TLS_SERVER_ROOTS.len() + 2
        );
    }

    #[test]
    fn ca_replaces_the_default_roots() {
        let pki = undici_test_support::TestPki::new();
        assert_eq!(store_len(&ConnectOptions::new().ca(pki.ca_pem())), 1);
        let both = ConnectOptions::new()
            .ca(pki.ca_pem())
            .extra_ca(undici_test_support::TestPki::new().ca_pem());
        assert_eq!(store_len(&both), 2);
    }

    #[test]
    fn empty_roots_trust_only_what_is_given() {
        assert_eq!(store_len(&ConnectOptions::new().roots(Roots::Empty)), 0);
        let pki = undici_test_support::TestPki::new();
        let options = ConnectOptions::new()
            .roots(Roots::Empty)
            .extra_ca(pki.ca_pem());
        assert_eq!(store_len(&options), 1);
    }

    #[test]
    fn certificate_errors_are_classified() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(classify(&unknown), TlsFailure::UnknownIssuer);
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(classify(&expired), TlsFailure::Expired);
        let required = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert_eq!(classify(&required), TlsFailure::ClientCertificateRejected);
    }
}
