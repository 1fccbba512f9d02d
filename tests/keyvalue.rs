//! `wasi:keyvalue` at both drafts, through the component's exports, against the test server:
//! every function of store, batch and atomics, and the errors each can give.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use s3_result_store_host::{
    Cursor, Error, KeyValueBucket, KvError, KvVersion, Runtime, Swap, default_component_path,
};
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy};
use s3_result_store_tests::{TestServer, report, server, unique_prefix};

const VERSIONS: [KvVersion; 2] = [KvVersion::Draft, KvVersion::Draft2];

/// The component with the server's endpoint and credentials in its environment, as an
/// application deployed with them would have.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::load(default_component_path())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_env(server().aws_env())
    })
}

/// A bucket narrowed to a fresh folder of the test bucket; returns the folder too.
fn open(version: KvVersion, test: &str) -> (KeyValueBucket, String) {
    let folder = unique_prefix(&format!("{test}-{version:?}"));
    let identifier = format!("{}/{folder}", server().bucket);
    (
        runtime().open_keyvalue(version, &identifier).unwrap(),
        folder,
    )
}

fn kv_error(result: Result<impl std::fmt::Debug, Error>) -> KvError {
    match result {
        Err(Error::KeyValue(e)) => e,
        other => panic!("expected a wasi:keyvalue error, got {other:?}"),
    }
}

#[test]
fn get_set_delete_and_exists_round_trip() {
    for version in VERSIONS {
        let (mut b, folder) = open(version, "crud");
        assert_eq!(b.get("k").unwrap(), None);
        assert!(!b.exists("k").unwrap());
        b.set("k", b"v\x00\xff").unwrap();
        assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"v\x00\xff"[..]));
        assert!(b.exists("k").unwrap());
        b.set("k", b"").unwrap();
        assert_eq!(b.get("k").unwrap().as_deref(), Some(&b""[..]));
        assert!(b.exists("k").unwrap(), "an empty value still exists");
        // The object is the folder plus the key, as any S3 client sees it.
        assert_eq!(server().list_keys(&folder), vec![format!("{folder}k")]);
        b.delete("k").unwrap();
        b.delete("k").unwrap();
        assert_eq!(b.get("k").unwrap(), None);
        assert!(!b.exists("k").unwrap());
    }
}

#[test]
fn exists_does_not_read_a_large_value() {
    for version in VERSIONS {
        let (mut b, _) = open(version, "exists_large");
        b.set("big", &vec![7u8; 3 << 20]).unwrap();
        assert!(b.exists("big").unwrap());
    }
}

#[test]
fn list_keys_pages_through_every_key_once() {
    // More than one ListObjectsV2 page (1000 keys).
    let n = 1_050;
    for version in VERSIONS {
        let (mut b, folder) = open(version, "list");
        let mut expected: Vec<String> = (0..n).map(|i| format!("item/{i:05}")).collect();
        let entries: Vec<(String, Vec<u8>)> = expected
            .iter()
            .map(|k| (k.clone(), b"x".to_vec()))
            .collect();
        b.set_many(&entries).unwrap();
        expected.sort();

        let first = b.list_keys(None).unwrap();
        let next = first.cursor.clone().expect("a second page");
        match (version, &next) {
            (KvVersion::Draft, Cursor::Position(p)) => assert_eq!(*p, first.keys.len() as u64),
            (KvVersion::Draft2, Cursor::Token(t)) => assert!(!t.is_empty()),
            other => panic!("wrong cursor kind: {other:?}"),
        }
        let all = b.all_keys().unwrap();
        assert_eq!(all.len(), n);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "every key exactly once");

        // A draft cursor is a position: a new instance resumes from any of them.
        if version == KvVersion::Draft {
            let identifier = format!("{}/{folder}", server().bucket);
            let mut fresh = runtime().open_keyvalue(version, &identifier).unwrap();
            let tail = fresh.list_keys(Some(&Cursor::Position(1_020))).unwrap();
            assert_eq!(tail.keys, all[1_020..]);
            assert_eq!(tail.cursor, None);
        }
        b.delete_many(&expected).unwrap();
        assert!(b.list_keys(None).unwrap().keys.is_empty());
    }
}

#[test]
fn an_empty_folder_lists_nothing() {
    for version in VERSIONS {
        let (mut b, _) = open(version, "empty");
        let page = b.list_keys(None).unwrap();
        assert!(page.keys.is_empty());
        assert_eq!(page.cursor, None);
    }
}

#[test]
fn batches_read_write_and_delete_many_keys() {
    for version in VERSIONS {
        let (mut b, _) = open(version, "batch");
        let entries: Vec<(String, Vec<u8>)> = (0..70)
            .map(|i| (format!("k{i}"), format!("value {i}").into_bytes()))
            .collect();
        b.set_many(&entries).unwrap();
        let mut keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        keys.insert(3, "missing".into());
        let got = b.get_many(&keys).unwrap();
        assert_eq!(got.len(), keys.len());
        assert_eq!(got[3], None);
        for (key, value) in got.iter().flatten() {
            let i: usize = key[1..].parse().unwrap();
            assert_eq!(value, &entries[i].1);
        }
        assert_eq!(got.iter().flatten().count(), 70);
        b.delete_many(&keys).unwrap();
        assert!(b.get_many(&keys).unwrap().iter().all(Option::is_none));
        let err = kv_error(b.get_many(&["ok".into(), String::new()]));
        assert!(
            matches!(&err, KvError::Other(m) if m.contains("invalid key")),
            "{err}"
        );
    }
}

#[test]
fn unknown_stores_and_bad_environments_are_clear_errors() {
    for version in VERSIONS {
        for identifier in ["", "x", "has space/folder"] {
            let err = kv_error(runtime().open_keyvalue(version, identifier));
            assert_eq!(err, KvError::NoSuchStore, "{identifier:?}");
        }
        // A valid name, but no such bucket: found out on first use.
        let missing = format!("s3rs-missing-{}", std::process::id());
        let mut b = runtime().open_keyvalue(version, &missing).unwrap();
        assert_eq!(kv_error(b.get("k")), KvError::NoSuchStore);
        assert_eq!(kv_error(b.set("k", b"v")), KvError::NoSuchStore);

        let bare = Runtime::load(default_component_path()).unwrap();
        let err = kv_error(bare.open_keyvalue(version, &server().bucket));
        assert!(
            matches!(&err, KvError::Other(m) if m.contains("AWS_ACCESS_KEY_ID")),
            "{err}"
        );
    }
}

#[test]
fn wrong_credentials_are_access_denied() {
    let s = server();
    if !s.verifies_signatures {
        s.unsupported(
            "wrong_credentials_are_access_denied",
            "it accepts any signature",
        );
        return;
    }
    let mut env = s.aws_env();
    for (name, value) in &mut env {
        if name == "AWS_SECRET_ACCESS_KEY" {
            *value = "not-the-secret".into();
        }
    }
    let wrong = Runtime::load(default_component_path())
        .unwrap()
        .with_env(env);
    for version in VERSIONS {
        let mut b = wrong.open_keyvalue(version, &s.bucket).unwrap();
        assert_eq!(kv_error(b.get("k")), KvError::AccessDenied);
        assert_eq!(kv_error(b.set("k", b"v")), KvError::AccessDenied);
    }
}

/// On a server without conditional writes, atomics must refuse rather than risk lost updates.
fn atomics_supported(s: &TestServer, test: &str, b: &mut KeyValueBucket) -> bool {
    if s.conditional_writes {
        return true;
    }
    let err = kv_error(b.increment("counter", 1));
    assert!(
        matches!(&err, KvError::Other(m) if m.contains("conditional writes")),
        "{err}"
    );
    assert_eq!(b.get("counter").unwrap(), None, "nothing written");
    assert!(b.all_keys().unwrap().is_empty(), "the probe cleaned up");
    s.unsupported(
        test,
        "it ignores If-Match / If-None-Match; the component detected that and refused, as tested",
    );
    false
}

#[test]
fn increment_counts_from_zero_in_decimal() {
    for version in VERSIONS {
        let (mut b, _) = open(version, "increment");
        if !atomics_supported(server(), "increment_counts_from_zero_in_decimal", &mut b) {
            return;
        }
        assert_eq!(b.increment("n", 5).unwrap(), 5);
        assert_eq!(b.increment("n", 0).unwrap(), 5);
        assert_eq!(b.increment("n", 37).unwrap(), 42);
        assert_eq!(b.get("n").unwrap().as_deref(), Some(&b"42"[..]));
        b.set("text", b"forty-two").unwrap();
        let err = kv_error(b.increment("text", 1));
        assert!(
            matches!(&err, KvError::Other(m) if m.contains("not a decimal integer")),
            "{err}"
        );
        assert_eq!(b.get("text").unwrap().as_deref(), Some(&b"forty-two"[..]));
        // Only the keys written remain: the support probe removed its object.
        let mut keys = b.all_keys().unwrap();
        keys.sort();
        assert_eq!(keys, ["n", "text"]);
    }
}

#[test]
fn concurrent_increments_lose_nothing() {
    let (threads, each) = (4, 8);
    for version in VERSIONS {
        let (mut b, folder) = open(version, "concurrent_increment");
        if !atomics_supported(server(), "concurrent_increments_lose_nothing", &mut b) {
            return;
        }
        let identifier = format!("{}/{folder}", server().bucket);
        thread::scope(|scope| {
            for _ in 0..threads {
                let identifier = &identifier;
                scope.spawn(move || {
                    let mut mine = runtime().open_keyvalue(version, identifier).unwrap();
                    for _ in 0..each {
                        mine.increment("hits", 1).unwrap();
                    }
                });
            }
        });
        let total = b.increment("hits", 0).unwrap();
        assert_eq!(total, threads * each, "{version:?}");
        report(&format!(
            "keyvalue {version:?}: {threads} instances x {each} increments -> {total} on {}",
            server().name
        ));
    }
}

#[test]
fn a_draft_counter_only_goes_up_and_draft2_goes_down_too() {
    let (mut b, _) = open(KvVersion::Draft2, "signed");
    if !atomics_supported(
        server(),
        "a_draft_counter_only_goes_up_and_draft2_goes_down_too",
        &mut b,
    ) {
        return;
    }
    assert_eq!(b.increment("n", -3).unwrap(), -3);
    let (mut draft, _) = open(KvVersion::Draft, "unsigned");
    assert!(matches!(
        kv_error(draft.increment("n", -1)),
        KvError::Other(_)
    ));
}

#[test]
fn compare_and_swap_lands_only_on_the_version_read() {
    let (mut b, _) = open(KvVersion::Draft2, "cas");
    if !atomics_supported(
        server(),
        "compare_and_swap_lands_only_on_the_version_read",
        &mut b,
    ) {
        return;
    }
    let cas = b.cas("k").unwrap();
    assert_eq!(b.cas_current(&cas).unwrap(), None);
    assert!(matches!(b.swap(cas, b"first").unwrap(), Swap::Done));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"first"[..]));

    let stale = b.cas("k").unwrap();
    assert_eq!(
        b.cas_current(&stale).unwrap().as_deref(),
        Some(&b"first"[..])
    );
    b.set("k", b"other").unwrap();
    let Swap::Changed(fresh) = b.swap(stale, b"lost").unwrap() else {
        panic!("a swap on a stale read landed");
    };
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"other"[..]));
    assert_eq!(
        b.cas_current(&fresh).unwrap().as_deref(),
        Some(&b"other"[..])
    );
    assert!(matches!(b.swap(fresh, b"second").unwrap(), Swap::Done));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"second"[..]));

    // A key created after the read was of a missing key: the swap must not overwrite it.
    let absent = b.cas("new").unwrap();
    b.set("new", b"theirs").unwrap();
    assert!(matches!(b.swap(absent, b"mine").unwrap(), Swap::Changed(_)));
    assert_eq!(b.get("new").unwrap().as_deref(), Some(&b"theirs"[..]));
    let unused = b.cas("new").unwrap();
    b.drop_cas(unused).unwrap();
}

#[test]
fn concurrent_compare_and_swap_appends_lose_nothing() {
    let (mut b, folder) = open(KvVersion::Draft2, "cas_concurrent");
    if !atomics_supported(
        server(),
        "concurrent_compare_and_swap_appends_lose_nothing",
        &mut b,
    ) {
        return;
    }
    let identifier = format!("{}/{folder}", server().bucket);
    let (threads, each) = (3, 5);
    thread::scope(|scope| {
        for t in 0..threads {
            let identifier = &identifier;
            scope.spawn(move || {
                let mut mine = runtime()
                    .open_keyvalue(KvVersion::Draft2, identifier)
                    .unwrap();
                for i in 0..each {
                    let mut cas = mine.cas("log").unwrap();
                    loop {
                        let mut value = mine.cas_current(&cas).unwrap().unwrap_or_default();
                        value.extend_from_slice(format!("{t}.{i};").as_bytes());
                        match mine.swap(cas, &value).unwrap() {
                            Swap::Done => break,
                            Swap::Changed(fresh) => cas = fresh,
                        }
                    }
                }
            });
        }
    });
    let log = String::from_utf8(b.get("log").unwrap().unwrap()).unwrap();
    let mut entries: Vec<&str> = log.split_terminator(';').collect();
    entries.sort();
    let mut expected: Vec<String> = (0..threads)
        .flat_map(|t| (0..each).map(move |i| format!("{t}.{i}")))
        .collect();
    expected.sort();
    assert_eq!(entries, expected);
}

#[test]
fn draft_has_no_compare_and_swap() {
    let (mut b, _) = open(KvVersion::Draft, "no_cas");
    assert!(matches!(kv_error(b.cas("k")), KvError::Other(m) if m.contains("0.2.0-draft")));
}

/// A write that lands but whose answer is lost (the proxy forwards it, then stalls past the
/// first-byte timeout) is retried; the retry fails its precondition against that very write.
/// The write id in the object's metadata shows it was ours, so nothing is counted twice.
#[test]
fn increments_whose_answers_are_lost_are_counted_once() {
    let s = server();
    let test = "increments_whose_answers_are_lost_are_counted_once";
    let (mut direct, folder) = open(KvVersion::Draft2, "lost_answers");
    if !atomics_supported(s, test, &mut direct) {
        return;
    }
    let upstream: SocketAddr = s
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("an http://IP:PORT endpoint");
    let proxy = FaultProxy::start(upstream);
    let mut env: Vec<(String, String)> = s
        .aws_env()
        .into_iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .collect();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ("S3RS_FIRST_BYTE_TIMEOUT_MS", "400".into()),
        ("S3RS_MAX_ATTEMPTS", "6".into()),
        ("S3RS_OPERATION_TIMEOUT_MS", "30000".into()),
    ] {
        env.push((name.into(), value));
    }
    let through = Runtime::load(default_component_path())
        .unwrap()
        .with_env(env);
    let identifier = format!("{}/{folder}", s.bucket);
    let mut b = through
        .open_keyvalue(KvVersion::Draft2, &identifier)
        .unwrap();
    // The support probe, without faults.
    assert_eq!(b.increment("n", 0).unwrap(), 0);
    proxy.set_random(7, 250, vec![Fault::Delay(Duration::from_millis(1_200))]);
    let (mut acknowledged, mut failed) = (0, 0);
    for _ in 0..24 {
        match b.increment("n", 1) {
            Ok(_) => acknowledged += 1,
            Err(_) => failed += 1,
        }
    }
    proxy.clear();
    let delayed = proxy.stats().count("Delay");
    assert!(delayed > 0, "the schedule stalled no request");
    let total = direct.increment("n", 0).unwrap();
    // An increment that failed may or may not have landed; an acknowledged one landed once.
    assert!(
        (acknowledged..=acknowledged + failed).contains(&total),
        "{acknowledged} acknowledged, {failed} failed, counter at {total}"
    );
    report(&format!(
        "keyvalue lost answers: {delayed} requests stalled past the timeout, {acknowledged} \
         increments acknowledged, {failed} failed, counter {total} on {}",
        s.name
    ));
}
