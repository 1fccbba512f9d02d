//! An embedded S3-compatible endpoint (s3s + s3s-fs) for the demo command and tests.
//!
//! It exists so the component can be exercised against a real, signature-checking S3 server
//! without Docker or cloud credentials. The API is synchronous because callers (CLI, tests)
//! may or may not run inside an async runtime: the server owns its runtime on a dedicated
//! thread, so starting and dropping it is safe from either context.

use std::fs::{File, TryLockError};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use s3s::S3Request;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{GetObjectInput, PutObjectInput};
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3Result, s3_error};
use s3s_fs::FileSystem;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Small on purpose: the server shares a 2-core machine with wasmtime and the tests.
mod linearized;

const WORKER_THREADS: usize = 2;
/// How long in-flight requests may finish once shutdown starts; idle keep-alive
/// connections close immediately.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on waiting for s3s-fs's blocking file I/O (`spawn_blocking`) at shutdown.
const RUNTIME_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// Back-off after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Configuration of a [`LocalS3`].
#[derive(Debug, Clone)]
pub struct LocalS3Options {
    pub access_key: String,
    pub secret_key: String,
    /// Kept after the server stops; `None` uses a fresh temporary directory that is
    /// removed when the server is dropped.
    pub data_dir: Option<PathBuf>,
    /// Reported to clients for signing only: s3s does not check the region of the
    /// credential scope.
    pub region: String,
    /// Base domain for virtual-hosted-style requests (`bucket.<domain>[:port]`), e.g.
    /// `"localhost"`. The port is ignored, as it is only known after binding. Hosts that
    /// are IP addresses, or anything other than a subdomain of this, stay path-style.
    pub virtual_host_domain: Option<String>,
}

impl Default for LocalS3Options {
    fn default() -> Self {
        Self {
            access_key: "local-access-key".to_owned(),
            secret_key: "local-secret-key".to_owned(),
            data_dir: None,
            region: "us-east-1".to_owned(),
            virtual_host_domain: None,
        }
    }
}

/// A running S3 endpoint on `127.0.0.1`, with SigV4 (and SigV2) verification on.
///
/// What clients get back (all as S3 XML errors):
/// - unsigned request: `403 AccessDenied` ("Signature is required");
/// - signed with the wrong secret: `403 SignatureDoesNotMatch`;
/// - signed with an unknown access key id: `403 InvalidAccessKeyId` (s3s's own
///   `SimpleAuth` would answer `403 NotSignedUp`, unlike AWS).
///
/// Dropping it stops accepting, lets in-flight requests finish for a moment, shuts the
/// runtime down and removes the data directory if it was created here.
pub struct LocalS3 {
    addr: SocketAddr,
    access_key: String,
    secret_key: String,
    region: String,
    data_dir: PathBuf,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    _dir_lock: File,
    // Last field: removed only after `Drop::drop` has joined the server thread.
    _temp_dir: Option<tempfile::TempDir>,
}

/// s3s-fs names its upload temporaries with a per-server counter in the data dir's root, so
/// two servers on one directory overwrite each other's uploads while their ETags stay right:
/// refuse a directory another server (in this or another process) already serves.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(".local-s3.lock");
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "S3 data dir {} is already served by another local S3 server; give each server its own directory",
            data_dir.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

impl LocalS3 {
    /// Binds `127.0.0.1:0` and starts serving before returning, so the endpoint is
    /// immediately usable.
    pub fn start(options: LocalS3Options) -> anyhow::Result<Self> {
        let LocalS3Options {
            access_key,
            secret_key,
            data_dir,
            region,
            virtual_host_domain,
        } = options;
        if access_key.is_empty() || secret_key.is_empty() {
            bail!("local S3: access key and secret key must not be empty");
        }

        let (temp_dir, data_dir) = match data_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating S3 data dir {}", dir.display()))?;
                (None, dir)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("local-s3-")
                    .tempdir()
                    .context("creating a temporary S3 data dir")?;
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        // s3s-fs canonicalizes its root; do the same so `data_dir()` matches what it writes.
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving S3 data dir {}", data_dir.display()))?;
        let dir_lock = lock_data_dir(&data_dir)?;
        let fs = FileSystem::new(&data_dir)
            .map_err(|e| anyhow!("opening S3 data dir {}: {e:?}", data_dir.display()))?;

        let mut builder = S3ServiceBuilder::new(linearized::Linearized::new(fs));
        builder.set_auth(SingleKeyAuth {
            access_key: access_key.clone(),
            secret_key: SecretKey::from(secret_key.as_str()),
        });
        builder.set_access(BucketCheck {
            root: data_dir.clone(),
        });
        if let Some(domain) = virtual_host_domain {
            builder.set_host(BaseDomainHost::new(&domain)?);
        }
        let service = builder.build();

        // Bound here rather than on the server thread so bind errors surface directly and
        // the port is known (and queueing connections) before we return.
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the local S3 endpoint")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;

        let (stop, stop_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        // The runtime lives and dies on this thread: building, blocking on and dropping a
        // runtime from a caller that is itself async would otherwise panic.
        let server = std::thread::Builder::new()
            .name("local-s3".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(WORKER_THREADS)
                    .thread_name("local-s3-worker")
                    .enable_io()
                    .enable_time()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = ready_tx.send(Ok(()));
                            serve(listener, service, stop_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
            })
            .context("spawning the local S3 server thread")?;

        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = server.join();
                return Err(e).context("starting the local S3 server");
            }
            Err(_) => {
                let _ = server.join();
                bail!("local S3 server thread exited during startup");
            }
        }

        Ok(Self {
            addr,
            access_key,
            secret_key,
            region,
            data_dir,
            stop,
            server: Some(server),
            _dir_lock: dir_lock,
            _temp_dir: temp_dir,
        })
    }

    /// Path-style base URL, e.g. `http://127.0.0.1:34567`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Canonicalized root of the store: one directory per bucket, objects as files
    /// (s3s-fs layout).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Creates the bucket directly on disk (s3s-fs's `CreateBucket` is just `mkdir`), so
    /// callers need no signer. Unlike S3, an existing bucket is fine, because demos and
    /// tests re-run against a persistent `data_dir`.
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        if !s3s::path::check_bucket_name(name) {
            bail!("invalid S3 bucket name: {name:?}");
        }
        let path = self.data_dir.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
            Err(e) => Err(e).with_context(|| format!("creating bucket dir {}", path.display())),
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        // `send_replace` succeeds even if the server already stopped.
        self.stop.send_replace(true);
        if let Some(server) = self.server.take() {
            // Bounded by DRAIN_TIMEOUT + RUNTIME_SHUTDOWN_TIMEOUT.
            let _ = server.join();
        }
    }
}

impl std::fmt::Debug for LocalS3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalS3")
            .field("endpoint", &self.endpoint())
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

async fn serve(listener: TcpListener, service: S3Service, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, service.clone(), stop.clone()));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reap finished connections so the set does not grow with every request.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    // Whatever is still running after the timeout is aborted when `connections` drops.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
}

async fn serve_connection(stream: TcpStream, service: S3Service, mut stop: watch::Receiver<bool>) {
    // Without it, Nagle's algorithm and delayed ACKs added ~40 ms to small GET responses.
    let _ = stream.set_nodelay(true);
    // HTTP/1.1 only: what S3 clients use over plain http; keep-alive is on by default.
    // Errors (malformed requests, resets) only end this connection.
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let stopping = tokio::select! {
        _ = conn.as_mut() => false,
        _ = stop.changed() => true,
    };
    if stopping {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

/// One key pair; unknown key ids get `InvalidAccessKeyId` like AWS, where
/// `s3s::auth::SimpleAuth` would answer `NotSignedUp`.
struct SingleKeyAuth {
    access_key: String,
    secret_key: SecretKey,
}

#[async_trait::async_trait]
impl S3Auth for SingleKeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret_key.clone())
        } else {
            Err(s3_error!(InvalidAccessKeyId))
        }
    }
}

/// Virtual-hosted-style parsing that ignores the port. s3s's `SingleDomain` compares the
/// `Host` header including its port (unknown until we bind) and treats any other valid
/// host name, such as `localhost:PORT`, as a bucket name, which would break path-style.
struct BaseDomainHost {
    domain: String,
}

impl BaseDomainHost {
    fn new(domain: &str) -> anyhow::Result<Self> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let valid_label =
            |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !domain.split('.').all(valid_label) {
            bail!("virtual host domain must be a bare host name (no scheme or port): {domain:?}");
        }
        Ok(Self { domain })
    }
}

impl S3Host for BaseDomainHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let bucket = name
            .strip_suffix(self.domain.as_str())
            .and_then(|prefix| prefix.strip_suffix('.'))
            .filter(|bucket| !bucket.is_empty())
            .map(str::to_owned);
        Ok(match bucket {
            Some(bucket) => VirtualHost::new(self.domain.as_str()).with_bucket(bucket),
            // No bucket: s3s then parses the path, i.e. path-style.
            None => VirtualHost::new(name),
        })
    }
}

/// Signed requests only, as s3s's default; and GET or PUT of an object in a missing bucket
/// answers `NoSuchBucket` like AWS, MinIO and Garage do (alone, s3s-fs answers a GET with
/// `NoSuchKey` and a PUT by creating the bucket's directory).
struct BucketCheck {
    root: PathBuf,
}

#[async_trait::async_trait]
impl S3Access for BucketCheck {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Signature is required")),
        }
    }

    async fn get_object(&self, req: &mut S3Request<GetObjectInput>) -> S3Result<()> {
        self.bucket_exists(&req.input.bucket)
    }

    async fn put_object(&self, req: &mut S3Request<PutObjectInput>) -> S3Result<()> {
        self.bucket_exists(&req.input.bucket)
    }
}

impl BucketCheck {
    fn bucket_exists(&self, bucket: &str) -> S3Result<()> {
        // s3s has validated the name already, so it is one plain path component.
        if self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3_error!(NoSuchBucket))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::time::{SystemTime, UNIX_EPOCH};

    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};

    /// Sends one request over a fresh connection; returns the status and the raw response.
    fn request(s3: &LocalS3, host: &str, path: &str, headers: &[(&str, String)]) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(s3.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        (status, response)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// `YYYYMMDDTHHMMSSZ` for now.
    fn amz_date() -> String {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (days, tod) = ((secs / 86_400) as i64, secs % 86_400);
        let (year, month, day) = s3_result_store::calendar::civil_from_days(days);
        format!(
            "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
            tod / 3600,
            tod / 60 % 60,
            tod % 60
        )
    }

    /// SigV4 headers for a body-less `GET {path}` without query.
    fn sign(
        host: &str,
        path: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> Vec<(&'static str, String)> {
        let date_time = amz_date();
        let date = &date_time[..8];
        let payload = hex(&Sha256::digest(b""));
        let signed = "host;x-amz-content-sha256;x-amz-date";
        let canonical = format!(
            "GET\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{date_time}\n\n{signed}\n{payload}"
        );
        let scope = format!("{date}/{region}/s3/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}",
            hex(&Sha256::digest(canonical))
        );
        let mut key = hmac(format!("AWS4{secret_key}").as_bytes(), date);
        for part in [region, "s3", "aws4_request"] {
            key = hmac(&key, part);
        }
        let signature = hex(&hmac(&key, &to_sign));
        vec![
            ("x-amz-date", date_time),
            ("x-amz-content-sha256", payload),
            (
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
                ),
            ),
        ]
    }

    #[test]
    fn unsigned_request_is_denied_and_bucket_is_on_disk() {
        let s3 = LocalS3::start(LocalS3Options::default()).unwrap();
        s3.create_bucket("celery-results").unwrap();
        s3.create_bucket("celery-results").unwrap(); // idempotent
        assert!(s3.create_bucket("Bad_Name").is_err());
        assert!(s3.data_dir().join("celery-results").is_dir());

        let host = s3.local_addr().to_string();
        let (status, body) = request(&s3, &host, "/celery-results", &[]);
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("AccessDenied"), "{body}");
    }

    #[test]
    fn sigv4_is_verified() {
        let s3 = LocalS3::start(LocalS3Options::default()).unwrap();
        s3.create_bucket("celery-results").unwrap();
        let host = s3.local_addr().to_string();
        let (ak, sk, region) = (s3.access_key(), s3.secret_key(), s3.region());

        let (status, body) = request(&s3, &host, "/", &sign(&host, "/", ak, sk, region));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<Name>celery-results</Name>"), "{body}");

        let (status, body) = request(
            &s3,
            &host,
            "/",
            &sign(&host, "/", ak, "wrong-secret", region),
        );
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("SignatureDoesNotMatch"), "{body}");

        let (status, body) = request(
            &s3,
            &host,
            "/",
            &sign(&host, "/", "unknown-key", sk, region),
        );
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("InvalidAccessKeyId"), "{body}");
    }

    #[test]
    fn virtual_hosted_and_path_style() {
        let options = LocalS3Options {
            virtual_host_domain: Some("localhost".to_owned()),
            ..LocalS3Options::default()
        };
        let s3 = LocalS3::start(options).unwrap();
        s3.create_bucket("results").unwrap();
        let port = s3.local_addr().port();
        let (ak, sk, region) = (s3.access_key(), s3.secret_key(), s3.region());

        let vhost = format!("results.localhost:{port}");
        let (status, body) = request(&s3, &vhost, "/", &sign(&vhost, "/", ak, sk, region));
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("<ListBucketResult") && body.contains("<Name>results</Name>"),
            "{body}"
        );

        let base = format!("localhost:{port}");
        let (status, body) = request(
            &s3,
            &base,
            "/results",
            &sign(&base, "/results", ak, sk, region),
        );
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("<ListBucketResult") && body.contains("<Name>results</Name>"),
            "{body}"
        );
    }

    #[test]
    fn a_data_dir_is_served_by_one_server_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let options = || LocalS3Options {
            data_dir: Some(dir.path().to_path_buf()),
            ..LocalS3Options::default()
        };
        let first = LocalS3::start(options()).unwrap();
        let err = LocalS3::start(options()).unwrap_err().to_string();
        assert!(err.contains("already served"), "{err}");
        drop(first);
        let again = LocalS3::start(options()).unwrap();
        again.create_bucket("results").unwrap();
    }

    #[test]
    fn start_and_drop_inside_an_async_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let s3 = LocalS3::start(LocalS3Options::default()).unwrap();
            drop(s3);
        });
    }

    #[test]
    fn drop_closes_idle_connections_and_removes_temporary_data_dir() {
        let s3 = LocalS3::start(LocalS3Options::default()).unwrap();
        let dir = s3.data_dir().to_path_buf();
        assert!(dir.is_dir());

        // An idle keep-alive connection must be closed gracefully, not waited out.
        let mut idle = std::net::TcpStream::connect(s3.local_addr()).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let host = s3.local_addr();
        write!(idle, "GET / HTTP/1.1\r\nhost: {host}\r\n\r\n").unwrap();
        let mut buf = [0; 4096];
        assert!(idle.read(&mut buf).unwrap() > 0);

        let started = std::time::Instant::now();
        drop(s3);
        assert!(started.elapsed() < DRAIN_TIMEOUT, "{:?}", started.elapsed());
        assert!(!dir.exists());
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).unwrap(); // EOF, not a timeout
    }
}
