//! The key-value layer over the in-memory S3 model of `conditional::tests`.

use super::*;
use crate::conditional::tests::{Model, Quick, store};
use crate::config::AddressingStyle;

fn bucket<'a>(model: &'a Model, system: &'a Quick) -> Bucket<&'a Model, &'a Quick> {
    Bucket::new(store(model, system))
}

#[test]
fn identifiers_name_a_bucket_and_an_optional_folder() {
    let parsed = |id: &str| parse_identifier(id).unwrap();
    assert_eq!(parsed("results"), ("results".into(), "".into()));
    assert_eq!(parsed("results/app"), ("results".into(), "app/".into()));
    assert_eq!(parsed("results/app/"), ("results".into(), "app/".into()));
    assert_eq!(
        parsed("s3://results/a/b"),
        ("results".into(), "a/b/".into())
    );
    assert_eq!(parse_identifier(""), Err(KvError::NoSuchStore));
    assert_eq!(parse_identifier("s3:///x"), Err(KvError::NoSuchStore));
}

#[test]
fn opening_resolves_the_rest_from_the_environment() {
    let env = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    let creds = env(&[
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "SECRET"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ("AWS_REGION", "garage"),
    ]);
    let config = resolve("results/app", creds.clone()).unwrap();
    assert_eq!(config.bucket, "results");
    assert_eq!(config.base_path, "app/");
    assert_eq!(config.region, "garage");
    for not_a_bucket in ["x", "has space", "-dash-first"] {
        let err = resolve(not_a_bucket, creds.clone()).unwrap_err();
        assert_eq!(err, KvError::NoSuchStore, "{not_a_bucket}");
    }
    let Err(KvError::Other(message)) = resolve("results", Vec::new()) else {
        panic!("opened without credentials");
    };
    assert!(message.contains("AWS_ACCESS_KEY_ID"), "{message}");
    let mut bad = creds.clone();
    bad[2].1 = "http://h:1/path".into();
    assert!(matches!(resolve("results", bad), Err(KvError::Other(_))));

    let tuned = [
        creds.clone(),
        env(&[
            ("S3RS_MAX_ATTEMPTS", "5"),
            ("S3RS_FIRST_BYTE_TIMEOUT_MS", "400"),
            ("S3RS_ADDRESSING_STYLE", "virtual-hosted"),
            ("AWS_ENDPOINT_URL_S3", "http://s3.local:9000"),
        ]),
    ]
    .concat();
    let config = resolve("results", tuned).unwrap();
    assert_eq!(config.retry.max_attempts, 5);
    assert_eq!(config.limits.first_byte_timeout.as_millis(), 400);
    assert_eq!(config.addressing_style, AddressingStyle::VirtualHosted);
    for (name, value) in [
        ("S3RS_MAX_ATTEMPTS", "five"),
        ("S3RS_MAX_ATTEMPTS", "99999999999"),
        ("S3RS_ADDRESSING_STYLE", "sideways"),
    ] {
        let env = [creds.clone(), env(&[(name, value)])].concat();
        let Err(KvError::Other(m)) = resolve("results", env) else {
            panic!("{name}={value} accepted");
        };
        assert!(m.contains(name), "{m}");
    }
}

#[test]
fn store_errors_map_onto_the_three_keyvalue_errors() {
    assert_eq!(
        KvError::from(Error::NoSuchBucket("b".into())),
        KvError::NoSuchStore
    );
    let info = crate::error::S3ErrorInfo {
        status: 403,
        code: "AccessDenied".into(),
        message: "m".into(),
        request_id: None,
    };
    assert_eq!(
        KvError::from(Error::AccessDenied(info)),
        KvError::AccessDenied
    );
    assert_eq!(
        KvError::from(Error::Timeout("waiting".into())),
        KvError::Other("timed out: waiting".into())
    );
}

#[test]
fn counters_are_decimal_text_starting_from_zero() {
    let (model, system) = (Model::default(), Quick::default());
    let b = bucket(&model, &system);
    assert_eq!(b.increment("n", 5).unwrap(), 5);
    assert_eq!(b.increment("n", -7).unwrap(), -2);
    assert_eq!(model.value("/kvs/app/n").unwrap(), b"-2");
    assert_eq!(b.increment_unsigned("u", 3).unwrap(), 3);
    assert_eq!(b.increment_unsigned("u", u64::MAX - 3).unwrap(), u64::MAX);
    assert_eq!(
        model.value("/kvs/app/u").unwrap(),
        u64::MAX.to_string().as_bytes()
    );
}

#[test]
fn a_counter_that_is_not_a_number_or_would_overflow_is_left_alone() {
    let (model, system) = (Model::default(), Quick::default());
    let b = bucket(&model, &system);
    for (stored, delta) in [
        (&b"12a"[..], 1),
        (b" 1", 1),
        (b"+1", 1),
        (b"", 1),
        (b"-1", 0),
    ] {
        model.put("/kvs/app/u", stored);
        let Err(KvError::Other(m)) = b.increment_unsigned("u", delta) else {
            panic!("{stored:?} incremented");
        };
        assert!(m.contains("not a decimal integer"), "{m}");
        assert_eq!(model.value("/kvs/app/u").unwrap(), stored);
    }
    model.put("/kvs/app/n", i64::MAX.to_string().as_bytes());
    let Err(KvError::Other(m)) = b.increment("n", 1) else {
        panic!("overflowed");
    };
    assert!(m.contains("overflows"), "{m}");
    assert_eq!(
        model.value("/kvs/app/n").unwrap(),
        i64::MAX.to_string().as_bytes()
    );
}

#[test]
fn atomics_refuse_a_server_that_ignores_preconditions_and_remember_it() {
    let model = Model::ignoring_preconditions();
    let system = Quick::default();
    let b = bucket(&model, &system);
    for _ in 0..2 {
        let Err(KvError::Other(m)) = b.increment("n", 1) else {
            panic!("incremented without conditional writes");
        };
        assert!(m.contains("conditional writes"), "{m}");
    }
    assert!(matches!(b.cas_read("n"), Err(KvError::Other(_))));
    // One probe (its second create was not refused: two PUTs), then the answer is remembered.
    assert_eq!(model.puts.get(), 2);
    assert_eq!(model.value("/kvs/app/n"), None);
}

#[test]
fn compare_and_swap_lands_only_on_the_version_read() {
    let (model, system) = (Model::default(), Quick::default());
    let b = bucket(&model, &system);
    let cas = b.cas_read("k").unwrap();
    assert_eq!(cas.current(), None);
    b.cas_swap(cas, b"first".to_vec()).unwrap();

    let stale = b.cas_read("k").unwrap();
    assert_eq!(stale.current(), Some(&b"first"[..]));
    b.set("k", b"other".to_vec()).unwrap();
    let Err(SwapError::Changed(fresh)) = b.cas_swap(stale, b"lost".to_vec()) else {
        panic!("a stale swap landed");
    };
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"other");
    // The failed swap hands back the key as it is now, ready for a retry.
    assert_eq!(fresh.current(), Some(&b"other"[..]));
    b.cas_swap(fresh, b"second".to_vec()).unwrap();
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"second");
}

#[test]
fn a_swap_on_a_key_created_meanwhile_fails() {
    let (model, system) = (Model::default(), Quick::default());
    let b = bucket(&model, &system);
    let cas = b.cas_read("k").unwrap();
    b.set("k", b"sneaky".to_vec()).unwrap();
    assert!(matches!(
        b.cas_swap(cas, b"mine".to_vec()),
        Err(SwapError::Changed(_))
    ));
    assert_eq!(model.value("/kvs/app/k").unwrap(), b"sneaky");
}

fn fill(model: &Model, n: usize) -> Vec<String> {
    let mut keys: Vec<String> = (0..n).map(|i| format!("key-{i:03}")).collect();
    for key in &keys {
        model.put(&format!("/kvs/app/{key}"), b"v");
    }
    // Outside the bucket's folder: never listed.
    model.put("/kvs/other/key", b"v");
    keys.sort();
    keys
}

#[test]
fn listing_pages_by_continuation_token_without_the_prefix() {
    let model = Model::default();
    model.page_size.set(4);
    let system = Quick::default();
    let b = bucket(&model, &system);
    let all = fill(&model, 10);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = b.list_keys(cursor.as_deref()).unwrap();
        pages += 1;
        seen.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
}

#[test]
fn numeric_cursors_are_positions_in_the_listing() {
    let model = Model::default();
    model.page_size.set(4);
    let system = Quick::default();
    let b = bucket(&model, &system);
    let all = fill(&model, 10);

    let first = b.list_keys_at(0).unwrap();
    assert_eq!(first.keys, all[..4]);
    assert_eq!(first.cursor, Some(4));
    let second = b.list_keys_at(4).unwrap();
    assert_eq!(second.keys, all[4..8]);
    assert_eq!(second.cursor, Some(8));
    let last = b.list_keys_at(8).unwrap();
    assert_eq!(last.keys, all[8..]);
    assert_eq!(last.cursor, None);

    // Any position works, also from a bucket that never handed it out.
    let fresh = bucket(&model, &system);
    let middle = fresh.list_keys_at(6).unwrap();
    assert_eq!(middle.keys, all[6..8]);
    assert_eq!(middle.cursor, Some(8));
    let past_the_end = fresh.list_keys_at(50).unwrap();
    assert!(past_the_end.keys.is_empty());
    assert_eq!(past_the_end.cursor, None);
}

#[test]
fn batches_answer_per_key_and_fail_as_a_whole() {
    let (model, system) = (Model::default(), Quick::default());
    let b = bucket(&model, &system);
    b.set_many(vec![("a", b"1".to_vec()), ("b", b"2".to_vec())])
        .unwrap();
    assert_eq!(
        b.get_many(&["a", "missing", "b"]).unwrap(),
        vec![
            Some(("a".to_owned(), b"1".to_vec())),
            None,
            Some(("b".to_owned(), b"2".to_vec()))
        ]
    );
    assert!(b.exists("a").unwrap());
    assert!(!b.exists("missing").unwrap());
    b.delete_many(&["a", "missing"]).unwrap();
    assert_eq!(model.keys(), vec!["/kvs/app/b".to_owned()]);
    let Err(KvError::Other(m)) = b.get_many(&["ok", ""]) else {
        panic!("an empty key was read");
    };
    assert!(m.contains("invalid key"), "{m}");
}
