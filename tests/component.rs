//! The built component itself, in both flavours: what it exports and what it asks of its host.

use std::sync::OnceLock;

use s3_result_store_host::{Error, KvVersion, Runtime, store_only_component_path};
use s3_result_store_tests::{runtime, server, unique_prefix};

/// The store-only build (`--no-default-features`, scripts/build-components).
fn store_only() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::load(store_only_component_path())
            .unwrap_or_else(|e| panic!("{e} (scripts/build-components builds it)"))
            .with_env(server().aws_env())
    })
}

#[test]
fn exports_its_own_interfaces_and_wasi_keyvalue_at_both_drafts() {
    let (imports, mut exports) = runtime().interface();
    exports.sort();
    let mut expected: Vec<String> = [
        "result-store:s3/types@0.1.0",
        "result-store:s3/store@0.1.0",
        "result-store:s3/tasks@0.1.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/batch@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
        "wasi:keyvalue/store@0.2.0-draft",
        "wasi:keyvalue/batch@0.2.0-draft",
        "wasi:keyvalue/atomics@0.2.0-draft",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(exports, expected);
    // Its types are exported with the interfaces that use them: nothing but WASI is imported.
    let foreign: Vec<&String> = imports.iter().filter(|i| !i.starts_with("wasi:")).collect();
    assert!(foreign.is_empty(), "non-WASI imports: {foreign:?}");
}

#[test]
fn imports_http_environment_and_clocks_but_no_filesystem_or_sockets() {
    let (imports, _) = runtime().interface();
    for needed in [
        "wasi:http/outgoing-handler@0.2.12",
        "wasi:cli/environment@0.2.12",
        "wasi:clocks/wall-clock@0.2.12",
    ] {
        assert!(
            imports.iter().any(|i| i == needed),
            "{needed} missing from {imports:?}"
        );
    }
    // A result store has no business with files or raw sockets; a host may deny both.
    for forbidden in ["wasi:filesystem", "wasi:sockets"] {
        assert!(
            !imports.iter().any(|i| i.starts_with(forbidden)),
            "{forbidden} imported: {imports:?}"
        );
    }
}

#[test]
fn the_store_only_build_exports_the_store_alone_and_imports_the_same_wasi() {
    let (imports, exports) = store_only().interface();
    assert_eq!(
        exports,
        ["result-store:s3/types@0.1.0", "result-store:s3/store@0.1.0"].map(String::from)
    );
    let (full_imports, _) = runtime().interface();
    assert_eq!(imports, full_imports);
}

#[test]
fn the_store_only_build_sets_gets_and_deletes() {
    let mut store = store_only()
        .open(&server().config(&unique_prefix("store-only")))
        .unwrap_or_else(|e| panic!("open: {e}"));
    store.set("celery-task-meta-1", "a value").unwrap();
    assert_eq!(
        store.get("celery-task-meta-1").unwrap().as_deref(),
        Some(&b"a value"[..])
    );
    let many = store.get_many(&["celery-task-meta-1", "absent"]).unwrap();
    assert_eq!(many.len(), 2);
    store.delete("celery-task-meta-1").unwrap();
    assert_eq!(store.get("celery-task-meta-1").unwrap(), None);
}

#[test]
fn the_store_only_build_says_which_feature_the_tasks_and_keyvalue_need() {
    let config = server().config(&unique_prefix("store-only-refused"));
    match store_only().open_tasks(&config, None) {
        Err(e @ Error::NotExported { .. }) => assert_eq!(
            e.to_string(),
            "the component does not export result-store:s3/tasks@0.1.0: it was built without \
             the `tasks` feature"
        ),
        other => panic!("expected NotExported, got {:?}", other.err()),
    }
    for (version, interface) in [
        (KvVersion::Draft, "wasi:keyvalue/store@0.2.0-draft"),
        (KvVersion::Draft2, "wasi:keyvalue/store@0.2.0-draft2"),
    ] {
        match store_only().open_keyvalue(version, &server().bucket) {
            Err(Error::NotExported {
                interface: named,
                feature,
            }) => assert_eq!((named, feature), (interface, "keyvalue")),
            other => panic!("expected NotExported, got {:?}", other.err()),
        }
    }
}
