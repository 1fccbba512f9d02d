//! The built component itself: what it exports and what it asks of its host.

use s3_result_store_tests::runtime;

#[test]
fn exports_its_own_interfaces_and_wasi_keyvalue_at_both_drafts() {
    let (imports, exports) = runtime().interface();
    let expected: Vec<String> = [
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
