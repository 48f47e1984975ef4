//! A TLS front for moto: a loopback HTTPS endpoint, with a certificate from a test CA
//! made here, that forwards each connection to moto's plain HTTP port. moto speaks only
//! HTTP; this is how the functions' real TLS path (rustls on ring, the compiled-in roots,
//! `SSL_CERT_FILE`) is exercised end to end.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub struct TlsFront {
    /// `https://localhost:PORT`
    pub url: String,
    /// The test CA's certificate, in PEM: what `SSL_CERT_FILE` must name.
    pub ca_file: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    /// Starts the front for `upstream` (`http://127.0.0.1:PORT`), writing the CA's
    /// certificate into `dir`.
    pub async fn start(upstream: &str, dir: &Path) -> TlsFront {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_owned();

        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "menotime-ops test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();

        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let key = KeyPair::generate().unwrap();
        let cert = server.signed_by(&key, &ca).unwrap();

        std::fs::create_dir_all(dir).unwrap();
        let ca_file = dir.join("test-ca.pem");
        std::fs::write(&ca_file, ca.as_ref().pem()).unwrap();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://localhost:{}",
            listener.local_addr().unwrap().port()
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    // Forward each piece as it comes: with Nagle's algorithm on, a
                    // request written in two pieces waits for the delayed ACK.
                    stream.set_nodelay(true).ok();
                    // A client that does not trust the CA ends the handshake: nothing to do.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut moto) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    moto.set_nodelay(true).ok();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut moto).await;
                });
            }
        });
        TlsFront { url, ca_file, task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}
