//! Faults between the component and a real S3 server, injected by a real proxy: every
//! operation ends in the right value or a typed error within its time bound, nothing that was
//! acknowledged is lost, and no corrupted or truncated body is ever returned as a value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use s3_result_store_host::{
    ConfigInput, Error, ResultStore, Runtime, StoreError, default_component_path,
};
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy};
use s3_result_store_tests::{report, runtime, server, unique_prefix};

/// Short timeouts so that `Delay` faults turn into timeouts quickly.
const FIRST_BYTE_TIMEOUT_MS: u32 = 400;
const OPERATION_TIMEOUT_MS: u32 = 8_000;

fn upstream() -> SocketAddr {
    let endpoint = &server().endpoint;
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("fault tests need an http://IP:PORT endpoint, not {endpoint}"))
}

fn config_through(proxy: &FaultProxy, test: &str) -> ConfigInput {
    ConfigInput {
        endpoint_url: Some(proxy.endpoint()),
        first_byte_timeout_ms: Some(FIRST_BYTE_TIMEOUT_MS),
        between_bytes_timeout_ms: Some(FIRST_BYTE_TIMEOUT_MS),
        connect_timeout_ms: Some(1_000),
        operation_timeout_ms: Some(OPERATION_TIMEOUT_MS),
        ..server().config(&unique_prefix(test))
    }
}

/// Every kind of fault, with delays long enough to exceed the timeouts above.
fn all_faults() -> Vec<Fault> {
    vec![
        Fault::Refuse,
        Fault::ResetMidRequest,
        Fault::ResetMidResponse,
        Fault::SlowDown,
        Fault::InternalError,
        Fault::Delay(Duration::from_millis(1_500)),
        Fault::TruncateBody,
        Fault::CorruptBody,
        Fault::HtmlError,
        Fault::OversizedError,
        Fault::NotHttp,
    ]
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    Set,
    Delete,
}

fn run(store: &mut ResultStore, op: Op, key: &str, value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    match op {
        Op::Get => store.get(key),
        Op::Set => store.set(key, value).map(|()| None),
        Op::Delete => store.delete(key).map(|()| None),
    }
}

#[test]
fn one_fault_is_absorbed_by_a_retry() {
    let proxy = FaultProxy::start(upstream());
    let mut store = runtime()
        .open(&config_through(&proxy, "one-fault"))
        .unwrap();
    let value = b"value that must survive".to_vec();
    store.set("k", &value).unwrap();
    for fault in all_faults() {
        for op in [Op::Get, Op::Set, Op::Delete, Op::Set] {
            proxy.push(fault.clone());
            let result = run(&mut store, op, "k", &value);
            let result = result.unwrap_or_else(|e| panic!("{op:?} under {fault:?}: {e}"));
            if let Op::Get = op {
                assert_eq!(
                    result.as_deref(),
                    Some(&value[..]),
                    "{op:?} under {fault:?}"
                );
            }
        }
    }
    let stats = proxy.stats();
    assert_eq!(stats.faults, 4 * all_faults().len() as u64, "{stats:?}");
}

#[test]
fn persistent_faults_end_in_a_typed_error_within_the_bound() {
    let proxy = FaultProxy::start(upstream());
    let mut config = config_through(&proxy, "persistent");
    config.max_attempts = Some(3);
    let mut store = runtime().open(&config).unwrap();
    store.set("k", b"stored").unwrap();
    for fault in all_faults() {
        for op in [Op::Get, Op::Set, Op::Delete] {
            // Faults that only touch a response body leave body-less answers (PUT, DELETE)
            // complete: the client rightly takes them as success.
            let body_only = matches!(
                fault,
                Fault::TruncateBody | Fault::CorruptBody | Fault::ResetMidResponse
            );
            if body_only && !matches!(op, Op::Get) {
                continue;
            }
            store.set("k", b"stored").unwrap();
            proxy.push_n(fault.clone(), 3);
            let started = Instant::now();
            let result = run(&mut store, op, "k", b"new value");
            let elapsed = started.elapsed();
            proxy.clear();
            let err = match result {
                Err(Error::Store(e)) => e,
                other => panic!("{op:?} under {fault:?}: expected a store error, got {other:?}"),
            };
            let text = err.to_string();
            match &err {
                StoreError::Transport(_) | StoreError::Timeout(_) | StoreError::S3(_) => {}
                other => panic!("{op:?} under {fault:?}: unexpected {other:?}"),
            }
            assert!(
                text.contains("gave up after 3 attempts"),
                "{op:?} under {fault:?}: {text}"
            );
            assert!(!text.contains(&server().secret_access_key), "{text}");
            // Generous: the bound is the configured operation timeout, far below wasmtime's
            // 600 s default that a missing timeout would hit.
            let bound =
                Duration::from_millis(u64::from(OPERATION_TIMEOUT_MS)) + Duration::from_secs(5);
            assert!(elapsed < bound, "{op:?} under {fault:?} took {elapsed:?}");
        }
    }
}

#[test]
fn a_stalled_server_times_out_instead_of_hanging() {
    let proxy = FaultProxy::start(upstream());
    let mut config = config_through(&proxy, "stalled");
    config.max_attempts = Some(2);
    let mut store = runtime().open(&config).unwrap();
    proxy.push_n(Fault::Delay(Duration::from_secs(30)), 2);
    let started = Instant::now();
    let err = store.get("k").unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::Timeout(m)) if m.contains("gave up after 2 attempts")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// A runtime whose host ignores the timeouts the component sets on its requests, as some
/// hosts do (jco's browser shim ignores the between-bytes one): only the component's own
/// deadlines stand between a stalled server and a hang.
fn ignoring_timeouts() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::load(default_component_path())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_request_timeouts(false)
    })
}

/// Runs `op` and returns its timeout's message, checking it came within `bound`.
fn timeout_within(bound: Duration, op: impl FnOnce() -> Result<Option<Vec<u8>>, Error>) -> String {
    let started = Instant::now();
    let result = op();
    let elapsed = started.elapsed();
    let message = match result {
        Err(Error::Store(StoreError::Timeout(message))) => message,
        other => panic!("expected a timeout, got {other:?}"),
    };
    assert!(
        elapsed < bound,
        "took {elapsed:?} (bound {bound:?}): {message}"
    );
    report(&format!("timeout after {elapsed:.2?}: {message}"));
    message
}

#[test]
fn a_body_that_stalls_part_way_times_out_whether_or_not_the_host_applies_timeouts() {
    let proxy = FaultProxy::start(upstream());
    let value: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut config = config_through(&proxy, "stalled-body");
    config.max_attempts = Some(2);
    runtime().open(&config).unwrap().set("k", &value).unwrap();
    for host in [runtime(), ignoring_timeouts()] {
        let mut store = host.open(&config).unwrap();
        let stall = Fault::StallBody {
            after: 1_000,
            stall: Duration::from_secs(30),
        };
        proxy.push_n(stall, 2);
        let message = timeout_within(Duration::from_secs(5), || store.get("k"));
        assert!(
            message.starts_with("reading the response body (")
                && message.contains("no bytes for between-bytes-timeout-ms (400)")
                && message.ends_with("(gave up after 2 attempts)"),
            "{message}"
        );
        // The value is intact once the server answers again.
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&value[..]));
    }
}

#[test]
fn a_silent_server_times_out_on_the_components_own_clock() {
    let proxy = FaultProxy::start(upstream());
    let mut config = config_through(&proxy, "silent");
    config.max_attempts = Some(2);
    let mut store = ignoring_timeouts().open(&config).unwrap();
    proxy.push_n(Fault::Delay(Duration::from_secs(30)), 2);
    let message = timeout_within(Duration::from_secs(8), || store.get("k"));
    assert!(
        message.starts_with(
            "waiting for the response headers: none within connect-timeout-ms + \
             first-byte-timeout-ms (1000 + 400)"
        ),
        "{message}"
    );
}

#[test]
fn the_operation_timeout_ends_a_request_that_is_still_making_progress() {
    let proxy = FaultProxy::start(upstream());
    let value = vec![7u8; 10_000];
    let mut config = config_through(&proxy, "operation-deadline");
    // Each phase would wait 20 s; the operation allows 1.5 s, retries included.
    config.first_byte_timeout_ms = Some(20_000);
    config.between_bytes_timeout_ms = Some(20_000);
    config.operation_timeout_ms = Some(1_500);
    config.max_attempts = Some(5);
    runtime().open(&config).unwrap().set("k", &value).unwrap();
    for host in [runtime(), ignoring_timeouts()] {
        let mut store = host.open(&config).unwrap();
        proxy.push(Fault::StallBody {
            after: 100,
            stall: Duration::from_secs(30),
        });
        let message = timeout_within(Duration::from_secs(5), || store.get("k"));
        assert!(
            message.starts_with(
                "the operation took longer than operation-timeout-ms (1500) while reading the \
                 response body ("
            ) && message.contains("operation timeout reached"),
            "{message}"
        );
        proxy.push(Fault::Delay(Duration::from_secs(30)));
        let message = timeout_within(Duration::from_secs(5), || store.get("k"));
        assert!(
            message.starts_with(
                "the operation took longer than operation-timeout-ms (1500) while waiting for \
                 the response headers"
            ),
            "{message}"
        );
    }
}

#[test]
fn a_batch_ends_in_time_on_a_host_that_ignores_timeouts() {
    let proxy = FaultProxy::start(upstream());
    let mut config = config_through(&proxy, "batch-deadlines");
    config.max_attempts = Some(2);
    let keys = ["a", "b", "c", "d"];
    let value = vec![3u8; 20_000];
    runtime()
        .open(&config)
        .unwrap()
        .set_many(&keys.map(|k| (k, value.clone())))
        .unwrap()
        .into_iter()
        .for_each(|r| r.unwrap());
    let mut store = ignoring_timeouts().open(&config).unwrap();
    // One of the four stalls mid-body (whichever arrives first): its retry brings the value.
    proxy.push(Fault::StallBody {
        after: 1_000,
        stall: Duration::from_secs(30),
    });
    let started = Instant::now();
    let values = store.get_many(&keys).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for (key, result) in keys.iter().zip(values) {
        assert_eq!(result.unwrap().as_deref(), Some(&value[..]), "{key}");
    }
    // Every one silent, retries too: each ends in its own timeout, none hangs.
    proxy.push_n(Fault::Delay(Duration::from_secs(30)), 8);
    let started = Instant::now();
    let values = store.get_many(&keys).unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    for (key, result) in keys.iter().zip(values) {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Store(StoreError::Timeout(m)) if m.starts_with("waiting for the response headers")),
            "{key}: {err}"
        );
    }
    report(&format!(
        "4 silent gets in one batch, 2 attempts each: {elapsed:.2?}"
    ));
}

#[test]
fn a_connection_refused_endpoint_fails_fast_with_a_typed_error() {
    let mut config = server().config(&unique_prefix("refused"));
    config.endpoint_url = Some("http://127.0.0.1:1".into());
    let mut store = runtime().open(&config).unwrap();
    let err = store.get("k").unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::Transport(m)) if m.contains("refused") && m.contains("3 attempts")),
        "{err}"
    );
}

#[test]
fn a_corrupted_or_truncated_body_is_never_returned_as_a_value() {
    let proxy = FaultProxy::start(upstream());
    let mut store = runtime()
        .open(&config_through(&proxy, "integrity"))
        .unwrap();
    let value: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    store.set("k", &value).unwrap();
    for fault in [Fault::CorruptBody, Fault::TruncateBody] {
        for _ in 0..20 {
            proxy.push(fault.clone());
            assert_eq!(
                store.get("k").unwrap().as_deref(),
                Some(&value[..]),
                "{fault:?}"
            );
        }
    }
    assert_eq!(proxy.stats().faults, 40);
}

#[test]
fn a_value_damaged_on_the_way_to_the_server_is_refused_and_sent_again() {
    let s = server();
    if !s.verifies_signatures {
        // Over plain HTTP the body's signed SHA-256 is what protects it (src/integrity.rs).
        s.unsupported(
            "a_value_damaged_on_the_way_to_the_server_is_refused_and_sent_again",
            "the server checks no signature, so not the payload hash either",
        );
        return;
    }
    let proxy = FaultProxy::start(upstream());
    let config = config_through(&proxy, "request-integrity");
    let mut store = runtime().open(&config).unwrap();
    let value: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    for i in 0..5 {
        proxy.push(Fault::CorruptRequestBody);
        store.set(format!("k{i}"), &value).unwrap();
    }
    let stats = proxy.stats();
    assert_eq!(stats.count("CorruptRequestBody"), 5, "{stats:?}");
    // Each damaged send was refused and sent once more.
    assert_eq!(stats.requests, 10, "{stats:?}");
    let mut direct = runtime()
        .open(&ConfigInput {
            endpoint_url: Some(s.endpoint.clone()),
            ..config
        })
        .unwrap();
    for i in 0..5 {
        assert_eq!(
            direct.get(format!("k{i}")).unwrap().as_deref(),
            Some(&value[..])
        );
    }
}

#[test]
fn values_over_the_limit_are_refused_both_ways() {
    let s = server();
    let prefix = unique_prefix("limit");
    let mut big = runtime().open(&s.config(&prefix)).unwrap();
    big.set("k", vec![7u8; 2_000]).unwrap();
    let mut small = runtime()
        .open(&ConfigInput {
            max_value_bytes: Some(1_000),
            ..s.config(&prefix)
        })
        .unwrap();
    let err = small.set("other", vec![0u8; 1_001]).unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::ValueTooLarge(m)) if m.contains("1001 bytes")),
        "{err}"
    );
    assert_eq!(big.get("other").unwrap(), None, "nothing was sent");
    let err = small.get("k").unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::ValueTooLarge(_))),
        "{err}"
    );
}

#[test]
fn a_skewed_client_clock_is_corrected_from_the_server_date() {
    let s = server();
    let skewed =
        s3_result_store_host::Runtime::load(s3_result_store_host::default_component_path())
            .unwrap()
            .with_clock_offset_secs(-3_600);
    // Through a proxy that injects nothing, to count the requests really sent.
    let proxy = FaultProxy::start(upstream());
    let mut config = config_through(&proxy, "skew");
    config.max_attempts = Some(1);
    let mut store = skewed.open(&config).unwrap();
    match store.set("k", b"written with a clock an hour slow") {
        Ok(()) => {}
        Err(Error::Store(StoreError::AccessDenied(info)))
            if info.code != "RequestTimeTooSkewed" =>
        {
            return s.unsupported(
                "a_skewed_client_clock_is_corrected_from_the_server_date",
                &format!(
                    "it refuses a skewed request as {} rather than RequestTimeTooSkewed",
                    info.code
                ),
            );
        }
        Err(e) => panic!("{e}"),
    }
    if proxy.stats().requests == 1 {
        return s.unsupported(
            "a_skewed_client_clock_is_corrected_from_the_server_date",
            "it accepts requests signed an hour off",
        );
    }
    assert_eq!(proxy.stats().requests, 2, "one refused, one corrected");
    // Later operations reuse the learned offset: one request each.
    assert_eq!(
        store.get("k").unwrap().as_deref(),
        Some(&b"written with a clock an hour slow"[..])
    );
    assert_eq!(proxy.stats().requests, 3);
}

/// The soak: thousands of mixed operations through a proxy that injects faults at random on
/// a seeded, reproducible schedule. A model tracks, per key, every value the key may hold
/// (an operation that failed may or may not have taken effect); every successful read must
/// be one of them, and after an acknowledged write, exactly that write.
#[test]
fn nothing_acknowledged_is_lost_under_random_faults() {
    let seed: u64 = std::env::var("S3RS_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2026);
    let operations: usize = std::env::var("S3RS_FAULT_OPERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let proxy = FaultProxy::start(upstream());
    proxy.set_random(seed, 150, all_faults());
    let config = config_through(&proxy, "soak");
    let mut store = runtime().open(&config).unwrap();
    let keys: Vec<String> = (0..40)
        .map(|i| format!("celery-task-meta-{i:04}"))
        .collect();
    let mut possible: BTreeMap<&str, BTreeSet<Option<Vec<u8>>>> = keys
        .iter()
        .map(|k| (k.as_str(), BTreeSet::from([None])))
        .collect();
    let mut rng = seed;
    let mut next = || {
        // xorshift64*: the operation mix is reproducible from the same seed.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut acknowledged = 0;
    for i in 0..operations {
        let key = keys[(next() % keys.len() as u64) as usize].as_str();
        let value = format!("{i}:{}", "x".repeat((next() % 3000) as usize)).into_bytes();
        let op = match next() % 10 {
            0..=3 => Op::Get,
            4..=8 => Op::Set,
            _ => Op::Delete,
        };
        let entry = possible.get_mut(key).unwrap();
        match (op, run(&mut store, op, key, &value)) {
            (Op::Get, Ok(read)) => {
                assert!(
                    entry.contains(&read),
                    "op {i}: read {:?} of {key}, not a possible value",
                    read.map(|v| v.len())
                );
                *entry = BTreeSet::from([read]);
            }
            (Op::Set, Ok(_)) => *entry = BTreeSet::from([Some(value)]),
            (Op::Delete, Ok(_)) => *entry = BTreeSet::from([None]),
            (_, Err(e)) => {
                match &e {
                    Error::Store(
                        StoreError::Transport(_) | StoreError::Timeout(_) | StoreError::S3(_),
                    ) => {}
                    other => panic!("op {i}: {op:?} {key}: unexpected error {other}"),
                }
                let kind = match &e {
                    Error::Store(StoreError::Transport(_)) => "transport",
                    Error::Store(StoreError::Timeout(_)) => "timeout",
                    _ => "s3",
                };
                *errors.entry(kind.to_owned()).or_default() += 1;
                match op {
                    Op::Get => {}
                    Op::Set => {
                        entry.insert(Some(value));
                    }
                    Op::Delete => {
                        entry.insert(None);
                    }
                }
                continue;
            }
        }
        acknowledged += 1;
    }
    // Read everything back without faults: each key holds one of its possible values, and a
    // key whose last word was an acknowledged write holds exactly that.
    let stats = proxy.stats();
    proxy.clear();
    let mut verified = 0;
    let mut exact = 0;
    let mut direct = runtime()
        .open(&ConfigInput {
            endpoint_url: Some(server().endpoint.clone()),
            ..config.clone()
        })
        .unwrap();
    for key in &keys {
        let read = direct.get(key.as_str()).unwrap();
        let entry = &possible[key.as_str()];
        assert!(
            entry.contains(&read),
            "{key}: final value not a possible one"
        );
        verified += 1;
        if entry.len() == 1 {
            exact += 1;
        }
    }
    report(&format!(
        "fault soak against {} (seed {seed:#x}): {operations} operations, {acknowledged} acknowledged, \
         errors after retries {errors:?}; {} requests, {} faults injected {:?}; \
         {verified} objects verified ({exact} exactly), 0 lost",
        server().name,
        stats.requests,
        stats.faults,
        stats.by_kind
    ));
    assert!(
        stats.faults > 100,
        "too few faults injected to mean anything: {stats:?}"
    );
}
