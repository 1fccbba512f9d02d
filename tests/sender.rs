//! The host's pooled wasi:http sender (wasmtime-host/src/sender.rs) under the real component:
//! connections are reused across operations and stores, the component's timeouts and error
//! handling see what they saw with wasmtime's default sender, and resolver rules reach servers
//! under names DNS does not know, path-style and virtual-hosted.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
use s3_result_store_host::{
    AddressingStyle, ConfigInput, Error, Runtime, StoreError, default_component_path,
};
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy};
// The host's sender is under test, not the S3 server: always the embedded one.
use s3_result_store_tests::{embedded_server as server, report, unique_prefix};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A runtime of its own (the component comes from wasmtime's cache after the first load).
fn runtime_with(configure: impl FnOnce(Runtime) -> Runtime) -> Runtime {
    configure(Runtime::load(default_component_path()).unwrap_or_else(|e| panic!("{e}")))
}

fn pooled() -> Runtime {
    runtime_with(|r| r.with_connection_pool(true))
}

fn unpooled() -> Runtime {
    runtime_with(|r| r.with_connection_pool(false))
}

/// The test server's address, when its endpoint is `http://IP:PORT`.
fn upstream(test: &str) -> Option<SocketAddr> {
    let endpoint = &server().endpoint;
    let addr = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|rest| rest.parse().ok());
    if addr.is_none() {
        server().unsupported(test, "the test needs an http://IP:PORT endpoint");
    }
    addr
}

fn store_error(result: Result<impl std::fmt::Debug, Error>) -> StoreError {
    match result {
        Err(Error::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    }
}

/// A TCP forwarder on loopback that counts the connections it accepts and the HTTP/1.1
/// requests that go through them (request lines seen in the client's bytes).
struct CountingForwarder {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CountingForwarder {
    fn start(upstream: SocketAddr) -> CountingForwarder {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, requests, stop) = (
                Arc::clone(&connections),
                Arc::clone(&requests),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client2, server2) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let requests = Arc::clone(&requests);
                    std::thread::spawn(move || pipe(client, server, Some(&requests)));
                    std::thread::spawn(move || pipe(server2, client2, None));
                }
            })
        };
        CountingForwarder {
            addr,
            connections,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for CountingForwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Copies `from` to `to` until EOF or an error, then half-closes `to`; counts request lines
/// when asked (a marker split across reads is still seen: the tail of each read is kept).
fn pipe(mut from: TcpStream, mut to: TcpStream, requests: Option<&AtomicUsize>) {
    const MARKER: &[u8] = b" HTTP/1.1\r\n";
    let mut buf = [0u8; 16 * 1024];
    let mut window: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(requests) = requests {
            window.extend_from_slice(&buf[..n]);
            let found = window
                .windows(MARKER.len())
                .filter(|w| *w == MARKER)
                .count();
            requests.fetch_add(found, Ordering::SeqCst);
            let keep = window.len().min(MARKER.len() - 1);
            window.drain(..window.len() - keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// `ops` operations, alternately set and get, through `store`.
fn exercise(store: &mut s3_result_store_host::ResultStore, ops: usize, tag: &str) {
    for i in 0..ops / 2 {
        let key = format!("{tag}-{i}");
        let value = format!("{{\"status\": \"SUCCESS\", \"result\": {i}}}");
        store.set(&key, &value).unwrap();
        assert_eq!(
            store.get(&key).unwrap().as_deref(),
            Some(value.as_bytes()),
            "{key}"
        );
    }
}

#[test]
fn a_value_read_to_its_declared_length_leaves_the_connection_reusable() {
    let Some(upstream) = upstream("a_value_read_to_its_declared_length") else {
        return;
    };
    let forwarder = CountingForwarder::start(upstream);
    let runtime = pooled();
    let config = ConfigInput {
        endpoint_url: Some(forwarder.endpoint()),
        ..server().config(&unique_prefix("declared-length"))
    };
    let mut store = runtime.open(&config).unwrap();
    // The component stops reading once Content-Length bytes are in, without waiting for the
    // end of the stream: the host must still have read the body to its end, so that the
    // connection goes back to the pool. Values of one byte to several read chunks.
    for (i, len) in [1, 1024, 65_536, 3 << 20].into_iter().enumerate() {
        let value: Vec<u8> = (0..len).map(|b| (b % 253) as u8).collect();
        store.set(format!("k{i}"), &value).unwrap();
        for _ in 0..3 {
            assert_eq!(
                store.get(format!("k{i}")).unwrap().as_deref(),
                Some(&value[..])
            );
        }
    }
    let (connections, requests) = (forwarder.connections(), forwarder.requests());
    report(&format!(
        "pool on: values up to 3 MiB read to their length: {requests} requests over \
         {connections} TCP connection(s)"
    ));
    assert_eq!(requests, 16);
    assert_eq!(connections, 1);
}

#[test]
fn pooled_connections_are_reused_across_operations_and_stores() {
    let Some(upstream) = upstream("pooled_connections_are_reused") else {
        return;
    };
    let forwarder = CountingForwarder::start(upstream);
    let runtime = pooled();
    let config = ConfigInput {
        endpoint_url: Some(forwarder.endpoint()),
        ..server().config(&unique_prefix("pooled"))
    };
    let mut store = runtime.open(&config).unwrap();
    exercise(&mut store, 50, "one");
    let (connections, requests) = (forwarder.connections(), forwarder.requests());
    report(&format!(
        "pool on: 50 operations through one store: {requests} requests over {connections} \
         TCP connection(s)"
    ));
    assert!(requests >= 50, "{requests} requests");
    assert!(
        connections <= 3,
        "{connections} connections for {requests} requests"
    );
    // The runtime's own count is what went over the wire.
    assert_eq!(runtime.requests_sent(), Some(requests as u64));

    // Other stores of the same runtime draw from the same pool.
    drop(store);
    for n in 0..3 {
        let mut store = runtime.open(&config).unwrap();
        exercise(&mut store, 10, &format!("store{n}"));
    }
    let (connections, requests) = (forwarder.connections(), forwarder.requests());
    report(&format!(
        "pool on: then 3 more stores x 10 operations: {requests} requests over {connections} \
         TCP connection(s) in all"
    ));
    assert!(requests >= 80, "{requests} requests");
    assert!(
        connections <= 3,
        "{connections} connections for {requests} requests"
    );
}

/// Each thread drives the I/O of the stores it opens, with a pool of its own: stores used on
/// several threads at once all get their answers, and a store moved to another thread too.
#[test]
fn stores_on_several_threads_each_run_their_own_requests() {
    let Some(upstream) = upstream("stores_on_several_threads") else {
        return;
    };
    let forwarder = CountingForwarder::start(upstream);
    let runtime = pooled();
    let config = ConfigInput {
        endpoint_url: Some(forwarder.endpoint()),
        ..server().config(&unique_prefix("threads"))
    };
    let mut moved = runtime.open(&config).unwrap();
    exercise(&mut moved, 4, "main");
    std::thread::scope(|scope| {
        for n in 0..3 {
            let (runtime, config) = (&runtime, &config);
            scope.spawn(move || {
                let mut store = runtime.open(config).unwrap();
                exercise(&mut store, 20, &format!("thread{n}"));
            });
        }
        scope.spawn(|| exercise(&mut moved, 20, "moved"));
    });
    let (connections, requests) = (forwarder.connections(), forwarder.requests());
    report(&format!(
        "pool on: 4 threads x 20 operations at once: {requests} requests over {connections} \
         TCP connection(s)"
    ));
    assert!(requests >= 84, "{requests} requests");
    // A pool per thread that opened stores, each reusing its connections.
    assert!(
        connections <= 4 * 3,
        "{connections} connections for {requests} requests"
    );
    assert_eq!(runtime.requests_sent(), Some(requests as u64));
}

#[test]
fn without_the_pool_each_request_has_its_own_connection() {
    let Some(upstream) = upstream("without_the_pool") else {
        return;
    };
    let forwarder = CountingForwarder::start(upstream);
    let config = ConfigInput {
        endpoint_url: Some(forwarder.endpoint()),
        ..server().config(&unique_prefix("unpooled"))
    };
    let mut store = unpooled().open(&config).unwrap();
    exercise(&mut store, 50, "k");
    let (connections, requests) = (forwarder.connections(), forwarder.requests());
    report(&format!(
        "pool off: 50 operations: {requests} requests over {connections} TCP connection(s)"
    ));
    assert!(requests >= 50, "{requests} requests");
    assert_eq!(connections, requests);

    // Resolver rules need the host's sender even without a pool: still one connection each.
    let forwarder = CountingForwarder::start(upstream);
    let runtime = runtime_with(|r| {
        r.with_connection_pool(false)
            .with_resolve("unpooled.invalid-for-tests.test", LOCALHOST)
    });
    let config = ConfigInput {
        endpoint_url: Some(format!(
            "http://unpooled.invalid-for-tests.test:{}",
            forwarder.addr.port()
        )),
        addressing_style: AddressingStyle::Path,
        ..config
    };
    let mut store = runtime.open(&config).unwrap();
    exercise(&mut store, 10, "rules");
    let (connections, requests) = (forwarder.connections(), forwarder.requests());
    assert!(requests >= 10, "{requests} requests");
    assert_eq!(connections, requests);
}

/// A config through `proxy`, one attempt, with the given timeouts in milliseconds.
fn config_with_timeouts(
    endpoint: String,
    test: &str,
    connect: u32,
    first_byte: u32,
    between_bytes: u32,
) -> ConfigInput {
    ConfigInput {
        endpoint_url: Some(endpoint),
        connect_timeout_ms: Some(connect),
        first_byte_timeout_ms: Some(first_byte),
        between_bytes_timeout_ms: Some(between_bytes),
        operation_timeout_ms: Some(20_000),
        max_attempts: Some(1),
        ..server().config(&unique_prefix(test))
    }
}

#[test]
fn a_late_first_byte_is_a_timeout_and_the_pool_recovers() {
    let Some(upstream) = upstream("a_late_first_byte") else {
        return;
    };
    let proxy = FaultProxy::start(upstream);
    let config = config_with_timeouts(proxy.endpoint(), "first-byte", 2_000, 300, 2_000);
    for (name, runtime) in [("pool on", pooled()), ("pool off", unpooled())] {
        let mut store = runtime.open(&config).unwrap();
        store.set("k", b"v").unwrap();
        proxy.push(Fault::Delay(Duration::from_secs(3)));
        let started = Instant::now();
        let err = store_error(store.get("k"));
        let elapsed = started.elapsed();
        report(&format!("{name}: late first byte: {err} after {elapsed:?}"));
        assert!(
            matches!(&err, StoreError::Timeout(m) if m.starts_with("waiting for the response headers: none within first-byte-timeout-ms (300)")),
            "{name}: {err}"
        );
        assert!(
            elapsed < Duration::from_millis(2_000),
            "{name}: {elapsed:?}"
        );
        assert_eq!(
            store.get("k").unwrap().as_deref(),
            Some(&b"v"[..]),
            "{name}"
        );
    }
}

/// A server that answers one GET with a head and part of the body, then stalls.
fn stalling_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        // One connection per sender under test, each served on its own.
        let stalls: Vec<JoinHandle<()>> = (0..2)
            .filter_map(|_| listener.accept().ok())
            .map(|(mut client, _)| {
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match client.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => break,
                        }
                    }
                    let _ = client.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                          Content-Length: 100\r\n\r\n{\"status\": ",
                    );
                    let _ = client.flush();
                    // Holds the connection open without sending more.
                    std::thread::sleep(Duration::from_secs(3));
                })
            })
            .collect();
        for stall in stalls {
            let _ = stall.join();
        }
    });
    (addr, thread)
}

#[test]
fn a_stall_between_body_bytes_is_a_timeout() {
    let (addr, server_thread) = stalling_server();
    let config = config_with_timeouts(format!("http://{addr}"), "between-bytes", 2_000, 2_000, 300);
    let mut errors = Vec::new();
    for (name, runtime) in [("pool on", pooled()), ("pool off", unpooled())] {
        let mut store = runtime.open(&config).unwrap();
        let started = Instant::now();
        let err = store_error(store.get("k"));
        let elapsed = started.elapsed();
        report(&format!("{name}: stalled body: {err} after {elapsed:?}"));
        // The body's error reaches the component as a stream error; it is a timeout, named
        // as such, whichever the sender.
        assert!(
            matches!(&err, StoreError::Timeout(m) if m.starts_with("reading the response body (") && m.contains("no bytes for between-bytes-timeout-ms (300)")),
            "{name}: {err}"
        );
        assert!(
            elapsed < Duration::from_millis(2_000),
            "{name}: {elapsed:?}"
        );
        errors.push(err.to_string());
    }
    assert_eq!(errors[0], errors[1]);
    let _ = server_thread.join();
}

/// A listener whose accept queue is full, so that a new connect hangs (its SYNs are dropped);
/// `None` where that cannot be arranged.
fn hanging_listener() -> Option<(socket2::Socket, Vec<TcpStream>)> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .ok()?;
    socket.listen(0).ok()?;
    let addr = socket.local_addr().ok()?.as_socket()?;
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Some((socket, fillers)),
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn a_hanging_connect_is_a_connect_timeout_not_a_read_timeout() {
    let Some((listener, _fillers)) = hanging_listener() else {
        return server().unsupported(
            "a_hanging_connect_is_a_connect_timeout",
            "this machine does not let a loopback connect hang",
        );
    };
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // The connect timeout is the longer one: the first-byte clock must not run while
    // connecting.
    let config = config_with_timeouts(format!("http://{addr}"), "connect", 800, 200, 200);
    let mut errors = Vec::new();
    for (name, runtime) in [("pool on", pooled()), ("pool off", unpooled())] {
        let mut store = runtime.open(&config).unwrap();
        let started = Instant::now();
        let err = store_error(store.get("k"));
        let elapsed = started.elapsed();
        report(&format!("{name}: hanging connect: {err} after {elapsed:?}"));
        assert!(
            matches!(&err, StoreError::Timeout(m) if m.contains("connecting to the server")),
            "{name}: {err}"
        );
        assert!(
            elapsed >= Duration::from_millis(700) && elapsed < Duration::from_millis(3_000),
            "{name}: {elapsed:?}"
        );
        errors.push(err.to_string());
    }
    assert_eq!(errors[0], errors[1]);
}

#[test]
fn failures_map_to_the_errors_of_the_default_sender() {
    let Some(upstream) = upstream("failures_map_to_the_errors_of_the_default_sender") else {
        return;
    };
    let closed_port = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let proxy = FaultProxy::start(upstream);
    let cases: Vec<(&str, String, Option<Fault>)> = vec![
        ("refused", format!("http://127.0.0.1:{closed_port}"), None),
        (
            "unknown name",
            "http://no-such-host.invalid-for-tests.test:9".to_owned(),
            None,
        ),
        ("reset at once", proxy.endpoint(), Some(Fault::Refuse)),
        (
            "reset mid-request",
            proxy.endpoint(),
            Some(Fault::ResetMidRequest),
        ),
        (
            "reset mid-response",
            proxy.endpoint(),
            Some(Fault::ResetMidResponse),
        ),
        ("not HTTP", proxy.endpoint(), Some(Fault::NotHttp)),
        (
            "truncated body",
            proxy.endpoint(),
            Some(Fault::TruncateBody),
        ),
    ];
    let (pooled, unpooled) = (pooled(), unpooled());
    for (case, endpoint, fault) in cases {
        let config = ConfigInput {
            addressing_style: AddressingStyle::Path,
            ..config_with_timeouts(endpoint, "errors", 2_000, 2_000, 2_000)
        };
        let mut seen = Vec::new();
        for runtime in [&pooled, &unpooled] {
            let mut store = runtime.open(&config).unwrap();
            if fault.is_some() {
                // A value to read, so that body faults have a body to damage.
                store
                    .set("k", b"a value long enough to be cut in half")
                    .unwrap();
            }
            if let Some(fault) = &fault {
                proxy.push(fault.clone());
            }
            seen.push(store_error(store.get("k")).to_string());
        }
        report(&format!(
            "{case}: pool on: {} | pool off: {}",
            seen[0], seen[1]
        ));
        if fault == Some(Fault::Refuse) {
            // A race, with either sender: the reset lands during the connect (an I/O error
            // of the connect: `connection-refused`) or once hyper has the connection.
            for error in &seen {
                assert!(
                    error.contains("connection refused") || error.contains("HttpProtocolError"),
                    "{case}: {error}"
                );
            }
        } else {
            assert_eq!(seen[0], seen[1], "{case}");
        }
    }
}

#[test]
fn a_resolver_rule_reaches_a_server_under_a_name_dns_does_not_know() {
    let Some(upstream) = upstream("a_resolver_rule_reaches_a_server") else {
        return;
    };
    let name = "s3.invalid-for-tests.test";
    let config = ConfigInput {
        endpoint_url: Some(format!("http://{name}:{}", upstream.port())),
        addressing_style: AddressingStyle::Path,
        max_attempts: Some(1),
        ..server().config(&unique_prefix("resolve"))
    };
    // Without a rule the name does not resolve.
    let err = store_error(pooled().open(&config).unwrap().get("k"));
    assert!(
        matches!(&err, StoreError::Transport(m) if m.contains("cannot resolve")),
        "{err}"
    );
    for runtime in [
        runtime_with(|r| r.with_resolve("invalid-for-tests.test", upstream.ip())),
        runtime_with(|r| r.with_resolve(name, upstream.ip())),
        runtime_with(|r| {
            r.with_connection_pool(false)
                .with_resolve("*.invalid-for-tests.test", upstream.ip())
        }),
    ] {
        let mut store = runtime.open(&config).unwrap();
        store.set("k", b"through a resolver rule").unwrap();
        assert_eq!(
            store.get("k").unwrap().as_deref(),
            Some(&b"through a resolver rule"[..])
        );
    }
}

#[test]
fn a_resolver_rule_serves_virtual_hosted_style_requests() {
    let domain = "s3.vhost.test";
    let bucket = "s3rs-vh";
    let local = LocalS3::start(LocalS3Options {
        virtual_host_domain: Some(domain.into()),
        ..LocalS3Options::default()
    })
    .unwrap();
    local.create_bucket(bucket).unwrap();
    let port = local.local_addr().port();
    // Only the bucket's own host name has a rule: a path-style request to the endpoint's
    // host would fail to resolve, so success means virtual-hosted style was used.
    let runtime = runtime_with(|r| r.with_resolve(&format!("{bucket}.{domain}"), LOCALHOST));
    let base_path = "vhost-test/";
    let config = ConfigInput {
        endpoint_url: Some(format!("http://{domain}:{port}")),
        region: Some(local.region().to_owned()),
        access_key_id: Some(local.access_key().to_owned()),
        secret_access_key: Some(local.secret_key().to_owned()),
        bucket_name: Some(bucket.to_owned()),
        base_path: Some(base_path.to_owned()),
        addressing_style: AddressingStyle::VirtualHosted,
        max_attempts: Some(1),
        ..ConfigInput::default()
    };
    let mut store = runtime.open(&config).unwrap();
    store.set("celery-task-meta-vh", b"virtual-hosted").unwrap();
    assert_eq!(
        store.get("celery-task-meta-vh").unwrap().as_deref(),
        Some(&b"virtual-hosted"[..])
    );
    // The object is in that server's bucket, under the key the store made.
    let file = local
        .data_dir()
        .join(bucket)
        .join(base_path)
        .join("celery-task-meta-vh");
    assert_eq!(std::fs::read(&file).unwrap(), b"virtual-hosted");

    // Path style against the same endpoint name has no rule to resolve it.
    let path_style = ConfigInput {
        addressing_style: AddressingStyle::Path,
        ..config
    };
    let err = store_error(
        runtime
            .open(&path_style)
            .unwrap()
            .get("celery-task-meta-vh"),
    );
    assert!(
        matches!(&err, StoreError::Transport(m) if m.contains("cannot resolve")),
        "{err}"
    );
}
