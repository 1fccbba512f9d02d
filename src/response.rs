//! S3 responses: status, headers and body to a value or a typed error.

use http::{HeaderMap, StatusCode, header};
use quick_xml::events::Event;

use crate::error::{Error, S3ErrorInfo};
use crate::request::Operation;

/// A response as the transport received it, body complete.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The transport's verdict on a GET's body, when it checked it as it arrived
    /// (`integrity::BodyCheck`); `None`: it is checked here.
    pub checked: Option<Result<(), Error>>,
}

/// At most this much of a non-XML error body is quoted in a message.
const QUOTE_LIMIT: usize = 200;

/// The result of `operation` given its response: `Some(body)` for a found object (empty for
/// HEAD), `None` for a missing one (GET, HEAD) or for success without a value (PUT, DELETE).
pub fn outcome(
    operation: Operation,
    bucket: &str,
    response: Response,
) -> Result<Option<Vec<u8>>, Error> {
    let status = response.status;
    if (200..300).contains(&status) {
        return match operation {
            Operation::Get => {
                check_length(&response)?;
                match response.checked {
                    Some(verdict) => verdict?,
                    None => crate::integrity::check_body(&response.headers, &response.body)?,
                }
                Ok(Some(response.body))
            }
            // Content-Length and ETag describe the object, not the (empty) body.
            Operation::Head => Ok(Some(Vec::new())),
            Operation::Put | Operation::Delete => Ok(None),
        };
    }
    let error = error_for(bucket, &response);
    match (status, &error) {
        (404, Error::S3(info)) if info.code == "NoSuchKey" && operation != Operation::Put => {
            Ok(None)
        }
        // A HEAD-style 404 with no body, from servers that drop error bodies. A 404 with some
        // other body (a proxy's HTML page) is not evidence that the key is missing.
        (404, Error::S3(info))
            if info.code.is_empty() && response.body.is_empty() && operation != Operation::Put =>
        {
            Ok(None)
        }
        _ => Err(error),
    }
}

/// The typed error for an S3 error response, for any request of the store.
pub(crate) fn error_for(bucket: &str, response: &Response) -> Error {
    let info = parse_error(response);
    match (response.status, info.code.as_str()) {
        (404, "NoSuchBucket") => Error::NoSuchBucket(bucket.to_owned()),
        (401 | 403, _) => Error::AccessDenied(info),
        (_, "AccessDenied" | "SignatureDoesNotMatch" | "InvalidAccessKeyId") => {
            Error::AccessDenied(info)
        }
        _ => Error::S3(info),
    }
}

/// How far the server's clock is ahead of ours, in milliseconds, when S3 refused a request as
/// `RequestTimeTooSkewed`. Taken from the `Date` header; a response with an `Age` header came
/// from a cache and its date says nothing about the server's clock now.
pub fn clock_offset(response: &Response, now: std::time::SystemTime) -> Option<i64> {
    if response.status != 403 || response.headers.contains_key(header::AGE) {
        return None;
    }
    if parse_error(response).code != "RequestTimeTooSkewed" {
        return None;
    }
    let date = response.headers.get(header::DATE)?.to_str().ok()?;
    let server = httpdate::parse_http_date(date).ok()?;
    let millis = |d: std::time::Duration| i64::try_from(d.as_millis()).ok();
    match server.duration_since(now) {
        Ok(ahead) => millis(ahead),
        Err(behind) => millis(behind.duration())?.checked_neg(),
    }
}

/// A body shorter (or longer) than its declared length was cut or corrupted in transit and
/// must never be handed out as the stored value.
pub(crate) fn check_length(response: &Response) -> Result<(), Error> {
    let Some(declared) = response.headers.get(header::CONTENT_LENGTH) else {
        return Ok(());
    };
    let declared = declared
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| Error::Transport("the response has an unreadable Content-Length".into()))?;
    if declared == response.body.len() as u64 {
        Ok(())
    } else {
        Err(Error::Transport(format!(
            "the response body has {} bytes but Content-Length says {declared}",
            response.body.len()
        )))
    }
}

/// Reads `<Error><Code/><Message/><RequestId/></Error>`. Anything else (HTML from a proxy,
/// garbage, nothing) still yields a usable description quoting at most a short prefix.
pub fn parse_error(response: &Response) -> S3ErrorInfo {
    let header_request_id = response
        .headers
        .get("x-amz-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed = parse_error_xml(&response.body);
    let (code, message, request_id) = match parsed {
        Some(fields) => fields,
        None => (String::new(), describe_body(response), None),
    };
    S3ErrorInfo {
        status: response.status,
        code,
        message,
        request_id: request_id.or(header_request_id),
    }
}

type ErrorFields = (String, String, Option<String>);

fn parse_error_xml(body: &[u8]) -> Option<ErrorFields> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut in_error = false;
    let mut current: Option<Vec<u8>> = None;
    let (mut code, mut message, mut request_id) = (String::new(), String::new(), None);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if !in_error {
                    if name != b"Error" {
                        return None;
                    }
                    in_error = true;
                } else {
                    current = Some(name);
                }
            }
            Event::Text(t) => {
                let text = t.decode().ok()?;
                push_field(
                    current.as_deref(),
                    &text,
                    &mut code,
                    &mut message,
                    &mut request_id,
                );
            }
            // Entities arrive as their own events: `&amp;` in a message must read as '&'.
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().ok()? {
                    Some(c) => c.to_string(),
                    None => {
                        quick_xml::escape::resolve_predefined_entity(&r.decode().ok()?)?.to_owned()
                    }
                };
                push_field(
                    current.as_deref(),
                    &resolved,
                    &mut code,
                    &mut message,
                    &mut request_id,
                );
            }
            Event::End(_) => current = None,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    in_error.then_some((code, message, request_id))
}

fn push_field(
    field: Option<&[u8]>,
    text: &str,
    code: &mut String,
    message: &mut String,
    request_id: &mut Option<String>,
) {
    match field {
        Some(b"Code") => code.push_str(text),
        Some(b"Message") => message.push_str(text),
        Some(b"RequestId") => request_id.get_or_insert_with(String::new).push_str(text),
        _ => {}
    }
}

fn describe_body(response: &Response) -> String {
    let reason = StatusCode::from_u16(response.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("unknown status");
    if response.body.is_empty() {
        return reason.to_owned();
    }
    let text = String::from_utf8_lossy(&response.body);
    let mut quoted: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTE_LIMIT)
        .collect();
    if text.chars().count() > QUOTE_LIMIT {
        quoted.push('…');
    }
    format!(
        "{reason}; the body is not an S3 error document: {}",
        quoted.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            checked: None,
        }
    }

    fn s3_error(code: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>msg &amp; more</Message><Resource>/b/k</Resource>\
             <RequestId>RID1</RequestId><HostId>h</HostId></Error>"
        )
    }

    #[test]
    fn get_found_returns_the_body() {
        let mut r = response(200, "value");
        r.headers
            .insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        assert_eq!(outcome(Operation::Get, "b", r), Ok(Some(b"value".to_vec())));
    }

    #[test]
    fn get_with_short_body_is_a_transport_error() {
        let mut r = response(200, "val");
        r.headers
            .insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        assert!(
            matches!(outcome(Operation::Get, "b", r), Err(Error::Transport(m)) if m.contains("3 bytes"))
        );
    }

    #[test]
    fn head_answers_whether_the_object_exists_whatever_its_length() {
        let mut r = response(200, "");
        r.headers
            .insert(header::CONTENT_LENGTH, "5000".parse().unwrap());
        r.headers.insert(
            header::ETAG,
            "\"0123456789abcdef0123456789abcdef\"".parse().unwrap(),
        );
        assert_eq!(outcome(Operation::Head, "b", r), Ok(Some(Vec::new())));
        assert_eq!(outcome(Operation::Head, "b", response(404, "")), Ok(None));
        assert!(matches!(
            outcome(Operation::Head, "b", response(403, "")),
            Err(Error::AccessDenied(_))
        ));
    }

    #[test]
    fn missing_key_is_none_for_get_and_success_for_delete() {
        assert_eq!(
            outcome(Operation::Get, "b", response(404, &s3_error("NoSuchKey"))),
            Ok(None)
        );
        assert_eq!(outcome(Operation::Get, "b", response(404, "")), Ok(None));
        assert_eq!(
            outcome(
                Operation::Delete,
                "b",
                response(404, &s3_error("NoSuchKey"))
            ),
            Ok(None)
        );
        assert_eq!(outcome(Operation::Delete, "b", response(204, "")), Ok(None));
    }

    #[test]
    fn missing_bucket_is_its_own_error() {
        for op in [Operation::Get, Operation::Put, Operation::Delete] {
            assert_eq!(
                outcome(op, "nope", response(404, &s3_error("NoSuchBucket"))),
                Err(Error::NoSuchBucket("nope".into()))
            );
        }
    }

    #[test]
    fn auth_failures_are_access_denied_keeping_the_code() {
        for code in [
            "AccessDenied",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
        ] {
            match outcome(Operation::Get, "b", response(403, &s3_error(code))) {
                Err(Error::AccessDenied(info)) => {
                    assert_eq!(info.code, code);
                    assert_eq!(info.status, 403);
                    assert_eq!(info.message, "msg & more");
                    assert_eq!(info.request_id.as_deref(), Some("RID1"));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_errors_keep_status_code_message_and_request_id() {
        let mut r = response(503, &s3_error("SlowDown"));
        r.headers.insert("x-amz-request-id", "HDR".parse().unwrap());
        match outcome(Operation::Put, "b", r) {
            Err(Error::S3(info)) => {
                assert_eq!((info.status, info.code.as_str()), (503, "SlowDown"));
                assert_eq!(info.request_id.as_deref(), Some("RID1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_bodies_are_described_briefly() {
        let html = format!("<html><body>{}</body></html>", "x".repeat(10_000));
        let mut r = response(502, &html);
        r.headers.insert("x-amz-request-id", "HDR".parse().unwrap());
        match outcome(Operation::Get, "b", r) {
            Err(Error::S3(info)) => {
                assert_eq!(info.code, "");
                assert!(
                    info.message
                        .starts_with("Bad Gateway; the body is not an S3 error")
                );
                assert!(info.message.len() < 400, "{}", info.message.len());
                assert_eq!(info.request_id.as_deref(), Some("HDR"));
            }
            other => panic!("{other:?}"),
        }
        let r = response(500, "\u{0}\u{1}binary\nnoise");
        let Err(Error::S3(info)) = outcome(Operation::Get, "b", r) else {
            panic!()
        };
        assert!(!info.message.contains('\n') && !info.message.contains('\0'));
    }

    fn skewed(date: &str) -> Response {
        let mut r = response(403, &s3_error("RequestTimeTooSkewed"));
        r.headers.insert(header::DATE, date.parse().unwrap());
        r
    }

    #[test]
    fn clock_offset_comes_from_the_date_of_a_skew_error() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap();
        let ahead = skewed("Wed, 25 Nov 2026 12:30:00 GMT");
        assert_eq!(clock_offset(&ahead, now), Some(30 * 60 * 1000));
        let behind = skewed("Wed, 25 Nov 2026 11:40:00 GMT");
        assert_eq!(clock_offset(&behind, now), Some(-20 * 60 * 1000));
    }

    #[test]
    fn clock_offset_ignores_cached_and_other_responses() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 12:00:00 GMT").unwrap();
        let mut cached = skewed("Wed, 25 Nov 2026 12:30:00 GMT");
        cached.headers.insert(header::AGE, "10".parse().unwrap());
        assert_eq!(clock_offset(&cached, now), None);
        let mut denied = response(403, &s3_error("AccessDenied"));
        denied.headers.insert(
            header::DATE,
            "Wed, 25 Nov 2026 12:30:00 GMT".parse().unwrap(),
        );
        assert_eq!(clock_offset(&denied, now), None);
        let mut no_date = skewed("Wed, 25 Nov 2026 12:30:00 GMT");
        no_date.headers.remove(header::DATE);
        assert_eq!(clock_offset(&no_date, now), None);
        let mut bad_date = skewed("Wed, 25 Nov 2026 12:30:00 GMT");
        bad_date
            .headers
            .insert(header::DATE, "yesterday".parse().unwrap());
        assert_eq!(clock_offset(&bad_date, now), None);
    }

    #[test]
    fn get_with_a_corrupted_body_is_an_error() {
        let mut r = response(200, "hellp");
        r.headers.insert(
            header::ETAG,
            "\"5d41402abc4b2a76b9719d911017c592\"".parse().unwrap(),
        );
        assert!(matches!(
            outcome(Operation::Get, "b", r),
            Err(Error::Transport(_))
        ));
    }

    #[test]
    fn a_404_page_from_something_else_is_not_a_missing_key() {
        let r = response(404, "<html>Not Found</html>");
        assert!(matches!(outcome(Operation::Get, "b", r), Err(Error::S3(_))));
    }

    #[test]
    fn put_404_without_code_is_an_error_not_success() {
        assert!(matches!(
            outcome(Operation::Put, "b", response(404, "")),
            Err(Error::S3(_))
        ));
    }
}
