//! S3 operations on one object, as unsigned `http::Request`s.

use http::{Method, Request, Uri, header};

use crate::config::{AddressingStyle, Config};
use crate::error::Error;
use crate::key::ObjectKey;

/// The operations of the store, each one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Get,
    /// Whether an object exists, without its value.
    Head,
    Put,
    Delete,
}

impl Operation {
    pub fn method(self) -> Method {
        match self {
            Operation::Get => Method::GET,
            Operation::Head => Method::HEAD,
            Operation::Put => Method::PUT,
            Operation::Delete => Method::DELETE,
        }
    }
}

/// The URL of an object. Built from validated parts by formatting, never by URL joining,
/// so the key can only ever land in the path.
pub fn object_uri(config: &Config, key: &ObjectKey) -> Result<Uri, Error> {
    let endpoint = &config.endpoint;
    // Concatenated rather than `format!`ed: this runs for every request.
    let encoded = key.encoded();
    let mut path = String::with_capacity(config.bucket.len() + encoded.len() + 2);
    let authority = match config.addressing_style {
        AddressingStyle::VirtualHosted => endpoint.authority(Some(&config.bucket)),
        AddressingStyle::Path | AddressingStyle::Auto => {
            path.push('/');
            path.push_str(&config.bucket);
            endpoint.authority(None)
        }
    };
    path.push('/');
    path.push_str(&encoded);
    Uri::builder()
        .scheme(endpoint.scheme())
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| Error::InvalidConfig(format!("cannot form a request URL: {e}")))
}

/// An unsigned request for `operation` on `key`. Only `Put` carries a body.
pub fn build(
    config: &Config,
    operation: Operation,
    key: &ObjectKey,
    body: Vec<u8>,
) -> Result<Request<Vec<u8>>, Error> {
    let uri = object_uri(config, key)?;
    let mut builder = Request::builder().method(operation.method()).uri(uri);
    if operation == Operation::Get {
        // Asks for the object's stored checksum, which makes checking the body a CRC rather
        // than an MD5 (`integrity::check_body`); servers that keep none ignore it.
        builder = builder.header("x-amz-checksum-mode", "ENABLED");
    }
    if !matches!(operation, Operation::Get | Operation::Head) {
        // Explicit because WASI HTTP checks the bytes written against it, and because some
        // servers (s3s) refuse a DELETE without it. Celery sets no Content-Type; neither do we.
        builder = builder.header(header::CONTENT_LENGTH, body.len());
    }
    builder
        .body(body)
        .map_err(|e| Error::InvalidConfig(format!("cannot form a request: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::ConfigInput;

    /// A resolved config for bucket `results` with fixed test keys.
    pub(crate) fn config(endpoint: Option<&str>, style: AddressingStyle) -> Config {
        let input = ConfigInput {
            endpoint_url: endpoint.map(Into::into),
            bucket_name: Some("results".into()),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("SECRET".into()),
            addressing_style: style,
            ..ConfigInput::default()
        };
        Config::resolve(&input, std::iter::empty::<(String, String)>()).unwrap()
    }

    fn uri(c: &Config, key: &str) -> Uri {
        object_uri(c, &ObjectKey::new(&c.base_path, key).unwrap()).unwrap()
    }

    #[test]
    fn path_style_url() {
        let c = config(Some("http://127.0.0.1:9000"), AddressingStyle::Auto);
        assert_eq!(
            uri(&c, "celery-task-meta-1").to_string(),
            "http://127.0.0.1:9000/results/celery-task-meta-1"
        );
    }

    #[test]
    fn virtual_hosted_url() {
        let c = config(None, AddressingStyle::Auto);
        assert_eq!(
            uri(&c, "a b").to_string(),
            "https://results.s3.us-east-1.amazonaws.com/a%20b"
        );
        let c = config(
            Some("http://localhost:3900"),
            AddressingStyle::VirtualHosted,
        );
        assert_eq!(uri(&c, "k").to_string(), "http://results.localhost:3900/k");
    }

    #[test]
    fn hostile_keys_stay_in_the_path() {
        for style in [AddressingStyle::Path, AddressingStyle::VirtualHosted] {
            let c = config(Some("http://s3.local:9000"), style);
            for key in [
                "//evil.com/x",
                "/x",
                "a/../../b",
                "?list-type=2",
                "#frag",
                "@evil.com",
                "..",
                "%2F",
            ] {
                let u = uri(&c, key);
                let host = if style == AddressingStyle::Path {
                    "s3.local"
                } else {
                    "results.s3.local"
                };
                assert_eq!(u.host(), Some(host), "{key}");
                assert_eq!(u.port_u16(), Some(9000), "{key}");
                assert_eq!(u.query(), None, "{key}");
                if style == AddressingStyle::Path {
                    assert!(u.path().starts_with("/results/"), "{key}: {}", u.path());
                }
            }
        }
    }

    #[test]
    fn put_carries_body_and_length() {
        let c = config(Some("http://h:1"), AddressingStyle::Path);
        let key = ObjectKey::new("", "k").unwrap();
        let r = build(&c, Operation::Put, &key, b"hello".to_vec()).unwrap();
        assert_eq!(r.method(), Method::PUT);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "5");
        assert_eq!(r.body(), b"hello");
        let r = build(&c, Operation::Get, &key, Vec::new()).unwrap();
        assert_eq!(r.method(), Method::GET);
        assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
        // Asking for the stored checksum, to check the body by it.
        assert_eq!(r.headers()["x-amz-checksum-mode"], "ENABLED");
        let r = build(&c, Operation::Head, &key, Vec::new()).unwrap();
        assert!(r.headers().get("x-amz-checksum-mode").is_none());
        let r = build(&c, Operation::Delete, &key, Vec::new()).unwrap();
        assert_eq!(r.method(), Method::DELETE);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "0");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn decode(path: &str) -> String {
            percent_encoding::percent_decode_str(path)
                .decode_utf8()
                .expect("the encoded path decodes to UTF-8")
                .into_owned()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Whatever the key, the request goes to the configured host, port and bucket, with
            /// no query, and the path decodes to exactly base path + key.
            #[test]
            fn no_key_changes_host_bucket_query_or_escapes_the_base_path(
                key in "[^\\p{Cc}]{1,300}",
                virtual_hosted in any::<bool>(),
                operation in prop::sample::select(vec![Operation::Get, Operation::Put, Operation::Delete]),
            ) {
                let style = if virtual_hosted { AddressingStyle::VirtualHosted } else { AddressingStyle::Path };
                let mut c = config(Some("http://s3.local:9000"), style);
                c.base_path = "tenant-a/".into();
                let object = ObjectKey::new(&c.base_path, &key).unwrap();
                let request = build(&c, operation, &object, Vec::new()).unwrap();
                let uri = request.uri();
                prop_assert_eq!(request.method(), operation.method());
                prop_assert_eq!(uri.scheme_str(), Some("http"));
                prop_assert_eq!(uri.port_u16(), Some(9000));
                prop_assert_eq!(uri.query(), None);
                let path = uri.path();
                let encoded_key = if virtual_hosted {
                    prop_assert_eq!(uri.host(), Some("results.s3.local"));
                    path.strip_prefix('/').unwrap()
                } else {
                    prop_assert_eq!(uri.host(), Some("s3.local"));
                    path.strip_prefix("/results/").unwrap()
                };
                let decoded = decode(encoded_key);
                prop_assert!(decoded.starts_with("tenant-a/"));
                prop_assert_eq!(decoded, format!("tenant-a/{key}"));
            }

            /// Distinct keys give distinct request paths: no two keys can name one object.
            #[test]
            fn distinct_keys_never_share_a_path(a in "[^\\p{Cc}]{1,40}", b in "[^\\p{Cc}]{1,40}") {
                prop_assume!(a != b);
                let ka = ObjectKey::new("", &a).unwrap();
                let kb = ObjectKey::new("", &b).unwrap();
                prop_assert_ne!(ka.encoded(), kb.encoded());
            }
        }
    }
}
