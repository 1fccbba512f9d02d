//! HTTPS end to end: the component's requests go over TLS through the host's pooled sender to
//! a TLS front (support/tls_relay.rs) of the embedded S3 server, with a test CA the runtime is
//! told to trust. One TCP connect and one handshake serve a sequence of operations; an
//! untrusted certificate, or one for another name, is a clear transport error and nothing
//! reaches the server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use s3_result_store_host::{
    ConfigInput, Error, ResultStore, Runtime, StoreError, default_component_path,
};
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy};
use s3_result_store_tests::tls_relay::{TestCa, TlsRelay};
// The host's TLS is under test, not the S3 server: always the embedded one behind the relay.
use s3_result_store_tests::{embedded_server as server, report, unique_prefix};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A name only the runtime's resolver rule knows.
const HOST: &str = "s3.https.test";

fn upstream() -> SocketAddr {
    server()
        .endpoint
        .strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .expect("the embedded server listens on http://IP:PORT")
}

fn runtime(pool: bool, ca: Option<&TestCa>) -> Runtime {
    let runtime = Runtime::load(default_component_path())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_connection_pool(pool)
        .with_resolve(HOST, LOCALHOST);
    match ca {
        Some(ca) => runtime
            .with_root_certificates_pem(ca.pem().as_bytes())
            .unwrap(),
        None => runtime,
    }
}

fn config(endpoint: String, test: &str) -> ConfigInput {
    ConfigInput {
        endpoint_url: Some(endpoint),
        ..server().config(&unique_prefix(test))
    }
}

fn store_error(result: Result<impl std::fmt::Debug, Error>) -> StoreError {
    match result {
        Err(Error::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    }
}

/// `act` on a store of `runtime` through `relay` must fail on the relay's certificate. One
/// attempt, so the error is the handshake's own.
fn assert_certificate_refused<T: std::fmt::Debug>(
    runtime: &Runtime,
    relay: &TlsRelay,
    test: &str,
    act: impl FnOnce(&mut ResultStore) -> Result<T, Error>,
) {
    let config = ConfigInput {
        max_attempts: Some(1),
        ..config(format!("https://{HOST}:{}", relay.port()), test)
    };
    let mut store = runtime.open(&config).unwrap();
    let err = store_error(act(&mut store));
    assert!(
        matches!(&err, StoreError::Transport(m) if m.contains("TLS certificate")),
        "{err}"
    );
}

/// `ops` operations, alternately set and get, each value read back exactly.
fn exercise(runtime: &Runtime, config: &ConfigInput, ops: usize) {
    let mut store = runtime.open(config).unwrap();
    for i in 0..ops / 2 {
        let key = format!("k{i}");
        let value = format!("{{\"status\": \"SUCCESS\", \"result\": {i}}}").repeat(i + 1);
        store.set(&key, &value).unwrap();
        assert_eq!(
            store.get(&key).unwrap().as_deref(),
            Some(value.as_bytes()),
            "{key}"
        );
    }
    store.delete("k0").unwrap();
    assert_eq!(store.get("k0").unwrap(), None);
}

#[test]
fn a_sequence_of_https_operations_pays_one_connect_and_one_handshake() {
    let ca = TestCa::new("s3-result-store test CA");
    let relay = TlsRelay::start(upstream(), &ca, &[HOST]);
    let runtime = runtime(true, Some(&ca));
    let config = config(format!("https://{HOST}:{}", relay.port()), "https-pool");
    exercise(&runtime, &config, 40);
    let requests = runtime.requests_sent().unwrap();
    report(&format!(
        "https, pool on: {requests} requests over {} TCP connection(s), {} TLS handshake(s)",
        relay.connections(),
        relay.handshakes()
    ));
    assert_eq!(requests, 42);
    assert!(relay.handshakes() <= 2, "{} handshakes", relay.handshakes());
    assert_eq!(relay.connections(), relay.handshakes());

    // Another store of the runtime draws from the same pool.
    exercise(&runtime, &config, 10);
    assert!(relay.handshakes() <= 2, "{} handshakes", relay.handshakes());
}

#[test]
fn an_ip_address_endpoint_is_verified_against_the_certificates_ip() {
    let ca = TestCa::new("s3-result-store test CA");
    let relay = TlsRelay::start(upstream(), &ca, &["127.0.0.1"]);
    let runtime = runtime(true, Some(&ca));
    exercise(
        &runtime,
        &config(format!("https://127.0.0.1:{}", relay.port()), "https-ip"),
        6,
    );
    assert_eq!(relay.handshakes(), 1);
}

/// Over TLS a value goes as `UNSIGNED-PAYLOAD` with its signed Content-MD5 (src/sign.rs): the
/// server, which verifies both the signature and the MD5, takes it, byte for byte.
#[test]
fn large_values_round_trip_over_https() {
    let ca = TestCa::new("s3-result-store test CA");
    let relay = TlsRelay::start(upstream(), &ca, &[HOST]);
    let runtime = runtime(true, Some(&ca));
    let config = config(format!("https://{HOST}:{}", relay.port()), "https-large");
    let mut store = runtime.open(&config).unwrap();
    let value: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    store.set("big", &value).unwrap();
    assert!(store.get("big").unwrap().as_deref() == Some(&value[..]));
    for result in store
        .set_many(&[("a", b"1".as_slice()), ("b", b"22")])
        .unwrap()
    {
        result.unwrap();
    }
    assert_eq!(store.get("b").unwrap().as_deref(), Some(&b"22"[..]));
}

/// Over TLS a `set`'s body goes unsigned, protected by a digest the server checks: a signed
/// Content-MD5 as well as its CRC32C until the server has shown it takes the CRC, the CRC
/// alone after, and the MD5 alone for a server that does not (the proxy behind the TLS front
/// hiding checksums from its answers, as such a server answers).
#[test]
fn https_sets_carry_the_crc_alone_once_the_server_has_shown_it_takes_it() {
    let ca = TestCa::new("s3-result-store test CA");
    let proxy = FaultProxy::start(upstream());
    let relay = TlsRelay::start(proxy.addr(), &ca, &[HOST]);
    let runtime = runtime(false, Some(&ca));
    let endpoint = format!("https://{HOST}:{}", relay.port());
    let value = b"hello";
    let crc = "mnG7TA==";
    let md5 = "XUFAKrxLKna5cZ2REBfFkg==";

    let mut store = runtime
        .open(&config(endpoint.clone(), "https-crc"))
        .unwrap();
    store.set("k", value).unwrap();
    store.set("k", value).unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&value[..]));
    proxy.push_n(Fault::HideChecksums { corrupt: false }, 2);
    let mut hidden = runtime.open(&config(endpoint, "https-no-crc")).unwrap();
    hidden.set("k", value).unwrap();
    hidden.set("k", value).unwrap();

    let seen = proxy.stats().seen;
    let puts: Vec<_> = seen.iter().filter(|s| s.method == "PUT").collect();
    let headers = |i: usize| {
        let put = puts[i];
        (
            put.header("x-amz-checksum-crc32c"),
            put.header("content-md5"),
            put.header("x-amz-content-sha256"),
        )
    };
    let unsigned = Some("UNSIGNED-PAYLOAD");
    assert_eq!(headers(0), (Some(crc), Some(md5), unsigned));
    assert_eq!(headers(1), (Some(crc), None, unsigned));
    assert_eq!(headers(2), (Some(crc), Some(md5), unsigned));
    assert_eq!(headers(3), (None, Some(md5), unsigned));
}

#[test]
fn without_the_pool_every_https_request_has_its_own_handshake() {
    let ca = TestCa::new("s3-result-store test CA");
    let relay = TlsRelay::start(upstream(), &ca, &[HOST]);
    let runtime = runtime(false, Some(&ca));
    let config = config(format!("https://{HOST}:{}", relay.port()), "https-no-pool");
    exercise(&runtime, &config, 10);
    let requests = runtime.requests_sent().unwrap();
    report(&format!(
        "https, pool off: {requests} requests, {} TLS handshakes",
        relay.handshakes()
    ));
    assert_eq!(requests, 12);
    assert_eq!(relay.handshakes() as u64, requests);
}

#[test]
fn an_untrusted_certificate_is_a_transport_error_and_nothing_is_sent() {
    let ca = TestCa::new("s3-result-store test CA");
    let relay = TlsRelay::start(upstream(), &ca, &[HOST]);
    // Another CA than the one that signed the relay's certificate, and none at all.
    let other = TestCa::new("another CA");
    for runtime in [runtime(true, Some(&other)), runtime(true, None)] {
        assert_certificate_refused(&runtime, &relay, "https-untrusted", |s| s.set("k", "v"));
    }
    assert_eq!(relay.handshakes(), 0);
    assert!(relay.connections() >= 2);
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let ca = TestCa::new("s3-result-store test CA");
    let relay = TlsRelay::start(upstream(), &ca, &["other.https.test"]);
    let runtime = runtime(true, Some(&ca));
    assert_certificate_refused(&runtime, &relay, "https-name", |s| s.get("k"));
    assert_eq!(relay.handshakes(), 0);
}

#[test]
fn root_certificates_must_be_pem_certificates() {
    let ca = TestCa::new("s3-result-store test CA");
    let load = || Runtime::load(default_component_path()).unwrap_or_else(|e| panic!("{e}"));
    let key_only = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    for pem in ["", "not a PEM file", key_only, not_der] {
        let err = load()
            .with_root_certificates_pem(pem.as_bytes())
            .map(drop)
            .unwrap_err();
        assert!(
            err.to_string().contains("invalid root certificates"),
            "{pem:?}: {err}"
        );
    }
    // A bundle of several is fine, the test CA among other text.
    let bundle = format!("# bundle\n{}{}", TestCa::new("one").pem(), ca.pem());
    assert!(load().with_root_certificates_pem(bundle.as_bytes()).is_ok());
}
