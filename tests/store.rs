//! get / set / delete through the real component, under wasmtime, against a real S3 server.
//! Covers every case of Celery's own S3Backend unit tests, and what they leave out.

use s3_result_store_host::{ConfigInput, Error, ResultStore, StoreError};
use s3_result_store_tests::{runtime, server, unique_prefix};

fn open(config: &ConfigInput) -> ResultStore {
    runtime()
        .open(config)
        .unwrap_or_else(|e| panic!("open: {e}"))
}

fn store_error(result: Result<impl std::fmt::Debug, Error>) -> StoreError {
    match result {
        Err(Error::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[test]
fn set_and_get_with_a_str_key() {
    let mut store = open(&server().config(&unique_prefix("str-key")));
    store.set("celery-task-meta-1", "a value").unwrap();
    assert_eq!(
        store.get("celery-task-meta-1").unwrap().as_deref(),
        Some(&b"a value"[..])
    );
}

#[test]
fn set_and_get_with_a_bytes_key() {
    let mut store = open(&server().config(&unique_prefix("bytes-key")));
    store
        .set(b"celery-task-meta-2".as_slice(), b"bytes value")
        .unwrap();
    // The same key as text names the same object.
    assert_eq!(
        store.get("celery-task-meta-2").unwrap().as_deref(),
        Some(&b"bytes value"[..])
    );
    assert_eq!(
        store.get(b"celery-task-meta-2").unwrap().as_deref(),
        Some(&b"bytes value"[..])
    );
}

#[test]
fn bytes_keys_that_are_not_utf8_are_refused() {
    let mut store = open(&server().config(&unique_prefix("bad-bytes")));
    for op in 0..3 {
        let key = b"celery-task-meta-\xff".as_slice();
        let result = match op {
            0 => store.get(key).map(drop),
            1 => store.set(key, b"v"),
            _ => store.delete(key),
        };
        assert!(matches!(store_error(result), StoreError::InvalidKey(m) if m.contains("UTF-8")));
    }
}

#[test]
fn store_then_read_a_celery_result() {
    let prefix = unique_prefix("celery-result");
    let mut store = open(&server().config(&prefix));
    let key = "celery-task-meta-11111111-1111-1111-1111-111111111111";
    let meta = br#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "11111111-1111-1111-1111-111111111111"}"#;
    store.set(key, meta).unwrap();
    assert_eq!(store.get(key).unwrap().as_deref(), Some(&meta[..]));
    // Replacing a value replaces it.
    store.set(key, b"{}").unwrap();
    assert_eq!(store.get(key).unwrap().as_deref(), Some(&b"{}"[..]));
}

#[test]
fn get_of_a_missing_key_is_none() {
    let mut store = open(&server().config(&unique_prefix("missing")));
    assert_eq!(store.get("celery-task-meta-never-written").unwrap(), None);
}

#[test]
fn delete_removes_and_deleting_a_missing_key_succeeds() {
    let mut store = open(&server().config(&unique_prefix("delete")));
    store.set("k", b"v").unwrap();
    store.delete("k").unwrap();
    assert_eq!(store.get("k").unwrap(), None);
    store.delete("k").unwrap();
    store.delete("never-written").unwrap();
}

#[test]
fn a_missing_bucket_is_a_clear_error_for_every_operation() {
    let s = server();
    let mut config = s.config(&unique_prefix("no-bucket"));
    let bucket = format!("s3rs-missing-{}", std::process::id());
    config.bucket_name = Some(bucket.clone());
    let mut store = open(&config);
    let expected = StoreError::NoSuchBucket(bucket);
    assert_eq!(store_error(store.get("k")), expected);
    assert_eq!(store_error(store.set("k", b"v")), expected);
    assert_eq!(store_error(store.delete("k")), expected);
    assert!(expected.to_string().contains("no such bucket"));
}

#[test]
fn a_missing_bucket_name_is_an_error_at_open() {
    let mut config = server().config("");
    config.bucket_name = None;
    assert_eq!(
        store_error(runtime().open(&config).map(drop)),
        StoreError::MissingBucketName
    );
    config.bucket_name = Some(String::new());
    assert_eq!(
        store_error(runtime().open(&config).map(drop)),
        StoreError::MissingBucketName
    );
}

#[test]
fn missing_credentials_are_an_error_at_open() {
    let mut config = server().config("");
    config.access_key_id = None;
    config.secret_access_key = None;
    assert_eq!(
        store_error(runtime().open(&config).map(drop)),
        StoreError::MissingCredentials
    );
}

#[test]
fn credentials_region_and_endpoint_come_from_the_environment_when_not_configured() {
    let s = server();
    let env = [
        ("AWS_ACCESS_KEY_ID", s.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s.secret_access_key.as_str()),
        ("AWS_REGION", s.region.as_str()),
        ("AWS_ENDPOINT_URL_S3", s.endpoint.as_str()),
    ];
    let runtime =
        s3_result_store_host::Runtime::load(s3_result_store_host::default_component_path())
            .unwrap()
            .with_env(env);
    let config = ConfigInput {
        bucket_name: Some(s.bucket.clone()),
        base_path: Some(unique_prefix("env")),
        ..ConfigInput::default()
    };
    let mut store = runtime.open(&config).unwrap();
    store.set("k", b"from env").unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"from env"[..]));
}

#[test]
fn credentials_in_the_config_do_not_consult_the_environment() {
    let s = server();
    // Wrong credentials and a session token in the environment must all be ignored: sending
    // that token alongside the configured keys would make the signature invalid.
    let env = [
        ("AWS_ACCESS_KEY_ID", "WRONGKEYID"),
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
        ("AWS_SESSION_TOKEN", "stray-token"),
    ];
    let runtime =
        s3_result_store_host::Runtime::load(s3_result_store_host::default_component_path())
            .unwrap()
            .with_env(env);
    let mut store = runtime
        .open(&s.config(&unique_prefix("config-creds")))
        .unwrap();
    store.set("k", b"v").unwrap();
    assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn the_configured_endpoint_is_the_one_used() {
    // Nothing listens on port 1: a config pointing there must fail to connect, proving the
    // endpoint is not silently replaced by a default.
    let mut config = server().config(&unique_prefix("endpoint"));
    config.endpoint_url = Some("http://127.0.0.1:1".into());
    let mut store = open(&config);
    assert!(
        matches!(store_error(store.get("k")), StoreError::Transport(m) if m.contains("refused"))
    );
}

#[test]
fn a_wrong_secret_is_access_denied() {
    let s = server();
    if !s.verifies_signatures {
        return s.unsupported(
            "a_wrong_secret_is_access_denied",
            "it accepts any signature",
        );
    }
    let mut config = s.config(&unique_prefix("wrong-secret"));
    config.secret_access_key = Some("definitely-not-the-secret".into());
    let mut store = open(&config);
    for result in [
        store.get("k").map(drop),
        store.set("k", b"v"),
        store.delete("k"),
    ] {
        match store_error(result) {
            StoreError::AccessDenied(info) => {
                assert_eq!(info.status, 403);
                // S3, MinIO and s3s say SignatureDoesNotMatch; Garage says AccessDenied.
                assert!(
                    ["SignatureDoesNotMatch", "AccessDenied"].contains(&info.code.as_str()),
                    "{info:?}"
                );
            }
            other => panic!("expected access denied, got {other:?}"),
        }
    }
}

#[test]
fn an_unknown_access_key_surfaces_as_an_error() {
    let s = server();
    if !s.verifies_signatures {
        return s.unsupported(
            "an_unknown_access_key_surfaces_as_an_error",
            "it accepts any key",
        );
    }
    let mut config = s.config(&unique_prefix("unknown-key"));
    config.access_key_id = Some("GK000000000000000000000000".into());
    let mut store = open(&config);
    match store_error(store.get("k")) {
        StoreError::AccessDenied(info) => {
            assert_eq!(info.status, 403);
            assert!(!info.code.is_empty(), "{info:?}");
        }
        other => panic!("expected access denied, got {other:?}"),
    }
}

#[test]
fn stored_keys_are_base_path_plus_key_exactly_as_celery_lays_them_out() {
    let s = server();
    let prefix = unique_prefix("layout");
    // Celery concatenates with no separator: "results/" + key, and "/prefix" + key.
    let mut slash = open(&s.config(&format!("{prefix}results/")));
    slash.set("celery-task-meta-a", b"1").unwrap();
    let mut bare = open(&s.config(&format!("{prefix}bare")));
    bare.set("celery-task-meta-b", b"2").unwrap();
    assert_eq!(
        s.list_keys(&prefix),
        vec![
            format!("{prefix}barecelery-task-meta-b"),
            format!("{prefix}results/celery-task-meta-a"),
        ]
    );
}

#[test]
fn values_round_trip_byte_exactly() {
    let mut store = open(&server().config(&unique_prefix("values")));
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let mib: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sixteen_mib: Vec<u8> = mib
        .iter()
        .cycle()
        .take(16 << 20)
        .enumerate()
        .map(|(i, b)| b ^ (i >> 20) as u8)
        .collect();
    let cases: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("one", b"\x00"),
        ("all-256", &all_bytes),
        ("1mib", &mib),
        ("16mib", &sixteen_mib),
    ];
    for (key, value) in cases {
        store.set(key, value).unwrap();
    }
    for (key, value) in cases {
        let read = store
            .get(key)
            .unwrap()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(read.len(), value.len(), "{key}");
        assert!(read == value, "{key}: bytes differ");
    }
}

fn assert_keys_round_trip(keys: &[&str], test: &str) {
    let s = server();
    let prefix = unique_prefix(test);
    let mut store = open(&s.config(&prefix));
    for (i, key) in keys.iter().enumerate() {
        store
            .set(key, format!("value {i}"))
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key).unwrap().as_deref(),
            Some(format!("value {i}").as_bytes()),
            "{key:?}"
        );
    }
    let mut expected: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
    expected.sort();
    assert_eq!(s.list_keys(&prefix), expected);
}

#[test]
fn unusual_keys_round_trip_and_each_stays_one_distinct_object() {
    assert_keys_round_trip(
        &[
            "with space",
            "plus+sign",
            "percent%20literal",
            "%2F",
            "question?mark=1&x",
            "hash#fragment",
            "unicode-é-€-日本-🎉",
            "a",
            "A",
            "~tilde*star(paren)'quote'!bang$dollar,comma;semi:colon=eq@at",
        ],
        "keys",
    );
}

#[test]
fn keys_that_look_like_paths_stay_distinct_objects() {
    let s = server();
    if s.keys_are_paths {
        return s.unsupported(
            "keys_that_look_like_paths_stay_distinct_objects",
            "objects are files: 'a//b' and '/a' fold into 'a/b' and 'a', and a key ending in \
             '/' or with '.'/'..' segments cannot be stored",
        );
    }
    assert_keys_round_trip(
        &[
            "double//slash",
            "double/slash",
            "/leading-slash",
            "leading-slash",
            "trailing-slash/",
            "dots/./and/../segments",
            "dots/and/segments",
            "..",
            ".",
        ],
        "path-keys",
    );
}

#[test]
fn invalid_keys_are_refused_before_anything_is_sent() {
    // An unreachable endpoint: any request would fail as a transport error, so an
    // invalid-key error proves nothing was sent.
    let mut config = server().config("base/");
    config.endpoint_url = Some("http://127.0.0.1:1".into());
    let mut store = open(&config);
    let too_long = "k".repeat(1024 - "base/".len() + 1);
    let just_fits = "k".repeat(1024 - "base/".len());
    for key in ["", too_long.as_str(), "line\nbreak"] {
        assert!(
            matches!(store_error(store.get(key)), StoreError::InvalidKey(_)),
            "{key:?}"
        );
        assert!(matches!(
            store_error(store.set(key, b"v")),
            StoreError::InvalidKey(_)
        ));
        assert!(matches!(
            store_error(store.delete(key)),
            StoreError::InvalidKey(_)
        ));
    }
    assert!(matches!(
        store_error(store.get(just_fits.as_str())),
        StoreError::Transport(_)
    ));
}

#[test]
fn invalid_configs_are_refused_at_open() {
    let cases = [
        (
            "endpoint with a path",
            ConfigInput {
                endpoint_url: Some("http://127.0.0.1:9000/prefix".into()),
                ..server().config("")
            },
        ),
        (
            "endpoint without scheme",
            ConfigInput {
                endpoint_url: Some("127.0.0.1:9000".into()),
                ..server().config("")
            },
        ),
        (
            "bucket with a slash",
            ConfigInput {
                bucket_name: Some("a/b".into()),
                ..server().config("")
            },
        ),
    ];
    for (what, config) in cases {
        assert!(
            matches!(
                store_error(runtime().open(&config).map(drop)),
                StoreError::InvalidConfig(_)
            ),
            "{what}"
        );
    }
}

#[test]
fn error_messages_never_contain_the_secret() {
    let s = server();
    let secret = "super-secret-value-that-must-not-leak";
    let token = "session-token-that-must-not-leak";
    let mut config = s.config(&unique_prefix("secret"));
    config.secret_access_key = Some(secret.into());
    config.session_token = Some(token.into());
    let mut texts = vec![format!("{config:?}")];
    let mut unreachable = config.clone();
    unreachable.endpoint_url = Some("http://127.0.0.1:1".into());
    let mut errors = vec![open(&unreachable).get("k").unwrap_err()];
    if s.verifies_signatures {
        errors.push(open(&config).get("k").unwrap_err());
    }
    for err in errors {
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    for text in texts {
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(token), "{text}");
    }
}

#[test]
fn batch_operations_answer_every_entry_in_order() {
    let s = server();
    let prefix = unique_prefix("batch");
    let mut store = open(&s.config(&prefix));
    let keys: Vec<String> = (0..100)
        .map(|i| format!("celery-task-meta-{i:03}"))
        .collect();
    let entries: Vec<(String, Vec<u8>)> = keys
        .iter()
        .map(|k| (k.clone(), format!("value of {k}").into_bytes()))
        .collect();
    assert!(store.set_many(&entries).unwrap().iter().all(Result::is_ok));
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.insert(50, "");
    asked.push("never-written");
    let got = store.get_many(&asked).unwrap();
    assert_eq!(got.len(), 102);
    assert!(matches!(
        &got[50],
        Err(Error::Store(StoreError::InvalidKey(_)))
    ));
    assert_eq!(got[101].as_ref().unwrap(), &None);
    for (i, key) in keys.iter().enumerate() {
        let index = if i < 50 { i } else { i + 1 };
        assert_eq!(
            got[index].as_ref().unwrap().as_deref(),
            Some(format!("value of {key}").as_bytes())
        );
    }
    assert_eq!(s.list_keys(&prefix).len(), 100);
    assert!(store.delete_many(&keys).unwrap().iter().all(Result::is_ok));
    assert!(
        store
            .get_many(&keys)
            .unwrap()
            .iter()
            .all(|r| matches!(r, Ok(None)))
    );
    assert!(s.list_keys(&prefix).is_empty());
}
