//! TLS with ALPN `h2` (rustls), and errors that say what went wrong in words a person
//! can act on — above all the "TLS mismatch" case, where one side speaks TLS and the
//! other plaintext.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

use crate::error::{Error, Kind};

/// The ALPN protocol id of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";

/// Which certificates a client trusts.
#[derive(Debug, Clone)]
pub enum Roots {
    /// The Mozilla roots of the Web PKI.
    WebPki,
    /// Roots read from a PEM file (e.g. a test CA or a self-signed certificate).
    PemFile(std::path::PathBuf),
    /// These DER certificates.
    Certificates(Vec<CertificateDer<'static>>),
    /// Trust any certificate. For diagnostics against test servers only.
    InsecureAcceptAny,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration offering only `h2` over ALPN.
pub fn client_config(roots: Roots) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = match roots {
        Roots::InsecureAcceptAny => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
            .with_no_client_auth(),
        other => {
            let mut store = rustls::RootCertStore::empty();
            match other {
                Roots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
                Roots::PemFile(path) => {
                    for cert in load_certs(&path)? {
                        store
                            .add(cert)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                    }
                }
                Roots::Certificates(certs) => {
                    for cert in certs {
                        store.add(cert).map_err(|e| e.to_string())?;
                    }
                }
                Roots::InsecureAcceptAny => {}
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration offering only `h2` over ALPN that presents `chain` and
/// `key` to servers asking for a client certificate (mutual TLS).
pub fn client_config_with_identity(
    roots: Roots,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let base = client_config(roots)?;
    let resolver = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("client key: {e}"))?;
    let certified = rustls::sign::CertifiedKey::new(chain, resolver);
    let mut config = (*base).clone();
    config.client_auth_cert_resolver = Arc::new(AlwaysPresent(Arc::new(certified)));
    Ok(Arc::new(config))
}

/// Presents one certificate to every server that asks for one.
#[derive(Debug)]
struct AlwaysPresent(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for AlwaysPresent {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A server configuration offering `h2` that asks clients for a certificate signed
/// by one of `client_roots`: required when `required`, otherwise optional (a client
/// without one is still served; [`ConnectionInfo`](crate::ConnectionInfo) tells the
/// handler which it was).
pub fn server_config_with_client_auth(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: Vec<CertificateDer<'static>>,
    required: bool,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut store = rustls::RootCertStore::empty();
    for cert in client_roots {
        store.add(cert).map_err(|e| format!("client root: {e}"))?;
    }
    let builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider());
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    let verifier = builder.build().map_err(|e| e.to_string())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration from a PEM certificate chain and key, offering `h2`.
pub fn server_config_from_pem(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    server_config(certs, key)
}

/// A server configuration from DER certificates and key, offering `h2`.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut io::BufReader::new(file)).collect();
    let certs = certs.map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut io::BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no PEM private key found", path.display()))
}

/// Runs the client handshake and checks that the server chose `h2`.
pub(crate) async fn connect<IO>(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    io: IO,
) -> Result<client::TlsStream<IO>, Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        Error::new(Kind::Tls {
            message: format!("invalid server name {host:?}: {e}"),
            mismatch: false,
        })
    })?;
    let stream = TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| {
            if let Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::NoApplicationProtocol,
            )) = rustls_error(&e)
            {
                // OpenSSL and others answer an ALPN offer they share nothing with by
                // ending the handshake: the server speaks TLS, just not HTTP/2.
                return Error::new(Kind::AlpnRefused);
            }
            let (message, mismatch) = describe_client_error(&e);
            Error::new(Kind::Tls { message, mismatch })
        })?;
    match stream.get_ref().1.alpn_protocol() {
        Some(ALPN_H2) => Ok(stream),
        other => Err(Error::new(Kind::AlpnMismatch(other.map(<[u8]>::to_vec)))),
    }
}

/// Runs the server handshake; a client that did not offer `h2` is refused.
pub(crate) async fn accept<IO>(
    acceptor: &TlsAcceptor,
    io: IO,
) -> Result<server::TlsStream<IO>, String>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let stream = acceptor
        .accept(io)
        .await
        .map_err(|e| describe_server_error(&e))?;
    match stream.get_ref().1.alpn_protocol() {
        Some(ALPN_H2) => Ok(stream),
        _ => Err("the client did not offer HTTP/2 (ALPN h2)".to_owned()),
    }
}

fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// Words for a client handshake failure, and whether it looks like a TLS/plaintext
/// mismatch.
fn describe_client_error(e: &io::Error) -> (String, bool) {
    use rustls::CertificateError as C;
    match rustls_error(e) {
        Some(rustls::Error::InvalidMessage(_)) => (
            "the server's reply is not TLS: it may be a plaintext (h2c) server; use http://".to_owned(),
            true,
        ),
        Some(rustls::Error::InvalidCertificate(why)) => {
            let what = match why {
                C::UnknownIssuer => format!("{} (use --cacert; -k for test servers)", crate::error::UNTRUSTED),
                C::NotValidForNameContext { expected, presented } => format!(
                    "{}: it is for {}, not {}",
                    crate::error::WRONG_NAME,
                    presented.iter().map(|p| presented_name(p)).collect::<Vec<_>>().join(", "),
                    expected.to_str()
                ),
                C::NotValidForName => crate::error::WRONG_NAME.to_owned(),
                C::Expired | C::ExpiredContext { .. } => "has expired".to_owned(),
                other if format!("{other:?}").contains(crate::error::CA_AS_LEAF) => format!(
                    "is a CA certificate (basicConstraints CA:TRUE) used as the server's own, \
                     which is refused even when it is trusted ({})",
                    crate::error::CA_AS_LEAF
                ),
                other => format!("was rejected ({})", rustls::Error::InvalidCertificate(other.clone())),
            };
            (format!("the server's certificate {what}"), false)
        }
        Some(rustls::Error::NoApplicationProtocol) => {
            ("the server does not offer HTTP/2 (no common ALPN protocol)".to_owned(), false)
        }
        Some(other) => (other.to_string(), false),
        None if e.kind() == io::ErrorKind::UnexpectedEof => (
            "the server closed the connection during the TLS handshake: it may not speak TLS on this port".to_owned(),
            true,
        ),
        None => (e.to_string(), false),
    }
}

/// A name as rustls presents it (`DnsName("localhost")`), without its wrapping.
fn presented_name(name: &str) -> &str {
    match name.split_once("(\"") {
        Some((_, rest)) => rest.strip_suffix("\")").unwrap_or(rest),
        None => name,
    }
}

fn describe_server_error(e: &io::Error) -> String {
    match rustls_error(e) {
        Some(rustls::Error::InvalidMessage(_)) => {
            "the client did not speak TLS (plaintext HTTP/2 to a TLS port?)".to_owned()
        }
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}

/// A verifier that accepts any certificate, for `--insecure` diagnostics only.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
