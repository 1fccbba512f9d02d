//! The component's outgoing HTTP sender: keep-alive connections, and host names resolved by
//! rules instead of DNS when asked.
//!
//! wasmtime's default sender ([`wasmtime_wasi_http::default_send_request`]) opens a new TCP
//! connection (and TLS session) for every request. A result store makes many small requests,
//! so that is a connect (and, against a remote server, a round trip or more) per operation.
//! [`PooledSender`] sends requests through one [`hyper_util`] legacy client shared by the
//! stores a [`Runtime`](crate::Runtime) opens on one thread (each thread runs its own I/O, so
//! has its own pool): HTTP/1.1 keep-alive connections, pooled per scheme and authority, so a
//! sequence of operations pays one connect.
//!
//! `https` requests go through the same pool and rules, with TLS by rustls (ring) against
//! the Mozilla roots wasmtime's default sender trusts, plus any [root certificates
//! added](PooledSender::with_root_certificates_pem) (a private CA, as MinIO deployments often
//! use): a sequence of operations pays one TCP connect and one TLS handshake, not one each.
//!
//! What the guest sees does not change: the request options' three timeouts are honoured
//! (wasmtime's 600 s defaults when the guest sets none) and failures come back as the same
//! error codes the default sender gives:
//!
//! | failure | error |
//! |---|---|
//! | connect (name lookup, TCP and TLS handshake) exceeds `connect-timeout` | `connection-timeout` |
//! | name lookup fails | `DNS-error` ("address not available") |
//! | TCP connect fails | the I/O error, as [`Error::Connect`] (`connection-refused`) |
//! | no response head within `first-byte-timeout` after connecting | `connection-read-timeout` |
//! | response body stalls between frames for `between-bytes-timeout` | `connection-read-timeout` |
//! | the server's certificate is not trusted or not for the host name | `TLS-certificate-error` |
//! | the server sent a TLS alert | `TLS-alert-received` |
//! | any other TLS failure | `TLS-protocol-error` |
//! | anything else while sending or reading the head (reset, garbage) | `HTTP-protocol-error` |
//! | error while reading the body | [`Error::Hyper`], as the default sender |
//!
//! The first-byte clock starts once a connection is there (at once for a pooled one), as the
//! default sender's does, so a slow connect is reported as a connect timeout and does not eat
//! into the time the server has to answer.

use std::error::Error as StdError;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// wasmtime's default for each timeout the guest leaves unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Idle pooled connections are closed after this long: below the keep-alive timeouts of
/// common S3 servers and load balancers, so that we close first rather than reuse a
/// connection the server is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// What a deadline beyond `Instant`'s range becomes.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);

type PoolClient = Client<TimedConnector, WasiBody>;
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture = Box<dyn Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send>;

/// [`WasiHttpHooks`] that send `http` requests over pooled keep-alive connections and resolve
/// host names by [rules](PooledSender::with_resolve) before DNS. It honours the request
/// options' three timeouts and reports failures with the error codes wasmtime's default sender
/// gives, so the guest sees no difference but fewer connects.
///
/// Cheap to clone: clones share the pool (and the rules). The client behind it is created on
/// first use, inside the Tokio runtime that wasmtime-wasi runs the request on, so a sender
/// can be made anywhere.
#[derive(Clone)]
pub struct PooledSender {
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    pooling: bool,
    /// Whether the guest's request options (its timeouts) are applied; off, the sender acts
    /// as a host that ignores them (wasmtime's 600 s defaults apply instead).
    request_timeouts: bool,
    rules: Arc<[ResolveRule]>,
    /// Trusted for `https` besides the Mozilla roots.
    roots: Arc<[CertificateDer<'static>]>,
    /// Fails only if rustls cannot make a TLS client, which its ring provider always can.
    client: OnceLock<Result<PoolClient, String>>,
    /// Requests handed to this sender (every attempt of every operation), shared by clones.
    requests: Arc<AtomicU64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ResolveRule {
    /// Lower case, without a trailing dot.
    name: String,
    ip: IpAddr,
}

impl Default for PooledSender {
    fn default() -> Self {
        PooledSender::new()
    }
}

impl std::fmt::Debug for PooledSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledSender")
            .field("pooling", &self.shared.pooling)
            .field("request_timeouts", &self.shared.request_timeouts)
            .field("rules", &self.shared.rules)
            .field("extra_roots", &self.shared.roots.len())
            .finish_non_exhaustive()
    }
}

impl PooledSender {
    /// Pooling on, no resolver rules.
    pub fn new() -> PooledSender {
        PooledSender {
            shared: Arc::new(Shared {
                pooling: true,
                request_timeouts: true,
                rules: Arc::new([]),
                roots: Arc::new([]),
                client: OnceLock::new(),
                requests: Arc::default(),
            }),
        }
    }

    /// Whether connections are kept alive and reused (default: yes). Off, each request gets
    /// a connection of its own, closed after the response, as with wasmtime's default sender.
    pub fn with_connection_pool(self, on: bool) -> PooledSender {
        self.configure(|shared| shared.pooling = on)
    }

    /// Whether the timeouts the guest sets in its request options are applied (default: yes).
    /// Off, the sender behaves as a host that ignores them, as some do (jco's browser shim
    /// ignores the between-bytes timeout): for showing that the component's own deadlines
    /// hold there too.
    pub fn with_request_timeouts(self, on: bool) -> PooledSender {
        self.configure(|shared| shared.request_timeouts = on)
    }

    /// Resolves `host_suffix` and every name under it (`bucket.host_suffix`, ...) to `ip`
    /// instead of asking DNS; the port stays the one in the URL. A leading `*.` is accepted
    /// and means the same. The longest matching rule wins; a rule for the same name replaces
    /// the earlier one; an empty name matches nothing. For `https` the certificate is
    /// still checked against the name in the URL.
    pub fn with_resolve(self, host_suffix: &str, ip: IpAddr) -> PooledSender {
        let name = normalize(host_suffix.trim_start_matches("*."));
        if name.is_empty() {
            return self;
        }
        self.configure(|shared| {
            let mut rules: Vec<ResolveRule> = shared
                .rules
                .iter()
                .filter(|rule| rule.name != name)
                .cloned()
                .collect();
            rules.push(ResolveRule { name, ip });
            shared.rules = rules.into();
        })
    }

    /// Trusts the certificates in `pem` (one or more `CERTIFICATE` blocks, as in a CA bundle
    /// such as `AWS_CA_BUNDLE` names) for `https`, besides the Mozilla roots: for servers with
    /// a private CA. Fails, changing nothing, when `pem` holds no certificate or one that is
    /// not a usable trust anchor.
    pub fn with_root_certificates_pem(self, pem: &[u8]) -> Result<PooledSender, InvalidRoots> {
        let mut added = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| InvalidRoots(format!("unreadable PEM: {e}")))?;
            // The store checks that it is a certificate it can anchor trust in.
            RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| InvalidRoots(format!("not a usable root certificate: {e}")))?;
            added.push(cert);
        }
        if added.is_empty() {
            return Err(InvalidRoots("no CERTIFICATE block in the PEM".into()));
        }
        Ok(self.configure(|shared| {
            shared.roots = shared.roots.iter().cloned().chain(added).collect();
        }))
    }

    /// Whether connections are pooled.
    pub fn is_pooling(&self) -> bool {
        self.shared.pooling
    }

    /// Whether this sender adds nothing to wasmtime's default one (no pool, no rules), so the
    /// default hooks can be used instead.
    pub fn is_default(&self) -> bool {
        !self.shared.pooling
            && self.shared.request_timeouts
            && self.shared.rules.is_empty()
            && self.shared.roots.is_empty()
    }

    /// How many HTTP requests the component has sent through this sender and its clones, every
    /// attempt counted (a retried operation counts each try), whatever their outcome. Against
    /// the number of operations this shows how many requests retries added.
    pub fn requests_sent(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// A sender with the same configuration and request count but a pool of its own, for
    /// another Tokio runtime: a pooled connection only makes progress while the runtime that
    /// opened it runs.
    pub(crate) fn with_own_pool(&self) -> PooledSender {
        let mut shared = Shared::clone(&self.shared);
        shared.client = OnceLock::new();
        PooledSender {
            shared: Arc::new(shared),
        }
    }

    /// The address a rule gives `host`, if one matches.
    pub fn resolve_override(&self, host: &str) -> Option<IpAddr> {
        lookup(&self.shared.rules, host)
    }

    /// Changes the configuration of this handle only: other clones keep theirs, and the pool,
    /// which the old configuration made, is not carried over.
    fn configure(mut self, change: impl FnOnce(&mut Shared)) -> PooledSender {
        let shared = Arc::make_mut(&mut self.shared);
        change(shared);
        shared.client = OnceLock::new();
        shared.requests = Arc::default();
        self
    }

    fn client(&self) -> Result<&PoolClient, Error> {
        let client = self.shared.client.get_or_init(|| {
            let mut http = HttpConnector::new_with_resolver(RuleResolver {
                rules: Arc::clone(&self.shared.rules),
            });
            http.set_nodelay(true);
            // The TLS layer above takes `https` URLs; this one only connects TCP.
            http.enforce_http(false);
            let connector = HttpsConnectorBuilder::new()
                .with_tls_config(tls_config(&self.shared.roots)?)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            let mut builder = Client::builder(TokioExecutor::new());
            builder
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                // The guest sets `Host` itself (wasmtime adds it from the authority).
                .set_host(false);
            if !self.shared.pooling {
                builder.pool_max_idle_per_host(0);
            }
            Ok(builder.build(TimedConnector { connector }))
        });
        client
            .as_ref()
            .map_err(|why| Error::InternalError(Some(why.clone())))
    }

    fn send(
        &self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> impl Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send + 'static {
        let sender = self.clone();
        async move {
            // Made here, on first use, inside the runtime that runs the request.
            let client = sender.client()?;
            if request.uri().authority().is_none() {
                return Err(Error::HttpRequestUriInvalid);
            }
            let options = options.filter(|_| sender.shared.request_timeouts);
            let limit = |pick: fn(&RequestOptions) -> Option<Duration>| {
                options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
            };
            let scope = Arc::new(RequestScope {
                connect_timeout: limit(|o| o.connect_timeout),
                first_byte_timeout: limit(|o| o.first_byte_timeout),
                sent: Instant::now(),
                phase: Mutex::new(ConnectPhase::NotStarted),
            });
            let between_bytes = limit(|o| o.between_bytes_timeout);

            let response = SCOPE.scope(Arc::clone(&scope), client.request(request));
            let mut response = pin!(response);
            let mut first_byte = pin!(tokio::time::sleep_until(scope.first_byte_deadline()));
            let response = poll_fn(|cx| {
                if let Poll::Ready(result) = response.as_mut().poll(cx) {
                    return Poll::Ready(result.map_err(client_error));
                }
                // A connect may have started or ended in that poll: move the deadline.
                let deadline = scope.first_byte_deadline();
                if deadline != first_byte.deadline() {
                    first_byte.as_mut().reset(deadline);
                }
                ready!(first_byte.as_mut().poll(cx));
                Poll::Ready(Err(Error::ConnectionReadTimeout))
            })
            .await?;

            let response = response
                .map(|incoming| UnsyncBoxBody::new(BetweenBytes::new(incoming, between_bytes)));
            // The connection belongs to the pool: there is no per-request I/O to wait for.
            let io: IoFuture = Box::new(async { Ok(()) });
            Ok((response, io))
        }
    }
}

impl WasiHttpHooks for PooledSender {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        // As the default implementation: nothing to report on `fut`.
        drop(fut);
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        Box::new(self.send(request, options))
    }
}

/// [`PooledSender::with_root_certificates_pem`] was given no usable certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRoots(String);

impl std::fmt::Display for InvalidRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid root certificates: {}", self.0)
    }
}

impl StdError for InvalidRoots {}

/// The Mozilla roots (as wasmtime's default sender) and `extra`, TLS 1.2 and 1.3, on ring.
/// HTTP/1.1 only, which the connector says in ALPN.
fn tls_config(extra: &[CertificateDer<'static>]) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // Each was checked when it was added.
    roots.add_parsable_certificates(extra.iter().cloned());
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|e| format!("cannot make a TLS client: {e}"))?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn lookup(rules: &[ResolveRule], host: &str) -> Option<IpAddr> {
    let host = normalize(host);
    rules
        .iter()
        .filter(|rule| {
            host == rule.name
                || host
                    .strip_suffix(rule.name.as_str())
                    .is_some_and(|head| head.ends_with('.'))
        })
        .max_by_key(|rule| rule.name.len())
        .map(|rule| rule.ip)
}

/// Name lookup by the rules first, then by the system resolver (as the default sender's).
#[derive(Clone)]
struct RuleResolver {
    rules: Arc<[ResolveRule]>,
}

/// A failed name lookup, kept apart from connect errors so it maps to `DNS-error`.
#[derive(Debug)]
struct LookupFailed(io::Error);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "name lookup failed: {}", self.0)
    }
}

impl StdError for LookupFailed {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for RuleResolver {
    type Response = Addrs;
    type Error = LookupFailed;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, LookupFailed>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LookupFailed>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        // Port 0: the connector puts the URL's port in.
        if let Some(ip) = lookup(&self.rules, name.as_str()) {
            return Box::pin(std::future::ready(Ok(
                vec![SocketAddr::new(ip, 0)].into_iter()
            )));
        }
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(LookupFailed)?;
            Ok(addrs.collect::<Vec<_>>().into_iter())
        })
    }
}

tokio::task_local! {
    /// The request being sent, seen by the connector when the client asks it to connect.
    static SCOPE: Arc<RequestScope>;
}

/// One request's timeouts, and where its connect is: the first-byte clock starts once the
/// connection is there.
struct RequestScope {
    connect_timeout: Duration,
    first_byte_timeout: Duration,
    sent: Instant,
    phase: Mutex<ConnectPhase>,
}

#[derive(Clone, Copy)]
enum ConnectPhase {
    /// No connect started (yet): a pooled connection needs none.
    NotStarted,
    Connecting(Instant),
    Connected(Instant),
}

impl RequestScope {
    fn set_phase(&self, phase: ConnectPhase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    fn first_byte_deadline(&self) -> Instant {
        let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        match phase {
            ConnectPhase::NotStarted => after(self.sent, self.first_byte_timeout),
            // The connect timeout governs until the connect ends; then this is recomputed.
            ConnectPhase::Connecting(at) => after(
                at,
                self.connect_timeout.saturating_add(self.first_byte_timeout),
            ),
            ConnectPhase::Connected(at) => after(at.max(self.sent), self.first_byte_timeout),
        }
    }
}

fn after(at: Instant, duration: Duration) -> Instant {
    at.checked_add(duration)
        .unwrap_or_else(|| at + FAR_FUTURE.min(duration))
}

/// [`HttpConnector`] under the connect timeout of the request that asked for the connection.
#[derive(Clone)]
struct TimedConnector {
    connector: HttpsConnector<HttpConnector<RuleResolver>>,
}

/// The connect took longer than the request's connect timeout.
#[derive(Debug)]
struct ConnectTimedOut;

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connect timed out")
    }
}

impl StdError for ConnectTimedOut {}

type BoxError = Box<dyn StdError + Send + Sync>;

type Connection = MaybeHttpsStream<TokioIo<TcpStream>>;

impl tower_service::Service<Uri> for TimedConnector {
    type Response = Connection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Connection, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.connector.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        // The client calls this while the request's future is polled, so the scope is set;
        // should it ever not be, wasmtime's default applies.
        let scope = SCOPE.try_with(Arc::clone).ok();
        let limit = scope
            .as_ref()
            .map_or(DEFAULT_TIMEOUT, |s| s.connect_timeout);
        if let Some(scope) = &scope {
            scope.set_phase(ConnectPhase::Connecting(Instant::now()));
        }
        let connecting = self.connector.call(uri);
        Box::pin(async move {
            let result = tokio::time::timeout(limit, connecting).await;
            if let Some(scope) = &scope {
                scope.set_phase(ConnectPhase::Connected(Instant::now()));
            }
            match result {
                Ok(connected) => connected,
                Err(_elapsed) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

/// The error code for a failure before the response head was in, as the default sender
/// would give it.
fn client_error(err: hyper_util::client::legacy::Error) -> Error {
    let chain =
        || std::iter::successors(Some(&err as &(dyn StdError + 'static)), |e| (*e).source());
    if chain().any(|e| e.is::<ConnectTimedOut>()) {
        return Error::ConnectionTimeout;
    }
    if err.is_connect() {
        if chain().any(|e| e.is::<LookupFailed>()) {
            // What wasmtime makes of the default sender's failed lookups.
            return Error::DnsError {
                rcode: Some("address not available".to_owned()),
                info_code: None,
            };
        }
        if let Some(tls) = chain().find_map(rustls_error) {
            return tls_error(tls);
        }
        // The default sender returns the connect's I/O error; wasmtime maps it.
        return match chain().find_map(|e| e.downcast_ref::<io::Error>()) {
            Some(io) => Error::Connect(io::Error::new(io.kind(), io.to_string())),
            None => Error::ConnectionRefused,
        };
    }
    // hyper failed to send the request or to read the head. The default sender gives the
    // hyper error, which wasmtime maps to the wasi-http error code inside it if any, else to
    // `HTTP-protocol-error`.
    match chain().find_map(|e| e.downcast_ref::<ErrorCode>()) {
        Some(code) => Error::from(code.clone()),
        None => Error::HttpProtocolError,
    }
}

/// The rustls error in `err`, looking inside I/O errors too (their `source` skips the error
/// they wrap, and TLS errors come wrapped, sometimes twice).
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = err;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = current.downcast_ref::<io::Error>()?.get_ref()?;
    }
}

/// A TLS failure as its wasi-http error code; the default sender makes every one
/// `TLS-protocol-error`, which hides the common case of an untrusted certificate.
fn tls_error(err: &rustls::Error) -> Error {
    match err {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            Error::TlsCertificateError
        }
        rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}

/// The response body, failing with `connection-read-timeout` when no frame comes for the
/// between-bytes timeout (the clock starts with the head, as the default sender's).
struct BetweenBytes {
    incoming: Incoming,
    limit: Duration,
    /// When the last frame (at first, the head) came: the deadline is `limit` after it.
    last: Instant,
    /// Made, or moved to the current deadline, only when a frame has to be waited for:
    /// registering a timer wakes the runtime's I/O driver (a syscall), which a body whose
    /// frames are there when asked (any small one) never needs.
    timer: Option<Pin<Box<Sleep>>>,
}

impl BetweenBytes {
    fn new(incoming: Incoming, limit: Duration) -> BetweenBytes {
        BetweenBytes {
            incoming,
            limit,
            last: Instant::now(),
            timer: None,
        }
    }
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.last = Instant::now();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) if err.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::from(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = after(this.last, this.limit);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn rules_match_the_name_and_names_under_it() {
        let sender = PooledSender::new().with_resolve("s3.garage.localhost", LOCAL);
        assert_eq!(sender.resolve_override("s3.garage.localhost"), Some(LOCAL));
        assert_eq!(
            sender.resolve_override("Bucket.S3.Garage.Localhost."),
            Some(LOCAL)
        );
        assert_eq!(sender.resolve_override("xs3.garage.localhost"), None);
        assert_eq!(sender.resolve_override("garage.localhost"), None);
        assert_eq!(sender.resolve_override("localhost"), None);
    }

    #[test]
    fn the_longest_rule_wins_and_a_repeated_rule_replaces() {
        let sender = PooledSender::new()
            .with_resolve("*.test", LOCAL)
            .with_resolve("b.a.test", OTHER);
        assert_eq!(sender.resolve_override("a.test"), Some(LOCAL));
        assert_eq!(sender.resolve_override("x.b.a.test"), Some(OTHER));
        let sender = sender.with_resolve("b.a.test", LOCAL);
        assert_eq!(sender.resolve_override("x.b.a.test"), Some(LOCAL));
        assert_eq!(sender.shared.rules.len(), 2);
        assert_eq!(sender.with_resolve("", OTHER).shared.rules.len(), 2);
    }

    #[test]
    fn reconfiguring_leaves_other_clones_alone() {
        let pooled = PooledSender::new();
        let plain = pooled.clone().with_connection_pool(false);
        assert!(pooled.is_pooling() && !pooled.is_default());
        assert!(!plain.is_pooling() && plain.is_default());
        assert!(!plain.with_resolve("a.test", LOCAL).is_default());
    }

    #[test]
    fn deadlines_follow_the_connect() {
        let sent = Instant::now();
        let scope = RequestScope {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(1),
            sent,
            phase: Mutex::new(ConnectPhase::NotStarted),
        };
        assert_eq!(scope.first_byte_deadline(), sent + Duration::from_secs(1));
        scope.set_phase(ConnectPhase::Connecting(sent));
        assert_eq!(scope.first_byte_deadline(), sent + Duration::from_secs(6));
        let connected = sent + Duration::from_millis(300);
        scope.set_phase(ConnectPhase::Connected(connected));
        assert_eq!(
            scope.first_byte_deadline(),
            connected + Duration::from_secs(1)
        );
        // Out-of-range timeouts do not overflow.
        assert!(after(sent, Duration::MAX) > sent);
    }
}
