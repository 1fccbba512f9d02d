use super::*;
use crate::config::Credentials;
use crate::request::tests::config;
use http::HeaderMap;

fn path_style() -> Config {
    config(Some("http://127.0.0.1:9000"), AddressingStyle::Path)
}

fn response(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: HeaderMap::new(),
        body: body.as_bytes().to_vec(),
        checked: None,
    }
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn http_date(s: &str) -> SystemTime {
    httpdate::parse_http_date(s).unwrap()
}

/// Undoes the query encoding as `aws-sigv4` does before it re-encodes: `+` is a space there,
/// so the wire query must never carry one.
fn decode_query(query: &str) -> Vec<(String, String)> {
    assert!(!query.contains('+'), "{query}");
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

// --- ListObjectsV2 requests ---

#[test]
fn list_request_path_style() {
    let r = list_objects_request(&path_style(), "celery-task-meta-", None, 1000).unwrap();
    assert_eq!(r.method(), Method::GET);
    assert_eq!(
        r.uri().to_string(),
        "http://127.0.0.1:9000/results?list-type=2&max-keys=1000&prefix=celery-task-meta-"
    );
    assert!(r.body().is_empty());
    assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
}

#[test]
fn list_request_virtual_hosted() {
    let c = config(None, AddressingStyle::Auto);
    let r = list_objects_request(&c, "p/", Some("tok"), 10).unwrap();
    assert_eq!(
        r.uri().to_string(),
        "https://results.s3.us-east-1.amazonaws.com/?continuation-token=tok&list-type=2&max-keys=10&prefix=p%2F"
    );
    let c = config(
        Some("http://localhost:3900"),
        AddressingStyle::VirtualHosted,
    );
    let r = list_objects_request(&c, "", None, 5).unwrap();
    assert_eq!(
        r.uri().to_string(),
        "http://results.localhost:3900/?list-type=2&max-keys=5"
    );
}

#[test]
fn list_request_caps_and_refuses_max_keys() {
    let r = list_objects_request(&path_style(), "", None, 50_000).unwrap();
    assert_eq!(r.uri().query(), Some("list-type=2&max-keys=1000"));
    assert!(matches!(
        list_objects_request(&path_style(), "", None, 0),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn awkward_prefixes_and_tokens_are_encoded_once_and_sorted() {
    let c = path_style();
    let r = list_objects_request(&c, "a b+c&d=e/f%g?h#i~j", Some("1/+=="), 7).unwrap();
    assert_eq!(
        r.uri().query(),
        Some(
            "continuation-token=1%2F%2B%3D%3D&list-type=2&max-keys=7&\
             prefix=a%20b%2Bc%26d%3De%2Ff%25g%3Fh%23i~j"
        )
    );
    let r = list_objects_request(&c, "é€ 😀", None, 7).unwrap();
    assert_eq!(
        r.uri().query(),
        Some("list-type=2&max-keys=7&prefix=%C3%A9%E2%82%AC%20%F0%9F%98%80")
    );
}

/// aws-sigv4's own test of its canonical query for this prefix (every printable ASCII
/// character): the query we send is exactly the one it signs.
#[test]
fn wire_query_is_aws_sigv4s_canonical_query() {
    let printable: String = (32u8..127).map(char::from).collect();
    let r = list_objects_request(&path_style(), &printable, None, 1000).unwrap();
    let canonical_prefix = "%20%21%22%23%24%25%26%27%28%29%2A%2B%2C-.%2F0123456789%3A%3B%3C%3D\
        %3E%3F%40ABCDEFGHIJKLMNOPQRSTUVWXYZ%5B%5C%5D%5E_%60abcdefghijklmnopqrstuvwxyz%7B%7C%7D~";
    assert_eq!(
        r.uri().query().unwrap(),
        format!("list-type=2&max-keys=1000&prefix={canonical_prefix}")
    );
    assert_eq!(
        decode_query(r.uri().query().unwrap())[2],
        ("prefix".to_owned(), printable)
    );
}

fn example_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    }
}

/// 2013-05-24T00:00:00Z, the date of the worked examples in the S3 SigV4 documentation.
fn example_time() -> SystemTime {
    at(1_369_353_600)
}

fn signature(request: &Request<Vec<u8>>) -> &str {
    let auth = request.headers()["authorization"].to_str().unwrap();
    auth.rsplit_once("Signature=").unwrap().1
}

#[test]
fn signed_list_request_signs_host_and_payload_hash() {
    let mut r = list_objects_request(&path_style(), "a b+c", Some("t/="), 100).unwrap();
    crate::sign::sign(&mut r, &example_credentials(), "us-east-1", example_time()).unwrap();
    let auth = r.headers()["authorization"].to_str().unwrap();
    assert!(
        auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
        "{auth}"
    );
    assert_eq!(
        r.headers()["x-amz-content-sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // Signing leaves the query as built.
    assert_eq!(
        r.uri().query(),
        Some("continuation-token=t%2F%3D&list-type=2&max-keys=100&prefix=a%20b%2Bc")
    );
}

/// The "GET Bucket (List Objects)" and "GET Bucket Lifecycle" examples of the S3 SigV4
/// documentation, with queries written by this module: a query with values and a valueless
/// sub-resource (as `?delete`) both sign as S3 expects.
#[test]
fn queries_sign_like_the_documented_examples() {
    let sign_uri = |uri: String| {
        let mut r = Request::get(uri).body(Vec::new()).unwrap();
        crate::sign::sign(&mut r, &example_credentials(), "us-east-1", example_time()).unwrap();
        signature(&r).to_owned()
    };
    let query = encode_query(&mut [("prefix", "J"), ("max-keys", "2")]);
    assert_eq!(query, "max-keys=2&prefix=J");
    assert_eq!(
        sign_uri(format!("https://examplebucket.s3.amazonaws.com/?{query}")),
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
    assert_eq!(
        sign_uri("https://examplebucket.s3.amazonaws.com/?lifecycle".into()),
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    );
}

// --- ListObjectsV2 responses ---

const LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Name>results</Name>
    <Prefix>celery-task-meta-</Prefix>
    <KeyCount>3</KeyCount>
    <MaxKeys>3</MaxKeys>
    <IsTruncated>true</IsTruncated>
    <Contents>
        <Key>celery-task-meta-1</Key>
        <LastModified>2026-11-25T16:34:09.000Z</LastModified>
        <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
        <Size>434234</Size>
        <StorageClass>STANDARD</StorageClass>
    </Contents>
    <Contents>
        <Key>celery-task-meta-a&amp;b&lt;c&gt; é€ 😀 &#x41;&#66;</Key>
        <LastModified>2026-11-25T16:34:10Z</LastModified>
        <ETag>&quot;abc&quot;</ETag>
        <Size>0</Size>
        <Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>
        <StorageClass>STANDARD</StorageClass>
    </Contents>
    <Contents>
        <Key>  spaced key  </Key>
        <Size>18446744073709551615</Size>
        <LastModified>2026-11-25T16:34:11.5+00:00</LastModified>
    </Contents>
    <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;

#[test]
fn parses_a_realistic_listing() {
    let page = parse_list_objects("results", response(200, LISTING)).unwrap();
    assert!(page.is_truncated);
    assert_eq!(
        page.next_continuation_token.as_deref(),
        Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    );
    let t = http_date("Wed, 25 Nov 2026 16:34:09 GMT");
    assert_eq!(
        page.objects,
        vec![
            ListedObject {
                key: "celery-task-meta-1".into(),
                last_modified: t,
                size: 434_234,
            },
            ListedObject {
                key: "celery-task-meta-a&b<c> é€ 😀 AB".into(),
                last_modified: t + Duration::from_secs(1),
                size: 0,
            },
            ListedObject {
                key: "  spaced key  ".into(),
                last_modified: t + Duration::from_millis(2500),
                size: u64::MAX,
            },
        ]
    );
}

#[test]
fn parsed_token_feeds_the_next_request() {
    let page = parse_list_objects("results", response(200, LISTING)).unwrap();
    let token = page.next_continuation_token.as_deref();
    let r = list_objects_request(&path_style(), "celery-task-meta-", token, 3).unwrap();
    let params = decode_query(r.uri().query().unwrap());
    assert_eq!(
        params[0],
        (
            "continuation-token".to_owned(),
            "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".to_owned()
        )
    );
}

#[test]
fn last_page_and_empty_listing() {
    let last = r#"<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>
        <Contents><Key>k</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>1</Size></Contents>
        <ContinuationToken>prev</ContinuationToken></ListBucketResult>"#;
    let page = parse_list_objects("b", response(200, last)).unwrap();
    assert!(!page.is_truncated);
    assert_eq!(page.next_continuation_token, None);
    assert_eq!(page.objects.len(), 1);
    assert_eq!(page.objects[0].key, "k");

    let empty = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>nothing-</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"#;
    let page = parse_list_objects("b", response(200, empty)).unwrap();
    assert_eq!(
        page,
        ListPage {
            objects: vec![],
            next_continuation_token: None,
            is_truncated: false
        }
    );
    let self_closing =
        "<ListBucketResult><Prefix/><IsTruncated>false</IsTruncated></ListBucketResult>";
    assert!(parse_list_objects("b", response(200, self_closing)).is_ok());
}

#[test]
fn common_prefixes_are_not_objects() {
    let body = "<ListBucketResult><IsTruncated>false</IsTruncated>\
        <CommonPrefixes><Prefix>dir/</Prefix></CommonPrefixes></ListBucketResult>";
    let page = parse_list_objects("b", response(200, body)).unwrap();
    assert!(page.objects.is_empty());
}

#[test]
fn truncated_page_without_token_is_refused() {
    let body = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
    assert!(matches!(
        parse_list_objects("b", response(200, body)),
        Err(Error::Transport(m)) if m.contains("NextContinuationToken")
    ));
}

#[test]
fn malformed_listings_are_transport_errors() {
    let contents = |inner: &str| {
        format!(
            "<ListBucketResult><IsTruncated>false</IsTruncated><Contents>{inner}</Contents></ListBucketResult>"
        )
    };
    let cases = [
        ("", "no XML document"),
        ("not xml at all", "text outside"),
        (
            "<ListBucketResult><IsTruncated>false</IsTruncated>",
            "ends early",
        ),
        (
            "<ListBucketResult><Contents></ListBucketResult>",
            "not valid",
        ),
        ("<Other/>", "<Other>"),
        (
            "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
            "IsTruncated",
        ),
        (
            "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult><X/>",
            "after the root",
        ),
        (
            "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated></ListBucketResult>",
            "encoded the keys",
        ),
        (
            "<ListBucketResult><Name>&bogus;</Name></ListBucketResult>",
            "unknown entity",
        ),
    ];
    for (body, expected) in cases {
        match parse_list_objects("b", response(200, body)) {
            Err(Error::Transport(m)) => assert!(m.contains(expected), "{body}: {m}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    let bad_contents = [
        (
            "<LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</Size>",
            "no <Key>",
        ),
        (
            "<Key></Key><LastModified>2026-01-01T00:00:00Z</LastModified><Size>1</Size>",
            "empty <Key>",
        ),
        ("<Key>k</Key><Size>1</Size>", "no <LastModified>"),
        (
            "<Key>k</Key><LastModified>2026-01-01T00:00:00Z</LastModified>",
            "no <Size>",
        ),
        (
            "<Key>k</Key><LastModified>yesterday</LastModified><Size>1</Size>",
            "not a timestamp",
        ),
        (
            "<Key>k</Key><LastModified>2026-01-01T00:00:00Z</LastModified><Size>-1</Size>",
            "not a byte count",
        ),
    ];
    for (inner, expected) in bad_contents {
        match parse_list_objects("b", response(200, &contents(inner))) {
            Err(Error::Transport(m)) => assert!(m.contains(expected), "{inner}: {m}"),
            other => panic!("{inner}: {other:?}"),
        }
    }
}

#[test]
fn error_messages_stay_short() {
    let long = "x".repeat(100_000);
    let bodies = [
        format!("<{long}/>"),
        format!("<ListBucketResult><IsTruncated>{long}</IsTruncated></ListBucketResult>"),
        format!(
            "<ListBucketResult><Contents><Key>k</Key><LastModified>{long}</LastModified>\
             <Size>1</Size></Contents></ListBucketResult>"
        ),
        format!("<ListBucketResult><a>&{long};</a></ListBucketResult>"),
        format!("<ListBucketResult>{}", "<a>".repeat(100)),
    ];
    for body in bodies {
        match parse_list_objects("b", response(200, &body)) {
            Err(Error::Transport(m)) => assert!(m.chars().count() < 400, "{}", m.len()),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn short_body_is_refused_before_parsing() {
    let mut r = response(200, LISTING);
    r.headers
        .insert(header::CONTENT_LENGTH, (LISTING.len() + 10).into());
    assert!(matches!(
        parse_list_objects("b", r),
        Err(Error::Transport(m)) if m.contains("Content-Length")
    ));
    let mut r = response(200, LISTING);
    r.headers
        .insert(header::CONTENT_LENGTH, LISTING.len().into());
    assert!(parse_list_objects("b", r).is_ok());
}

fn s3_error(code: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>msg &amp; more</Message><RequestId>RID1</RequestId></Error>"
    )
}

#[test]
fn list_errors_map_like_single_object_operations() {
    assert_eq!(
        parse_list_objects("nope", response(404, &s3_error("NoSuchBucket"))),
        Err(Error::NoSuchBucket("nope".into()))
    );
    for (status, code) in [
        (403, "AccessDenied"),
        (403, "SignatureDoesNotMatch"),
        (401, ""),
        (400, "InvalidAccessKeyId"),
    ] {
        let body = if code.is_empty() {
            String::new()
        } else {
            s3_error(code)
        };
        match parse_list_objects("b", response(status, &body)) {
            Err(Error::AccessDenied(info)) => {
                assert_eq!((info.status, info.code.as_str()), (status, code));
            }
            other => panic!("{status} {code}: {other:?}"),
        }
    }
    match parse_list_objects("b", response(503, &s3_error("SlowDown"))) {
        Err(Error::S3(info)) => {
            assert_eq!((info.status, info.code.as_str()), (503, "SlowDown"));
            assert_eq!(info.message, "msg & more");
            assert_eq!(info.request_id.as_deref(), Some("RID1"));
        }
        other => panic!("{other:?}"),
    }
    // A 404 without NoSuchBucket is no proof the bucket is missing.
    assert!(matches!(
        parse_list_objects("b", response(404, "<html>gone</html>")),
        Err(Error::S3(_))
    ));
    // An error document behind a 200.
    assert!(matches!(
        parse_list_objects("b", response(200, &s3_error("InternalError"))),
        Err(Error::S3(info)) if info.code == "InternalError"
    ));
}

// --- DeleteObjects requests ---

#[test]
fn delete_request_body_is_exact_and_escaped() {
    let keys = vec!["a&b<c>\"d'".to_owned(), "p/é k".to_owned()];
    let r = delete_objects_request(&path_style(), &keys).unwrap();
    let body = std::str::from_utf8(r.body()).unwrap();
    assert_eq!(
        body,
        "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>\
         <Object><Key>a&amp;b&lt;c&gt;&quot;d&apos;</Key></Object>\
         <Object><Key>p/é k</Key></Object></Delete>"
    );
    assert_eq!(r.method(), Method::POST);
    assert_eq!(r.uri().to_string(), "http://127.0.0.1:9000/results?delete");
    assert_eq!(r.headers()[header::CONTENT_LENGTH], body.len().to_string());
    assert_eq!(r.headers()[header::CONTENT_TYPE], "application/xml");
    let mut expected = Request::post("http://h/").body(r.body().clone()).unwrap();
    crate::integrity::add_content_md5(&mut expected);
    assert_eq!(
        r.headers()["content-md5"],
        expected.headers()["content-md5"]
    );
}

#[test]
fn delete_request_virtual_hosted() {
    let c = config(None, AddressingStyle::Auto);
    let r = delete_objects_request(&c, &["k".to_owned()]).unwrap();
    assert_eq!(
        r.uri().to_string(),
        "https://results.s3.us-east-1.amazonaws.com/?delete"
    );
}

#[test]
fn delete_request_body_round_trips_through_an_xml_parser() {
    let keys: Vec<String> = ["tab\there", "cr\rlf\n", "  lead", "&amp;", "]]>", "😀"]
        .map(String::from)
        .to_vec();
    let r = delete_objects_request(&path_style(), &keys).unwrap();
    let mut parsed = Vec::new();
    walk(r.body(), "test", |event| {
        if let Walk::End(["Object", "Key"], text) = event {
            parsed.push(text);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(parsed, keys);
}

#[test]
fn delete_request_limits() {
    let c = path_style();
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    assert!(delete_objects_request(&c, &keys).is_ok());
    let keys: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    assert!(matches!(
        delete_objects_request(&c, &keys),
        Err(Error::InvalidKey(m)) if m.contains("1001")
    ));
    assert!(matches!(
        delete_objects_request(&c, &[]),
        Err(Error::InvalidKey(_))
    ));
    for bad in ["", "nul\0", "bell\u{7}", "\u{FFFE}", &"a".repeat(1025)] {
        assert!(
            matches!(
                delete_objects_request(&c, &["ok".to_owned(), bad.to_owned()]),
                Err(Error::InvalidKey(m)) if m.contains("key 1")
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn signed_delete_request_signs_the_content_md5() {
    let mut r = delete_objects_request(&path_style(), &["k".to_owned()]).unwrap();
    crate::sign::sign(&mut r, &example_credentials(), "us-east-1", example_time()).unwrap();
    let auth = r.headers()["authorization"].to_str().unwrap();
    assert!(
        auth.contains(
            "SignedHeaders=content-length;content-md5;content-type;host;x-amz-content-sha256;x-amz-date,"
        ),
        "{auth}"
    );
}

// --- DeleteObjects responses ---

#[test]
fn quiet_result_counts_failures_and_treats_missing_keys_as_deleted() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Error><Key>locked&amp;key</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Error><Key>gone</Key><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>
</DeleteResult>"#;
    let outcome = parse_delete_objects("b", response(200, body), 5).unwrap();
    assert_eq!(
        outcome,
        DeleteOutcome {
            deleted: 4,
            errors: vec![(
                "locked&key".into(),
                "AccessDenied".into(),
                "Access Denied".into()
            )],
        }
    );
}

#[test]
fn quiet_result_without_errors_deletes_everything() {
    for body in [
        "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
        "<?xml version=\"1.0\"?>\n<DeleteResult></DeleteResult>\n",
    ] {
        assert_eq!(
            parse_delete_objects("b", response(200, body), 3),
            Ok(DeleteOutcome {
                deleted: 3,
                errors: vec![]
            })
        );
    }
}

#[test]
fn verbose_result_with_deleted_entries() {
    let body = "<DeleteResult><Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key>\
        <DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>v</DeleteMarkerVersionId></Deleted>\
        <Error><Key>c</Key><Code>InternalError</Code><Message>oops</Message></Error></DeleteResult>";
    let outcome = parse_delete_objects("b", response(200, body), 3).unwrap();
    assert_eq!(outcome.deleted, 2);
    assert_eq!(
        outcome.errors,
        vec![("c".into(), "InternalError".into(), "oops".into())]
    );
    // More entries than keys requested cannot be a reply to this request.
    assert!(matches!(
        parse_delete_objects("b", response(200, body), 2),
        Err(Error::Transport(m)) if m.contains("3 keys but 2")
    ));
}

#[test]
fn delete_errors_and_malformed_results() {
    assert_eq!(
        parse_delete_objects("nope", response(404, &s3_error("NoSuchBucket")), 1),
        Err(Error::NoSuchBucket("nope".into()))
    );
    assert!(matches!(
        parse_delete_objects("b", response(403, &s3_error("AccessDenied")), 1),
        Err(Error::AccessDenied(_))
    ));
    assert!(matches!(
        parse_delete_objects("b", response(400, &s3_error("MalformedXML")), 1),
        Err(Error::S3(info)) if info.code == "MalformedXML"
    ));
    assert!(matches!(
        parse_delete_objects("b", response(200, &s3_error("InternalError")), 1),
        Err(Error::S3(info)) if info.code == "InternalError"
    ));
    for body in [
        "",
        "<DeleteResult><Error>",
        "<ListBucketResult/>",
        "garbage",
    ] {
        assert!(
            matches!(
                parse_delete_objects("b", response(200, body), 1),
                Err(Error::Transport(_))
            ),
            "{body}"
        );
    }
}

// --- timestamps ---

#[test]
fn timestamps_in_s3s_forms() {
    let base = http_date("Wed, 25 Nov 2026 16:34:09 GMT");
    assert_eq!(parse_s3_timestamp("2026-11-25T16:34:09.000Z"), Some(base));
    assert_eq!(parse_s3_timestamp("2026-11-25T16:34:09Z"), Some(base));
    assert_eq!(parse_s3_timestamp("2026-11-25T16:34:09+00:00"), Some(base));
    assert_eq!(parse_s3_timestamp("2026-11-25T17:34:09+01:00"), Some(base));
    assert_eq!(parse_s3_timestamp("2026-11-25T11:04:09-05:30"), Some(base));
    assert_eq!(
        parse_s3_timestamp("2026-11-25T16:34:09.123456789123Z"),
        Some(base + Duration::from_nanos(123_456_789))
    );
    assert_eq!(
        parse_s3_timestamp("2026-11-25T16:34:09.5Z"),
        Some(base + Duration::from_millis(500))
    );
    assert_eq!(parse_s3_timestamp("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    assert_eq!(
        parse_s3_timestamp("2000-02-29T23:59:59Z"),
        Some(http_date("Tue, 29 Feb 2000 23:59:59 GMT"))
    );
    assert_eq!(
        parse_s3_timestamp("9999-12-31T23:59:59Z"),
        Some(at(253_402_300_799))
    );
}

#[test]
fn timestamps_before_the_epoch_do_not_panic() {
    // Representable natively; elsewhere `None` is an acceptable answer.
    if let Some(t) = parse_s3_timestamp("1969-12-31T23:59:59.250Z") {
        assert_eq!(
            UNIX_EPOCH.duration_since(t).unwrap(),
            Duration::from_millis(750)
        );
    }
}

#[test]
fn bad_timestamps_are_none() {
    for s in [
        "",
        "2026-11-25",
        "2026-11-25 16:34:09Z",
        "2026-11-25T16:34:09",
        "2026-11-25T16:34:09.Z",
        "2026-11-25T16:34:09.000",
        "2026-11-25T16:34:09.000+0000",
        "2026-11-25T16:34:09.000ZZ",
        "2026-13-25T16:34:09Z",
        "2026-00-25T16:34:09Z",
        "2026-02-29T16:34:09Z",
        "1900-02-29T16:34:09Z",
        "2026-04-31T16:34:09Z",
        "2026-11-25T24:00:00Z",
        "2026-11-25T16:60:09Z",
        "2026-11-25T16:34:60Z",
        "2026-11-25T16:34:09+24:00",
        "+026-11-25T16:34:09Z",
        "2026-1a-25T16:34:09Z",
        "２026-11-25T16:34:09Z",
        "2026-11-25T16:34:09.000Z\u{0}",
    ] {
        assert_eq!(parse_s3_timestamp(s), None, "{s:?}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    /// `Wed, 25 Nov 2026 16:34:09 GMT` → `2026-11-25T16:34:09Z`.
    fn iso_from_http_date(date: &str) -> String {
        let parts: Vec<&str> = date.split(' ').collect();
        let month = MONTHS.iter().position(|m| *m == parts[2]).unwrap() + 1;
        format!("{}-{month:02}-{}T{}Z", parts[3], parts[1], parts[4])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Agrees with httpdate on every second from 1970 to 9999.
        #[test]
        fn timestamps_agree_with_httpdate(seconds in 0u64..253_402_300_800, millis in 0u32..1000) {
            let t = at(seconds);
            let iso = iso_from_http_date(&httpdate::fmt_http_date(t));
            prop_assert_eq!(parse_s3_timestamp(&iso), Some(t));
            let with_fraction = iso.replace('Z', &format!(".{millis:03}Z"));
            prop_assert_eq!(
                parse_s3_timestamp(&with_fraction),
                Some(t + Duration::from_millis(u64::from(millis)))
            );
        }

        /// Whatever the prefix and token, the query decodes back to them, holds only
        /// unreserved characters and escapes, and is sorted: it is its own canonical form.
        #[test]
        fn query_is_canonical_and_decodes_to_the_parameters(
            prefix in "\\PC{0,60}",
            token in proptest::option::of("\\PC{1,60}"),
            max_keys in 1u32..5000,
        ) {
            let r = list_objects_request(&path_style(), &prefix, token.as_deref(), max_keys).unwrap();
            prop_assert_eq!(r.uri().path(), "/results");
            let query = r.uri().query().unwrap();
            prop_assert!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%&=".contains(&b)));
            let params = decode_query(query);
            let mut sorted = params.clone();
            sorted.sort();
            prop_assert_eq!(&params, &sorted);
            let mut expected = vec![
                ("list-type".to_owned(), "2".to_owned()),
                ("max-keys".to_owned(), max_keys.min(1000).to_string()),
            ];
            if !prefix.is_empty() {
                expected.push(("prefix".to_owned(), prefix.clone()));
            }
            if let Some(token) = &token {
                expected.push(("continuation-token".to_owned(), token.clone()));
            }
            expected.sort();
            prop_assert_eq!(params, expected);
        }

        /// Any key the store accepts survives the DeleteObjects body and a listing's XML.
        #[test]
        fn keys_round_trip_through_delete_bodies(keys in proptest::collection::vec("[^\\p{Cc}\u{FFFE}\u{FFFF}]{1,40}", 1..20)) {
            let r = delete_objects_request(&path_style(), &keys).unwrap();
            let mut parsed = Vec::new();
            walk(r.body(), "test", |event| {
                if let Walk::End(["Object", "Key"], text) = event {
                    parsed.push(text);
                }
                Ok(())
            }).unwrap();
            prop_assert_eq!(parsed, keys);
        }
    }
}
