//! Virtual-hosted-style addressing for real, alongside path style, on the same bucket: the
//! server takes `<bucket>.<domain>` hosts (Garage's `root_domain`, the embedded server's
//! virtual host domain), and the host's resolver override sends those names to loopback.
//! Servers without such a domain (`S3RS_TEST_VHOST_DOMAIN` unset) say so by name.

use std::net::{IpAddr, SocketAddr};

use s3_result_store_host::{
    AddressingStyle, ConfigInput, Error, Runtime, StoreError, default_component_path,
};
use s3_result_store_tests::{report, server, unique_prefix};

/// The server's virtual-host domain and socket address, or `None` after saying why not.
fn vhost_server(test: &str) -> Option<(String, SocketAddr)> {
    let server = server();
    let Some(domain) = server.vhost_domain.clone() else {
        server.unsupported(
            test,
            "no domain for virtual-hosted-style requests (S3RS_TEST_VHOST_DOMAIN is unset)",
        );
        return None;
    };
    let addr = server
        .endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|rest| rest.parse().ok());
    if addr.is_none() {
        server.unsupported(test, "the test needs an http://IP:PORT endpoint");
    }
    Some((domain, addr?))
}

fn runtime_resolving(name: &str, ip: IpAddr) -> Runtime {
    Runtime::load(default_component_path())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_resolve(name, ip)
}

fn store_error<T: std::fmt::Debug>(result: Result<T, Error>) -> StoreError {
    match result {
        Err(Error::Store(e)) => e,
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[test]
fn virtual_hosted_and_path_style_see_the_same_objects() {
    let Some((domain, addr)) = vhost_server("virtual_hosted_and_path_style_see_the_same_objects")
    else {
        return;
    };
    let server = server();
    let prefix = unique_prefix("vhost");
    let bucket_host = format!("{}.{domain}", server.bucket);
    // A rule for the bucket's host name only: a request to the bare domain (path style) would
    // not resolve, so a success below means the bucket really travelled in the host name.
    let runtime = runtime_resolving(&bucket_host, addr.ip());
    let vhost_config = ConfigInput {
        endpoint_url: Some(format!("http://{domain}:{}", addr.port())),
        addressing_style: AddressingStyle::VirtualHosted,
        max_attempts: Some(1),
        ..server.config(&prefix)
    };
    let path_config = ConfigInput {
        addressing_style: AddressingStyle::Path,
        max_attempts: Some(1),
        ..server.config(&prefix)
    };
    let mut vhost = runtime.open(&vhost_config).unwrap();
    let mut path = runtime.open(&path_config).unwrap();

    // Written virtual-hosted, read both ways; and the other way round.
    let meta = br#"{"status": "SUCCESS", "result": 42, "task_id": "vh"}"#;
    vhost.set("celery-task-meta-vh", meta).unwrap();
    assert_eq!(
        vhost.get("celery-task-meta-vh").unwrap().as_deref(),
        Some(&meta[..])
    );
    assert_eq!(
        path.get("celery-task-meta-vh").unwrap().as_deref(),
        Some(&meta[..])
    );
    path.set("celery-task-meta-path", b"from path style")
        .unwrap();
    assert_eq!(
        vhost.get("celery-task-meta-path").unwrap().as_deref(),
        Some(&b"from path style"[..])
    );
    // Keys that need encoding in the path, under a virtual-hosted host.
    let awkward = "dir/a key+with%signs?and#hash";
    vhost.set(awkward, b"awkward").unwrap();
    assert_eq!(path.get(awkward).unwrap().as_deref(), Some(&b"awkward"[..]));

    // An independent client (boto3, path style) sees each key once, under the prefix.
    let listed = server.list_keys(&prefix);
    let mut expected: Vec<String> = ["celery-task-meta-vh", "celery-task-meta-path", awkward]
        .iter()
        .map(|k| format!("{prefix}{k}"))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);

    // Batches (the component's get-many, set-many, delete-many) address the same way.
    let entries: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("batch-{i}"), format!("value {i}").into_bytes()))
        .collect();
    assert!(vhost.set_many(&entries).unwrap().iter().all(Result::is_ok));
    let keys: Vec<&String> = entries.iter().map(|(k, _)| k).collect();
    let values: Vec<Option<Vec<u8>>> = path
        .get_many(&keys)
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let wanted: Vec<Option<Vec<u8>>> = entries.iter().map(|(_, v)| Some(v.clone())).collect();
    assert_eq!(values, wanted);
    assert!(vhost.delete_many(&keys).unwrap().iter().all(Result::is_ok));
    assert!(
        path.get_many(&keys)
            .unwrap()
            .into_iter()
            .all(|r| r.unwrap().is_none())
    );

    // Deleted one way, gone both ways.
    vhost.delete("celery-task-meta-path").unwrap();
    path.delete("celery-task-meta-vh").unwrap();
    vhost.delete(awkward).unwrap();
    for key in ["celery-task-meta-vh", "celery-task-meta-path", awkward] {
        assert_eq!(vhost.get(key).unwrap(), None, "{key}");
        assert_eq!(path.get(key).unwrap(), None, "{key}");
    }
    assert!(server.list_keys(&prefix).is_empty());

    // The same store with path style on the domain name has no rule to resolve it.
    let err = store_error(
        runtime
            .open(&ConfigInput {
                addressing_style: AddressingStyle::Path,
                ..vhost_config
            })
            .unwrap()
            .get("celery-task-meta-vh"),
    );
    assert!(
        matches!(&err, StoreError::Transport(m) if m.contains("cannot resolve")),
        "{err}"
    );
    report(&format!(
        "{}: set/get/delete and batches virtual-hosted at {bucket_host}:{} and path-style at {}, \
         the same objects both ways",
        server.name,
        addr.port(),
        server.endpoint
    ));
}

#[test]
fn the_bucket_comes_from_the_host_name() {
    let Some((domain, addr)) = vhost_server("the_bucket_comes_from_the_host_name") else {
        return;
    };
    let server = server();
    // Every name under the domain goes to the server: which bucket is meant is up to the
    // host name alone.
    let runtime = runtime_resolving(&domain, addr.ip());
    let endpoint = format!("http://{domain}:{}", addr.port());
    let prefix = unique_prefix("vhost-bucket");
    let config = |bucket: &str, style: AddressingStyle| ConfigInput {
        endpoint_url: Some(endpoint.clone()),
        bucket_name: Some(bucket.to_owned()),
        addressing_style: style,
        max_attempts: Some(1),
        ..server.config(&prefix)
    };

    // Path style to the bare domain name works too: that host names no bucket.
    let mut path = runtime
        .open(&config(&server.bucket, AddressingStyle::Path))
        .unwrap();
    path.set("k", b"path style on the domain name").unwrap();
    let mut vhost = runtime
        .open(&config(&server.bucket, AddressingStyle::VirtualHosted))
        .unwrap();
    assert_eq!(
        vhost.get("k").unwrap().as_deref(),
        Some(&b"path style on the domain name"[..])
    );

    // Another bucket's host name reaches another (missing) bucket.
    let missing = "s3rs-no-such-bucket-vhost";
    let err = store_error(
        runtime
            .open(&config(missing, AddressingStyle::VirtualHosted))
            .unwrap()
            .get("k"),
    );
    assert!(
        matches!(&err, StoreError::NoSuchBucket(b) if b == missing),
        "{err}"
    );
    vhost.delete("k").unwrap();
    assert_eq!(path.get("k").unwrap(), None);
}
