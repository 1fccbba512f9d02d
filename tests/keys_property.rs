//! Property: arbitrary UTF-8 keys round-trip byte-exactly through a real S3 server, each key
//! its own object, with nothing written outside the store's base path.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use s3_result_store_tests::{report, runtime, server, unique_prefix};

const CASES: u32 = 96;

#[test]
fn arbitrary_keys_round_trip_as_distinct_objects() {
    let s = server();
    // Servers that keep objects as files cannot hold '/'-structured keys faithfully, nor long
    // ones: s3s-fs names a metadata file after the base64 of the whole key (base path
    // included), and past 255 bytes of file name it answers 500 (a key of 30 four-byte
    // characters under this test's prefix already does). Every other server gets the full
    // key space.
    let key = if s.keys_are_paths {
        s.unsupported(
            "arbitrary_keys_round_trip_as_distinct_objects (keys with '/', long keys)",
            "objects are files named after the key; testing keys without '/' of at most 25 \
             characters (100 bytes)",
        );
        "[^\\p{Cc}/]{1,25}"
            .prop_filter("not a dot segment", |k| k != "." && k != "..")
            .boxed()
    } else {
        "[^\\p{Cc}]{1,200}".boxed()
    };
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let tested = std::cell::Cell::new(0);
    let run_prefix = unique_prefix("prop");
    let written = std::cell::RefCell::new(Vec::new());
    runner
        .run(&prop::collection::btree_set(key, 1..4), |keys| {
            let prefix = format!("{run_prefix}{}/", tested.get());
            let mut store = runtime().open(&s.config(&prefix)).unwrap();
            for (i, key) in keys.iter().enumerate() {
                store.set(key, format!("{i}:{key}")).unwrap();
            }
            for (i, key) in keys.iter().enumerate() {
                let value = store.get(key).unwrap();
                prop_assert_eq!(
                    value,
                    Some(format!("{i}:{key}").into_bytes()),
                    "key {:?}",
                    key
                );
            }
            written
                .borrow_mut()
                .extend(keys.iter().map(|k| format!("{prefix}{k}")));
            tested.set(tested.get() + 1);
            Ok(())
        })
        .unwrap();
    assert_eq!(tested.get(), CASES);
    // One listing for the whole run (the independent client is slow to start): every key
    // written is there, exactly once, and nothing else is.
    let mut expected = written.into_inner();
    expected.sort();
    assert_eq!(s.list_keys(&run_prefix), expected);
    report(&format!(
        "property: {} key sets ({} keys) round-tripped byte-exactly against {}",
        tested.get(),
        expected.len(),
        s.name
    ));
}
