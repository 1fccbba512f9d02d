use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn example_credentials(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: token.map(Into::into),
    }
}

/// Signs with the documentation's example credentials, region and time.
fn sign_example(request: &mut Request<Vec<u8>>) {
    sign(
        request,
        &example_credentials(None),
        "us-east-1",
        example_time(),
    )
    .unwrap();
}

/// 2013-05-24T00:00:00Z, the date of the worked examples in the S3 SigV4 documentation.
fn example_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

#[test]
fn matches_the_documented_get_object_example() {
    let mut request = Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
        .header("range", "bytes=0-9")
        .body(Vec::new())
        .unwrap();
    sign_example(&mut request);
    let auth = request.headers()["authorization"].to_str().unwrap();
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    assert_eq!(request.headers()["x-amz-date"], "20130524T000000Z");
    assert_eq!(
        request.headers()["x-amz-content-sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(
        request.headers().get("host").is_none(),
        "host must be left to the transport"
    );
}

#[test]
fn payload_hash_covers_the_body() {
    let mut request = Request::put("http://127.0.0.1:9000/b/k")
        .body(b"Welcome to Amazon S3.".to_vec())
        .unwrap();
    sign_example(&mut request);
    assert_eq!(
        request.headers()["x-amz-content-sha256"],
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
}

#[test]
fn path_is_signed_as_given_without_normalisation() {
    let sign_path = |path: &str| {
        let mut r = Request::get(format!("http://h:1{path}"))
            .body(Vec::new())
            .unwrap();
        sign_example(&mut r);
        r.headers()["authorization"].to_str().unwrap().to_owned()
    };
    // Distinct keys must give distinct signatures: nothing collapses '//' or '..'.
    let a = sign_path("/b/a/../c");
    let b = sign_path("/b/c");
    let c = sign_path("/b//c");
    assert_ne!(a, b);
    assert_ne!(b, c);
}

#[test]
fn session_token_is_sent_and_sensitive() {
    let mut request = Request::get("http://h:1/b/k").body(Vec::new()).unwrap();
    sign(
        &mut request,
        &example_credentials(Some("TOKEN")),
        "us-east-1",
        example_time(),
    )
    .unwrap();
    let token = &request.headers()["x-amz-security-token"];
    assert_eq!(token, "TOKEN");
    assert!(token.is_sensitive());
    assert!(request.headers()["authorization"].is_sensitive());
}

#[test]
fn unprintable_credentials_are_an_error_not_a_panic() {
    let mut creds = example_credentials(Some("bad\ntoken"));
    let mut request = Request::get("http://h:1/b/k").body(Vec::new()).unwrap();
    let err = sign(&mut request, &creds, "us-east-1", example_time()).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
    creds.session_token = None;
    creds.access_key_id = "bad\nid".into();
    assert!(sign(&mut request, &creds, "us-east-1", example_time()).is_err());
}

/// `aws-sigv4`'s own signer with S3's settings: the reference every signature must match.
fn reference_headers(
    request: &Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Vec<(String, String)> {
    use aws_credential_types::Credentials as AwsCredentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
        SignatureLocation, SigningSettings, UriPathNormalizationMode,
    };
    use aws_sigv4::sign::v4::SigningParams;
    use aws_smithy_runtime_api::client::identity::Identity;

    let identity = Identity::new(
        AwsCredentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            credentials.session_token.clone(),
            None,
            "reference",
        ),
        None,
    );
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.signature_location = SignatureLocation::Headers;
    settings.session_token_mode = SessionTokenMode::Include;
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap()));
    // The signer's own choice of payload treatment (its rule has a test of its own); the
    // reference signs with it.
    let body = if payload_hash(request) == UNSIGNED_PAYLOAD {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(request.body())
    };
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.uri().to_string(),
        headers,
        body,
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let mut added: Vec<(String, String)> = instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    added.sort();
    added
}

/// What [`Signer::sign`] added, in the reference's terms.
fn signed_headers(request: &Request<Vec<u8>>) -> Vec<(String, String)> {
    let mut added: Vec<(String, String)> = [
        "authorization",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-security-token",
    ]
    .iter()
    .filter_map(|name| {
        let value = request.headers().get(*name)?;
        Some(((*name).to_owned(), value.to_str().unwrap().to_owned()))
    })
    .collect();
    added.sort();
    added
}

#[test]
fn the_signing_key_follows_the_utc_date() {
    let credentials = example_credentials(Some("TOKEN"));
    let signer = Signer::new(credentials.clone(), "eu-west-3".into());
    let midnight = example_time() + Duration::from_secs(86_400);
    // Around midnight, back again, and a year on: a stale key would sign for the wrong day.
    for time in [
        midnight - Duration::from_secs(1),
        midnight,
        midnight + Duration::from_secs(3_600),
        midnight - Duration::from_secs(2),
        midnight + Duration::from_secs(366 * 86_400),
    ] {
        let mut request = Request::get("http://h:1/b/k").body(Vec::new()).unwrap();
        let reference = reference_headers(&request, &credentials, "eu-west-3", time);
        signer.sign(&mut request, time).unwrap();
        assert_eq!(signed_headers(&request), reference, "{time:?}");
    }
}

#[test]
fn signing_again_replaces_the_earlier_signature() {
    let credentials = example_credentials(None);
    let signer = Signer::new(credentials.clone(), "us-east-1".into());
    let mut request = Request::put("http://h:1/b/k").body(b"v".to_vec()).unwrap();
    let unsigned = request.clone();
    signer.sign(&mut request, example_time()).unwrap();
    let later = example_time() + Duration::from_secs(900);
    signer.sign(&mut request, later).unwrap();
    assert_eq!(
        signed_headers(&request),
        reference_headers(&unsigned, &credentials, "us-east-1", later)
    );
    assert_eq!(request.headers().get_all("authorization").iter().count(), 1);
}

#[test]
fn over_tls_a_body_with_a_checked_digest_is_sent_unsigned_and_otherwise_hashed() {
    let payload = |uri: &str, md5: bool, body: &[u8]| {
        let mut builder = Request::put(uri);
        if md5 {
            builder = builder.header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==");
        }
        let mut request = builder.body(body.to_vec()).unwrap();
        sign_example(&mut request);
        request.headers()["x-amz-content-sha256"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let hashed = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    let body = b"Welcome to Amazon S3.";
    assert_eq!(payload("https://h/b/k", true, body), "UNSIGNED-PAYLOAD");
    assert_eq!(payload("https://h/b/k", false, body), hashed);
    assert_eq!(payload("http://h/b/k", true, body), hashed);
    assert_eq!(payload("https://h/b/k", true, b""), EMPTY_SHA256);
    // A flexible checksum the server checks does as well as Content-MD5.
    let mut request = Request::put("https://h/b/k")
        .header("x-amz-checksum-crc32c", "mnG7TA==")
        .body(body.to_vec())
        .unwrap();
    sign_example(&mut request);
    assert_eq!(
        request.headers()["x-amz-content-sha256"],
        "UNSIGNED-PAYLOAD"
    );
}

#[test]
fn debug_shows_no_secret() {
    let signer = Signer::new(example_credentials(Some("TOKEN")), "us-east-1".into());
    let mut request = Request::get("http://h:1/b/k").body(Vec::new()).unwrap();
    signer.sign(&mut request, example_time()).unwrap();
    let debug = format!("{signer:?}");
    assert!(debug.contains("AKIAIOSFODNN7EXAMPLE"), "{debug}");
    assert!(!debug.contains("wJalrXUtnFEMI"), "{debug}");
    assert!(!debug.contains("TOKEN"), "{debug}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Header values as S3 requests carry them: printable ASCII with runs of spaces.
    fn header_value() -> impl Strategy<Value = String> {
        "[ -~]{0,40}"
    }

    fn header_name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "content-length",
            "content-md5",
            "content-type",
            "if-match",
            "if-none-match",
            "range",
            "user-agent",
            "x-amz-checksum-crc32c",
            "x-amz-meta-s3rs-write-id",
            "x-amzn-trace-id",
        ])
    }

    /// One query part as it may be written on the wire: plain, `%XX`, `+`, or a character the
    /// canonical form encodes.
    fn query_part() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                "[A-Za-z0-9._~-]{1,6}",
                Just("+".to_owned()),
                Just("%2F".to_owned()),
                Just("%2b".to_owned()),
                Just("%C3%A9".to_owned()),
                Just("%FF".to_owned()),
                Just("!".to_owned()),
                Just("*".to_owned()),
                Just("/".to_owned()),
                Just(":".to_owned()),
                Just("$".to_owned()),
                Just("'".to_owned()),
            ],
            0..5,
        )
        .prop_map(|parts| parts.concat())
    }

    fn query() -> impl Strategy<Value = String> {
        prop::collection::vec((query_part(), prop::option::of(query_part())), 0..5).prop_map(
            |pairs| {
                pairs
                    .into_iter()
                    .map(|(name, value)| match value {
                        Some(value) => format!("{name}={value}"),
                        None => name,
                    })
                    .collect::<Vec<_>>()
                    .join("&")
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Every request signs exactly as `aws-sigv4` signs it: method, authority (default
        /// ports), encoded path, query in any order and encoding, headers with repeated
        /// values and spaces, body, session token, time.
        #[test]
        fn signatures_equal_aws_sigv4s(
            method in prop::sample::select(vec!["GET", "HEAD", "PUT", "DELETE", "POST"]),
            authority in prop::sample::select(vec![
                "http://127.0.0.1:9000", "http://h:80", "https://h:443", "https://b.s3.amazonaws.com",
                "http://bucket.localhost:3900", "https://[::1]:8443",
            ]),
            key in "[^\\p{Cc}]{0,40}",
            query in query(),
            headers in prop::collection::vec((header_name(), header_value()), 0..6),
            body in prop::collection::vec(any::<u8>(), 0..80),
            token in prop::option::of("[!-~]{1,30}"),
            region in prop::sample::select(vec!["us-east-1", "eu-central-1", "garage"]),
            seconds in 0u64..4_000_000_000,
        ) {
            let path: String = percent_encoding::utf8_percent_encode(&key, QUERY_ENCODE_SET)
                .to_string()
                .replace("%2F", "/");
            let uri = if query.is_empty() {
                format!("{authority}/bucket/{path}")
            } else {
                format!("{authority}/bucket/{path}?{query}")
            };
            let mut builder = Request::builder().method(method).uri(&uri);
            for (name, value) in &headers {
                builder = builder.header(*name, value.as_str());
            }
            let mut request = builder.body(body).unwrap();
            let credentials = Credentials {
                access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: token,
            };
            let time = UNIX_EPOCH + Duration::from_secs(seconds);
            let reference = reference_headers(&request, &credentials, region, time);
            Signer::new(credentials, region.to_owned()).sign(&mut request, time).unwrap();
            prop_assert_eq!(signed_headers(&request), reference, "{}", uri);
        }
    }
}

#[test]
fn numbers_are_padded_as_format_pads_them() {
    for (n, width) in [
        (0, 4),
        (7, 2),
        (59, 2),
        (2026, 4),
        (12_345, 4),
        (u64::MAX, 4),
        (3, 0),
    ] {
        let mut out = String::new();
        push_padded(&mut out, n, width);
        assert_eq!(out, format!("{n:0width$}"));
    }
    let mut hex = String::new();
    push_hex(&mut hex, &[0x00, 0x0f, 0xa5, 0xff]);
    assert_eq!(hex, "000fa5ff");
    // Longer than one buffer.
    let bytes: Vec<u8> = (0..=255).collect();
    let mut hex = String::new();
    push_hex(&mut hex, &bytes);
    assert_eq!(hex, hex::encode(&bytes));
}
