//! S3's flexible checksums, server by server, over plain HTTP: what a `set` sends with its
//! value (seen by a pass-through proxy), what the server keeps of it (seen by boto3), what a
//! `get` checks a body by; and a server that does not know them (the proxy hiding them from
//! its answers), for which the store falls back to MD5. HTTPS is in tests/https.rs.

use std::net::SocketAddr;

use s3_result_store_host::{ConfigInput, Error, StoreError};
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy, Seen};
use s3_result_store_tests::{report, runtime, server, unique_prefix};

/// CRC32C of the test value, as `x-amz-checksum-crc32c` carries it.
const VALUE: &[u8] = b"hello";
const VALUE_CRC32C: &str = "mnG7TA==";

fn upstream() -> SocketAddr {
    let endpoint = &server().endpoint;
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("these tests need an http://IP:PORT endpoint, not {endpoint}"))
}

fn through(proxy: &FaultProxy, base_path: &str) -> ConfigInput {
    ConfigInput {
        endpoint_url: Some(proxy.endpoint()),
        max_attempts: Some(1),
        ..server().config(base_path)
    }
}

fn puts(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter().filter(|s| s.method == "PUT").collect()
}

/// Whether the server keeps the CRC32C a `set` sent, as boto3 reads it back.
fn keeps_crc32c(key: &str) -> bool {
    let kept = server().object_checksums(key);
    report(&format!("{}: kept of a set: {kept:?}", server().name));
    match kept.get("ChecksumCRC32C") {
        Some(value) => {
            assert_eq!(value, VALUE_CRC32C, "the server kept another CRC32C");
            true
        }
        None => false,
    }
}

#[test]
fn a_set_sends_its_crc32c_under_the_signed_sha256_and_goes_on_where_the_server_keeps_it() {
    let proxy = FaultProxy::start(upstream());
    let base = unique_prefix("crc-sent");
    let mut store = runtime().open(&through(&proxy, &base)).unwrap();
    store.set("k", VALUE).unwrap();
    let kept = keeps_crc32c(&format!("{base}k"));
    store.set("k", VALUE).unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some(VALUE));
    let seen = proxy.stats().seen;
    let puts = puts(&seen);
    assert_eq!(puts.len(), 2);
    for put in &puts {
        // Over plain HTTP the signature covers the body: no MD5, never UNSIGNED-PAYLOAD.
        assert_eq!(put.header("content-md5"), None);
        assert_eq!(
            put.header("x-amz-content-sha256"),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
    }
    assert_eq!(puts[0].header("x-amz-checksum-crc32c"), Some(VALUE_CRC32C));
    assert_eq!(
        puts[0].header("x-amz-sdk-checksum-algorithm"),
        Some("CRC32C")
    );
    let get = seen.iter().find(|s| s.method == "GET").unwrap();
    assert_eq!(get.header("x-amz-checksum-mode"), Some("ENABLED"));
    if kept {
        assert_eq!(puts[1].header("x-amz-checksum-crc32c"), Some(VALUE_CRC32C));
    } else {
        // Its answer did not carry the checksum back either: not sent again.
        assert_eq!(puts[1].header("x-amz-checksum-crc32c"), None);
        server().unsupported(
            "a_set_sends_its_crc32c_under_the_signed_sha256_and_goes_on_where_the_server_keeps_it",
            "the server neither keeps nor answers x-amz-checksum-crc32c (the store falls back to MD5)",
        );
    }
}

#[test]
fn a_corrupted_body_is_caught_by_the_stored_crc_where_the_server_keeps_one() {
    let proxy = FaultProxy::start(upstream());
    let base = unique_prefix("crc-caught");
    let mut store = runtime().open(&through(&proxy, &base)).unwrap();
    store.set("k", VALUE).unwrap();
    proxy.push(Fault::CorruptBody);
    let err = store.get("k").unwrap_err();
    let Error::Store(StoreError::Transport(message)) = &err else {
        panic!("{err}")
    };
    let expected = if keeps_crc32c(&format!("{base}k")) {
        "does not match its stored CRC32C checksum"
    } else {
        "does not match its ETag (MD5)"
    };
    assert!(message.contains(expected), "{message}");
    assert_eq!(store.get("k").unwrap().as_deref(), Some(VALUE));
}

#[test]
fn without_flexible_checksums_the_store_stops_sending_them_and_checks_the_md5() {
    let proxy = FaultProxy::start(upstream());
    let mut store = runtime()
        .open(&through(&proxy, &unique_prefix("crc-hidden")))
        .unwrap();
    let hidden = Fault::HideChecksums { corrupt: false };
    proxy.push_n(hidden.clone(), 3);
    store.set("k", VALUE).unwrap();
    // The first answer did not carry the checksum back: the server is taken not to know it.
    store.set("k", VALUE).unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some(VALUE));
    let seen = proxy.stats().seen;
    let puts = puts(&seen);
    assert_eq!(puts[0].header("x-amz-checksum-crc32c"), Some(VALUE_CRC32C));
    assert_eq!(puts[1].header("x-amz-checksum-crc32c"), None);
    // With no checksum in the answer, a damaged body is caught by its ETag.
    proxy.push(Fault::HideChecksums { corrupt: true });
    let err = store.get("k").unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::Transport(m)) if m.contains("ETag (MD5)")),
        "{err}"
    );
}
