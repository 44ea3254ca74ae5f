//! TLS for the tests: certificates made here with rcgen (a CA of their own and a leaf for 127.0.0.1), kept in a
//! directory laid out like a mounted Kubernetes secret (so a replacement is an atomic symlink swap, as the kubelet
//! does it), and clients that trust only the CAs a test names: reqwest, a WebSocket, and a bare handshake that reads
//! which certificate the server sent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cdvault_api::http::TlsOptions;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::ws::Socket;

/// A CA of its own and a leaf certificate for 127.0.0.1 it signed, all in PEM.
#[derive(Clone)]
pub struct Pair {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pair {
    /// A fresh CA and leaf (ECDSA P-256).
    pub fn new() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = leaf.signed_by(&key, &ca).unwrap();
        Self { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// The leaf certificate in DER, as a server sends it in its handshake.
    pub fn cert_der(&self) -> Vec<u8> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap().to_vec()
    }
}

impl Default for Pair {
    fn default() -> Self {
        Self::new()
    }
}

/// `tls.crt` and `tls.key` as a mounted secret has them: links through `..data` to a directory per version.
pub struct CertDir {
    dir: tempfile::TempDir,
    versions: std::sync::atomic::AtomicU32,
}

impl CertDir {
    pub fn new(pair: &Pair) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let this = Self { dir, versions: std::sync::atomic::AtomicU32::new(0) };
        this.replace(&pair.cert_pem, &pair.key_pem);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), this.dir.path().join(name)).unwrap();
        }
        this
    }

    /// Puts a new certificate and key in place at once: both files change together, or neither.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) {
        let version = self.versions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("..v{version}");
        let folder = self.dir.path().join(&name);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(folder.join("tls.key"), key_pem).unwrap();
        let link = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &link).unwrap();
        std::fs::rename(&link, self.dir.path().join("..data")).unwrap();
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// TLS on these files, read again every 50 ms (so a test waits little for a reload).
    pub fn options(&self) -> TlsOptions {
        TlsOptions {
            cert_file: self.cert_file(),
            key_file: self.key_file(),
            reload_poll: Duration::from_millis(50),
            hsts_max_age: TlsOptions::DEFAULT_HSTS_MAX_AGE,
        }
    }
}

/// A rustls client configuration (aws-lc-rs) trusting only `cas`.
pub fn client_config(cas: &[&str]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A reqwest client trusting only `ca_pem`, that opens a new connection for each request (so each one sees the
/// certificate served at that moment).
pub fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The leaf certificate the server at `address` sends in a new handshake, verified against `cas`.
pub async fn served_certificate(address: SocketAddr, cas: &[&str]) -> Result<Vec<u8>, String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(cas)));
    let tcp = tokio::net::TcpStream::connect(address).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (_, session) = tls.get_ref();
    let chain = session.peer_certificates().ok_or("no certificate")?;
    Ok(chain[0].to_vec())
}

/// Opens `wss://address/graphql/ws` (graphql-transport-ws) trusting `ca_pem`, with `origin` as its `Origin` if
/// any; the HTTP status if the upgrade is refused.
pub async fn open_wss(address: SocketAddr, ca_pem: &str, origin: Option<&str>) -> Result<Socket, u16> {
    let mut request = format!("wss://{address}/graphql/ws").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(client_config(&[ca_pem])));
    match tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("the upgrade failed: {error}"),
    }
}
