//! Celery's keys are caller-chosen strings: arbitrary UTF-8 through `ObjectKey::new` (base path
//! from the first part of the input), `ObjectKey::encoded`, `request::build` and `sign::Signer`.
//! A key must only ever name one object in the configured bucket: same host, port and bucket,
//! no query, and a path that decodes to exactly base path + key.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use http::Uri;
use libfuzzer_sys::fuzz_target;
use s3_result_store::config::{AddressingStyle, Config, ConfigInput};
use s3_result_store::key::{MAX_KEY_BYTES, ObjectKey};
use s3_result_store::request::{self, Operation};
use s3_result_store::sign;

struct Target {
    config: Config,
    scheme: &'static str,
    host: &'static str,
    port: Option<u16>,
    /// What precedes the encoded key in the path.
    path_prefix: &'static str,
}

fn resolve(endpoint: Option<&str>, style: AddressingStyle) -> Config {
    let input = ConfigInput {
        endpoint_url: endpoint.map(Into::into),
        bucket_name: Some("results".into()),
        access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
        secret_access_key: Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        addressing_style: style,
        ..ConfigInput::default()
    };
    Config::resolve(&input, std::iter::empty::<(String, String)>()).expect("a valid config")
}

fn targets() -> &'static [Target] {
    static TARGETS: OnceLock<Vec<Target>> = OnceLock::new();
    TARGETS.get_or_init(|| {
        vec![
            Target {
                config: resolve(Some("http://s3.local:9000"), AddressingStyle::Path),
                scheme: "http",
                host: "s3.local",
                port: Some(9000),
                path_prefix: "/results/",
            },
            Target {
                config: resolve(Some("http://s3.local:9000"), AddressingStyle::VirtualHosted),
                scheme: "http",
                host: "results.s3.local",
                port: Some(9000),
                path_prefix: "/",
            },
            // AWS: `Auto` resolves to virtual-hosted style on the default https endpoint.
            Target {
                config: resolve(None, AddressingStyle::Auto),
                scheme: "https",
                host: "results.s3.us-east-1.amazonaws.com",
                port: None,
                path_prefix: "/",
            },
        ]
    })
}

fn is_kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
}

fn is_upper_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'A'..=b'F').contains(&b)
}

/// Only unreserved characters, '/' and `%XX` (uppercase) escapes of bytes that needed one.
fn assert_canonical(encoded: &str) {
    let bytes = encoded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            assert!(
                i + 2 < bytes.len() && is_upper_hex(bytes[i + 1]) && is_upper_hex(bytes[i + 2]),
                "bad escape at {i} in {encoded:?}"
            );
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            let byte = u8::from_str_radix(hex, 16).unwrap();
            assert!(
                !is_kept(byte),
                "{byte:#04x} needlessly escaped in {encoded:?}"
            );
            i += 3;
        } else {
            assert!(
                is_kept(bytes[i]),
                "{:#04x} left raw in {encoded:?}",
                bytes[i]
            );
            i += 1;
        }
    }
}

fn decode(encoded: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(encoded).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut split = usize::from(split).min(text.len());
    while !text.is_char_boundary(split) {
        split -= 1;
    }
    let (base, key) = text.split_at(split);

    let result = ObjectKey::new(base, key);
    let acceptable = !key.is_empty()
        && !key.chars().any(char::is_control)
        && base.len() + key.len() <= MAX_KEY_BYTES;
    assert_eq!(result.is_ok(), acceptable, "{base:?} + {key:?}: {result:?}");
    let Ok(object) = result else {
        return;
    };

    let full = format!("{base}{key}");
    assert_eq!(object.as_str(), full);
    assert!((1..=MAX_KEY_BYTES).contains(&object.as_str().len()));
    let encoded = object.encoded();
    assert_canonical(&encoded);
    assert!(
        decode(&encoded) == full.as_bytes(),
        "{encoded:?} does not decode to {full:?}"
    );

    let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for target in targets() {
        for operation in [Operation::Get, Operation::Put, Operation::Delete] {
            let mut request = request::build(&target.config, operation, &object, Vec::new())
                .unwrap_or_else(|e| panic!("{full:?} with {:?}: {e}", target.host));
            assert_eq!(request.method(), operation.method());
            let uri = request.uri().clone();
            assert_eq!(uri.scheme_str(), Some(target.scheme));
            assert_eq!(uri.host(), Some(target.host), "{full:?}");
            assert_eq!(uri.port_u16(), target.port, "{full:?}");
            assert_eq!(uri.query(), None, "{full:?}");
            let path = uri.path().to_owned();
            let in_path = path
                .strip_prefix(target.path_prefix)
                .unwrap_or_else(|| panic!("{path:?} lost its prefix {:?}", target.path_prefix));
            assert_eq!(in_path, encoded);
            assert!(decode(in_path) == full.as_bytes());
            // The URI's text must read back as the same URI (what goes on the wire is text).
            let reparsed: Uri = uri.to_string().parse().expect("the URI re-parses");
            assert_eq!(reparsed, uri);

            if operation == Operation::Get {
                let credentials = target.config.credentials.clone();
                sign::Signer::new(credentials, target.config.region.clone())
                    .sign(&mut request, time)
                    .unwrap_or_else(|e| panic!("cannot sign {full:?}: {e}"));
                assert!(request.headers().contains_key("authorization"));
                assert_eq!(request.uri(), &uri, "signing changed the URI");
            }
        }
    }
});
