//! Certificates generated at run time with rcgen, and rustls configs built
//! from them (always with the *ring* provider, never the process default).
//!
//! ```
//! use undici_test_support::certs::TestPki;
//!
//! let pki = TestPki::new();
//! let cert = pki.server_cert(&["localhost", "127.0.0.1"]);
//! let server_config = pki.server_config(&cert, &[b"h2", b"http/1.1"]);
//! let client_config = pki.client_config(&[b"h2"]);
//! # let _ = (server_config, client_config);
//! // A second, unrelated CA: its certificates are "unknown issuer" to
//! // clients that trust only `pki`.
//! let other = TestPki::new();
//! let untrusted = other.server_cert(&["localhost"]);
//! # let _ = untrusted;
//! ```

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The *ring* crypto provider, for building rustls configs without relying
/// on a process-wide default provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test certificate authority. Every `TestPki::new()` is a distinct CA,
/// so a second one is how tests produce an "unknown issuer".
pub struct TestPki {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    ca_pem: String,
}

impl fmt::Debug for TestPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

/// A certificate with its private key, as issued by a [`TestPki`].
#[derive(Debug)]
pub struct CertifiedKey {
    /// The leaf certificate, PEM encoded.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM encoded.
    pub key_pem: String,
    /// The chain to present: the leaf, then the CA certificate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (PKCS#8 DER).
    pub key: PrivateKeyDer<'static>,
}

impl CertifiedKey {
    /// A copy of the private key (`PrivateKeyDer` is not `Clone`).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    /// The leaf certificate (DER).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.chain[0].clone()
    }

    /// The chain and a copy of the key, as rustls' `with_single_cert` and
    /// `with_client_auth_cert` want them.
    pub fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key_der())
    }
}

impl Clone for CertifiedKey {
    fn clone(&self) -> Self {
        Self {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

static CA_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestPki {
    /// Creates a new CA (ECDSA P-256).
    ///
    /// # Panics
    ///
    /// If rcgen fails to generate a key or certificate (not expected).
    pub fn new() -> Self {
        let n = CA_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("undici test CA {} #{n}", std::process::id()),
        );
        params
            .distinguished_name
            .push(DnType::OrganizationName, "undici-test-support");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate CA key");
        let cert = params.self_signed(&key).expect("self-sign CA certificate");
        let ca_der = cert.der().clone();
        let ca_pem = cert.pem();
        Self {
            issuer: Issuer::new(params, key),
            ca_der,
            ca_pem,
        }
    }

    /// The CA certificate, PEM encoded.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER encoded.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// A root store trusting only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.ca_der())
            .expect("the generated CA certificate is valid");
        roots
    }

    /// A server certificate valid for `names`: DNS names (`"localhost"`)
    /// become DNS SANs, IP literals (`"127.0.0.1"`, `"::1"`) become IP SANs.
    ///
    /// # Panics
    ///
    /// If a name is neither a valid DNS name nor an IP literal.
    pub fn server_cert(&self, names: &[&str]) -> CertifiedKey {
        self.issue_server(names, false)
    }

    /// Like [`server_cert`](Self::server_cert), but valid only during 2000,
    /// so it is expired now.
    pub fn expired_server_cert(&self, names: &[&str]) -> CertifiedKey {
        self.issue_server(names, true)
    }

    fn issue_server(&self, names: &[&str], expired: bool) -> CertifiedKey {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("valid subject alt names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("undici test server"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        self.issue(params)
    }

    /// A client certificate with subject `CN=common_name`, for mutual TLS.
    pub fn client_cert(&self, common_name: &str) -> CertifiedKey {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> CertifiedKey {
        let key = KeyPair::generate().expect("generate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign certificate");
        CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone(), self.ca_der()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A server config presenting `cert`, offering `alpn` (in preference
    /// order; empty = no ALPN), with session resumption (TLS 1.3 tickets
    /// and the default TLS 1.2 session cache) and no client auth.
    pub fn server_config(&self, cert: &CertifiedKey, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let config = server_builder()
            .with_no_client_auth()
            .with_single_cert(cert.chain.clone(), cert.key_der())
            .expect("server certificate and key match");
        finish_server_config(config, alpn)
    }

    /// Like [`server_config`](Self::server_config), but asks for a client
    /// certificate and verifies it against this CA. With `require` the
    /// handshake fails without one; otherwise anonymous clients are allowed
    /// (see `TestServer::client_cert_presented`).
    pub fn server_config_with_client_auth(
        &self,
        cert: &CertifiedKey,
        alpn: &[&[u8]],
        require: bool,
    ) -> Arc<ServerConfig> {
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.root_store()), provider());
        let builder = if require {
            builder
        } else {
            builder.allow_unauthenticated()
        };
        let verifier = builder.build().expect("build client verifier");
        let config = server_builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(cert.chain.clone(), cert.key_der())
            .expect("server certificate and key match");
        finish_server_config(config, alpn)
    }

    /// A client config trusting only this CA, offering `alpn`, no client
    /// certificate. Handy for tests that drive rustls directly.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut config = client_builder()
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A client config trusting only this CA and presenting `client`.
    pub fn client_config_with_cert(
        &self,
        client: &CertifiedKey,
        alpn: &[&[u8]],
    ) -> Arc<ClientConfig> {
        let mut config = client_builder()
            .with_root_certificates(self.root_store())
            .with_client_auth_cert(client.chain.clone(), client.key_der())
            .expect("client certificate and key match");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn server_builder() -> rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier> {
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("ring supports the default protocol versions")
}

fn client_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("ring supports the default protocol versions")
}

fn finish_server_config(mut config: ServerConfig, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // TLS 1.3 resumption uses tickets; TLS 1.2 resumption uses the default
    // in-memory session cache, which we keep.
    config.ticketer = rustls::crypto::ring::Ticketer::new().expect("create ticketer");
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// Runs one TLS handshake over loopback; returns the client's and the
    /// server's result (the server reports its peer certificate count).
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
        name: &str,
    ) -> (std::io::Result<()>, std::io::Result<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = TlsAcceptor::from(server).accept(tcp).await?;
            let peer_certs = tls.get_ref().1.peer_certificates().map_or(0, |c| c.len());
            tls.write_all(b"ok").await?;
            tls.shutdown().await?;
            Ok(peer_certs)
        });
        let name = rustls_pki_types::ServerName::try_from(name.to_string()).unwrap();
        let client_res = async {
            let tcp = TcpStream::connect(addr).await?;
            let mut tls = TlsConnector::from(client).connect(name, tcp).await?;
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await?;
            if buf != b"ok" {
                return Err(std::io::Error::other("server did not answer"));
            }
            Ok(())
        }
        .await;
        (client_res, server_task.await.unwrap())
    }

    #[tokio::test]
    async fn server_cert_verifies_for_dns_and_ip() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["localhost", "127.0.0.1"]);
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.key_pem.contains("PRIVATE KEY"));
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(cert.chain.len(), 2);
        assert_eq!(cert.chain[1], pki.ca_der());
        let server = pki.server_config(&cert, &[b"http/1.1"]);
        for name in ["localhost", "127.0.0.1"] {
            let (c, s) = handshake(server.clone(), pki.client_config(&[]), name).await;
            c.unwrap();
            assert_eq!(s.unwrap(), 0);
        }
        // A name not in the certificate is rejected.
        let (c, _) = handshake(server, pki.client_config(&[]), "example.com").await;
        assert!(c.is_err());
    }

    #[test]
    fn ip_literal_becomes_ip_san() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["127.0.0.1"]);
        // The IPv4 address is encoded as 4 raw octets tagged [7] (iPAddress).
        let der = cert.leaf();
        let needle = [0x87, 0x04, 127, 0, 0, 1];
        assert!(der.windows(needle.len()).any(|w| w == needle));
        let _ = IpAddr::V4(Ipv4Addr::LOCALHOST);
    }

    #[tokio::test]
    async fn unknown_issuer_and_expired_are_rejected() {
        let pki = TestPki::new();
        let other = TestPki::new();
        let foreign = other.server_cert(&["localhost"]);
        let (c, s) = handshake(
            other.server_config(&foreign, &[]),
            pki.client_config(&[]),
            "localhost",
        )
        .await;
        let err = c.unwrap_err().to_string();
        assert!(err.contains("UnknownIssuer"), "{err}");
        assert!(s.is_err());

        let expired = pki.expired_server_cert(&["localhost"]);
        let (c, _) = handshake(
            pki.server_config(&expired, &[]),
            pki.client_config(&[]),
            "localhost",
        )
        .await;
        let err = c.unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
    }

    #[tokio::test]
    async fn client_auth_required_and_optional() {
        let pki = TestPki::new();
        let server_cert = pki.server_cert(&["localhost"]);
        let client_cert = pki.client_cert("alice");
        let required = pki.server_config_with_client_auth(&server_cert, &[], true);
        let optional = pki.server_config_with_client_auth(&server_cert, &[], false);

        let (c, s) = handshake(
            required.clone(),
            pki.client_config_with_cert(&client_cert, &[]),
            "localhost",
        )
        .await;
        c.unwrap();
        assert_eq!(s.unwrap(), 2);

        let (_, s) = handshake(required, pki.client_config(&[]), "localhost").await;
        assert!(s.is_err(), "required client auth must fail without a cert");

        let (c, s) = handshake(optional.clone(), pki.client_config(&[]), "localhost").await;
        c.unwrap();
        assert_eq!(s.unwrap(), 0);

        // A client certificate from another CA is rejected.
        let other = TestPki::new();
        let (_, s) = handshake(
            optional,
            pki.client_config_with_cert(&other.client_cert("mallory"), &[]),
            "localhost",
        )
        .await;
        assert!(s.is_err());
    }

    #[test]
    fn certified_key_clones() {
        let pki = TestPki::new();
        let a = pki.client_cert("bob");
        let b = a.clone();
        assert_eq!(a.key_der().secret_der(), b.key.secret_der());
        let (chain, _key) = b.chain_and_key();
        assert_eq!(chain, a.chain);
    }
}
