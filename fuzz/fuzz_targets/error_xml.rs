//! An S3 response from an untrusted server: arbitrary status, body and the headers the core
//! reads (`x-amz-request-id`, `Content-Length`, `ETag`, SSE, `Date`, `Age`), through
//! `response::parse_error`, `response::outcome` (every operation) and `response::clock_offset`.
//! Nothing may panic, and the results keep the promises of `src/response.rs`.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use s3_result_store::error::Error;
use s3_result_store::request::Operation;
use s3_result_store::response::{self, Response};

/// Statuses the core treats specially, so that they come up often.
const STATUSES: [u16; 14] = [
    200, 204, 206, 299, 300, 304, 400, 401, 403, 404, 409, 500, 503, 99,
];

const BUCKET: &str = "fuzz-bucket";

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Even: one of `STATUSES`; odd: `status_raw` (any u16, valid HTTP or not).
    status_pick: u8,
    status_raw: u16,
    request_id: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
    etag: Option<&'a [u8]>,
    sse: Option<&'a [u8]>,
    sse_customer: bool,
    date: Option<&'a [u8]>,
    age: bool,
    now_secs: u32,
    body: &'a [u8],
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: Option<&[u8]>) {
    if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(name, value);
    }
}

fn status_of(input: &Input) -> u16 {
    if input.status_pick.is_multiple_of(2) {
        STATUSES[usize::from(input.status_pick / 2) % STATUSES.len()]
    } else {
        input.status_raw
    }
}

fuzz_target!(|input: Input| {
    let status = status_of(&input);
    let mut headers = HeaderMap::new();
    insert(
        &mut headers,
        HeaderName::from_static("x-amz-request-id"),
        input.request_id,
    );
    insert(&mut headers, header::CONTENT_LENGTH, input.content_length);
    insert(&mut headers, header::ETAG, input.etag);
    insert(
        &mut headers,
        HeaderName::from_static("x-amz-server-side-encryption"),
        input.sse,
    );
    if input.sse_customer {
        headers.insert(
            "x-amz-server-side-encryption-customer-algorithm",
            HeaderValue::from_static("AES256"),
        );
    }
    insert(&mut headers, header::DATE, input.date);
    if input.age {
        headers.insert(header::AGE, HeaderValue::from_static("1"));
    }
    let body = input.body.to_vec();
    let response = Response {
        status,
        headers,
        body: body.clone(),
        checked: None,
    };

    // parse_error: always a description, never a panic.
    let info = response::parse_error(&response);
    assert_eq!(info.status, status);
    assert_eq!(response::parse_error(&response), info, "not deterministic");
    // The XML path needs an `Error` element (its local name); without those bytes the body is
    // surely not S3 XML and the message is the core's own short, printable description.
    let surely_not_xml = !body.windows(5).any(|w| w == b"Error");
    if surely_not_xml {
        assert!(
            info.code.is_empty(),
            "code {:?} from a non-XML body",
            info.code
        );
        assert!(!info.message.is_empty());
        assert!(
            !info.message.chars().any(char::is_control),
            "control character in {:?}",
            info.message
        );
        // Reason phrase (< 40) + fixed text (< 50) + 200 quoted characters + '…'.
        assert!(
            info.message.chars().count() <= 300,
            "message of {} characters",
            info.message.chars().count()
        );
        let header_id = response
            .headers
            .get("x-amz-request-id")
            .and_then(|v| v.to_str().ok());
        assert_eq!(info.request_id.as_deref(), header_id);
    }

    for operation in [
        Operation::Get,
        Operation::Head,
        Operation::Put,
        Operation::Delete,
    ] {
        let result = response::outcome(operation, BUCKET, response.clone());
        if (200..300).contains(&status) {
            match operation {
                Operation::Get => match result {
                    Ok(Some(value)) => assert!(value == body, "2xx GET changed the body"),
                    // A short body or a failed ETag check.
                    Err(Error::Transport(_)) => assert!(
                        response.headers.contains_key(header::CONTENT_LENGTH)
                            || response.headers.contains_key(header::ETAG),
                        "transport error without Content-Length or ETag"
                    ),
                    other => panic!("2xx GET gave {other:?}"),
                },
                // Whatever the headers say: they describe the object, not the body.
                Operation::Head => assert_eq!(result, Ok(Some(Vec::new())), "2xx HEAD"),
                Operation::Put | Operation::Delete => {
                    assert_eq!(result, Ok(None), "2xx {operation:?}")
                }
            }
            continue;
        }
        match result {
            Ok(Some(_)) => panic!("a {status} response to {operation:?} gave a value"),
            Ok(None) => assert!(
                status == 404 && operation != Operation::Put,
                "{status} to {operation:?} counted as success/missing"
            ),
            Err(Error::NoSuchBucket(bucket)) => {
                assert_eq!(bucket, BUCKET);
                assert_eq!((status, info.code.as_str()), (404, "NoSuchBucket"));
            }
            Err(Error::AccessDenied(got)) => assert_eq!(got, info),
            Err(Error::S3(got)) => {
                assert_eq!(got, info);
                assert!(
                    status != 401 && status != 403,
                    "{status} not reported as access denied"
                );
            }
            Err(other) => panic!("a {status} response to {operation:?} gave {other:?}"),
        }
    }

    let now = UNIX_EPOCH + Duration::from_secs(u64::from(input.now_secs));
    let offset = response::clock_offset(&response, now);
    if offset.is_some() {
        assert_eq!(status, 403);
        assert!(!input.age);
        assert_eq!(info.code, "RequestTimeTooSkewed");
    }
});
