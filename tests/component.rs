//! The built component itself: what it exports and what it asks of its host.

use s3_result_store_tests::runtime;

#[test]
fn exports_the_store_and_tasks_interfaces() {
    let (_, exports) = runtime().interface();
    assert_eq!(
        exports,
        vec![
            "result-store:s3/store@0.1.0".to_owned(),
            "result-store:s3/tasks@0.1.0".to_owned()
        ]
    );
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
