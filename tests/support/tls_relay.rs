//! An HTTPS front for a plain-HTTP S3 server, on loopback: it terminates TLS with a
//! certificate from a test CA of its own and relays the bytes unchanged to the server, so the
//! server still verifies the signature over the `Host` the client signed. It counts TCP
//! connections and completed handshakes, which is how the tests see connection reuse.
//!
//! Like the fault proxy, it owns its tokio runtime on a thread of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority made for one test run.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA's certificate, as a CA bundle holds it.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses) and its key.
    fn server_certificate(&self, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("server certificate parameters");
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        (cert.der().to_vec(), key.serialize_der())
    }
}

pub struct TlsRelay {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsRelay {
    /// Listens on 127.0.0.1 (a free port) with a certificate of `ca` for `names`, and relays
    /// to `upstream`.
    pub fn start(upstream: SocketAddr, ca: &TestCa, names: &[&str]) -> TlsRelay {
        let (cert, key) = ca.server_certificate(names);
        let config = ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("TLS server config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tls-relay-worker")
            .enable_io()
            .enable_time()
            .build()
            .expect("tls relay: cannot build its tokio runtime");
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("tls relay: cannot bind");
        std_listener.set_nonblocking(true).expect("non-blocking");
        let addr = std_listener.local_addr().expect("tls relay: no address");
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(std_listener).expect("tls relay: cannot register the listener")
        };
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (shutdown, mut shutdown_rx) = oneshot::channel();
        let (loop_connections, loop_handshakes) =
            (Arc::clone(&connections), Arc::clone(&handshakes));
        let thread = std::thread::Builder::new()
            .name("tls-relay".into())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        let client = tokio::select! {
                            _ = &mut shutdown_rx => return,
                            accepted = listener.accept() => match accepted {
                                Ok((client, _)) => client,
                                Err(_) => continue,
                            },
                        };
                        loop_connections.fetch_add(1, Ordering::SeqCst);
                        // A handshake is several small writes: Nagle would hold them for the
                        // client's delayed ACK (40 ms a connection).
                        let _ = client.set_nodelay(true);
                        let (acceptor, handshakes) =
                            (acceptor.clone(), Arc::clone(&loop_handshakes));
                        tokio::spawn(async move {
                            // A failed handshake (an untrusting client) just ends the connection.
                            let Ok(mut tls) = acceptor.accept(client).await else {
                                return;
                            };
                            handshakes.fetch_add(1, Ordering::SeqCst);
                            let Ok(mut server) = TcpStream::connect(upstream).await else {
                                return;
                            };
                            let _ = server.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                        });
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .expect("tls relay: cannot spawn its thread");
        TlsRelay {
            addr,
            connections,
            handshakes,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections accepted, whether or not their handshake succeeded.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
