//! Cleanup of old results in bulk: ListObjectsV2 pages and DeleteObjects batches, as unsigned
//! `http::Request`s and parsers of their responses. No I/O here; the store sends and signs.
//!
//! Listings are requested without `encoding-type=url` (s3s-fs ignores it), so keys arrive as
//! plain XML text. The query string is written exactly in SigV4's canonical form (names
//! sorted, values percent-encoded over the RFC 3986 unreserved set, `%XX` upper case), so the
//! server, which canonicalises what it received, computes the signature that was signed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, Request, Uri, header};
use percent_encoding::utf8_percent_encode;
use quick_xml::events::Event;

use crate::config::{AddressingStyle, Config};
use crate::error::Error;
use crate::key::MAX_KEY_BYTES;
use crate::response::{self, Response};
use crate::sign::QUERY_ENCODE_SET;

/// S3's limit on the keys of one DeleteObjects request.
pub const MAX_DELETE_KEYS: usize = 1000;

/// S3's limit on the keys of one ListObjectsV2 page; larger `max-keys` are capped to it.
pub const MAX_LIST_KEYS: u32 = 1000;

/// At most this many characters of a value from a response are quoted in an error message.
const QUOTE_LIMIT: usize = 100;

/// Deeper XML than this is no S3 listing; refusing it bounds the parser's memory.
const MAX_DEPTH: usize = 16;

/// One page of a ListObjectsV2 listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    /// The token for the next page; always `None` when the page is the last one.
    pub next_continuation_token: Option<String>,
    pub is_truncated: bool,
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The full key, base path included, as stored.
    pub key: String,
    pub last_modified: SystemTime,
    pub size: u64,
}

/// What a DeleteObjects request achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Keys that are gone, including those that were already gone (`NoSuchKey`).
    pub deleted: usize,
    /// `(key, code, message)` for each key S3 refused to delete.
    pub errors: Vec<(String, String, String)>,
}

/// A ListObjectsV2 request for up to `max_keys` keys starting with `prefix`, continuing after
/// a previous page when `continuation_token` is given. `max_keys` is capped at 1000.
pub fn list_objects_request(
    config: &Config,
    prefix: &str,
    continuation_token: Option<&str>,
    max_keys: u32,
) -> Result<Request<Vec<u8>>, Error> {
    if max_keys == 0 {
        return Err(Error::InvalidConfig(
            "a listing needs max-keys of at least 1".into(),
        ));
    }
    let max_keys = max_keys.min(MAX_LIST_KEYS).to_string();
    let mut params = vec![("list-type", "2"), ("max-keys", max_keys.as_str())];
    if !prefix.is_empty() {
        params.push(("prefix", prefix));
    }
    if let Some(token) = continuation_token {
        params.push(("continuation-token", token));
    }
    let uri = bucket_uri(config, &encode_query(&mut params))?;
    Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Vec::new())
        .map_err(|e| Error::InvalidConfig(format!("cannot form a request: {e}")))
}

/// The page a ListObjectsV2 response carries, or the error it reports. `bucket` names the
/// bucket in `Error::NoSuchBucket`.
pub fn parse_list_objects(bucket: &str, response: Response) -> Result<ListPage, Error> {
    if !is_success(&response) {
        return Err(response::error_for(bucket, &response));
    }
    response::check_length(&response)?;
    let mut objects = Vec::new();
    let mut current: Option<PartialObject> = None;
    let mut is_truncated: Option<String> = None;
    let mut next_token: Option<String> = None;
    let mut encoding_type: Option<String> = None;
    let root = walk(&response.body, "ListObjectsV2", |event| {
        match event {
            Walk::Start(path) => {
                if path == ["Contents"] {
                    current = Some(PartialObject::default());
                }
            }
            Walk::End(path, text) => match path {
                ["Contents"] => {
                    let partial = current.take().unwrap_or_default();
                    objects.push(partial.finish()?);
                }
                ["Contents", field] => {
                    if let Some(partial) = current.as_mut() {
                        match *field {
                            "Key" => partial.key = Some(text),
                            "LastModified" => partial.last_modified = Some(text),
                            "Size" => partial.size = Some(text),
                            _ => {}
                        }
                    }
                }
                ["IsTruncated"] => is_truncated = Some(text),
                ["NextContinuationToken"] => next_token = Some(text),
                ["EncodingType"] => encoding_type = Some(text),
                _ => {}
            },
        }
        Ok(())
    })?;
    match root.as_str() {
        "ListBucketResult" => {}
        "Error" => return Err(response::error_for(bucket, &response)),
        other => {
            return Err(malformed(
                "ListObjectsV2",
                format!("the document is <{}>, not <ListBucketResult>", quote(other)),
            ));
        }
    }
    if encoding_type.is_some_and(|t| !t.trim().is_empty()) {
        // Keys would be URL-encoded; deleting them as they read would miss every one.
        return Err(malformed(
            "ListObjectsV2",
            "the server encoded the keys though no encoding-type was requested",
        ));
    }
    let is_truncated = match is_truncated.as_deref().map(str::trim) {
        Some("true") => true,
        Some("false") => false,
        None => next_token.is_some(),
        Some(other) => {
            return Err(malformed(
                "ListObjectsV2",
                format!("IsTruncated is {:?}, not true or false", quote(other)),
            ));
        }
    };
    let next_continuation_token = if is_truncated {
        match next_token {
            Some(token) if !token.is_empty() => Some(token),
            _ => {
                return Err(malformed(
                    "ListObjectsV2",
                    "the page is truncated but has no NextContinuationToken",
                ));
            }
        }
    } else {
        None
    };
    Ok(ListPage {
        objects,
        next_continuation_token,
        is_truncated,
    })
}

/// A quiet DeleteObjects request for `keys` (1 to 1000 full keys, as listed), with the
/// `Content-MD5` S3 requires for it.
pub fn delete_objects_request(config: &Config, keys: &[String]) -> Result<Request<Vec<u8>>, Error> {
    if keys.is_empty() {
        return Err(Error::InvalidKey("no keys to delete".into()));
    }
    if keys.len() > MAX_DELETE_KEYS {
        return Err(Error::InvalidKey(format!(
            "{} keys in one DeleteObjects request; S3 allows at most {MAX_DELETE_KEYS}",
            keys.len()
        )));
    }
    let mut body = String::with_capacity(120 + keys.iter().map(|k| k.len() + 30).sum::<usize>());
    body.push_str(r#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>"#);
    for (index, key) in keys.iter().enumerate() {
        check_deletable(index, key)?;
        body.push_str("<Object><Key>");
        push_xml_escaped(&mut body, key);
        body.push_str("</Key></Object>");
    }
    body.push_str("</Delete>");
    let body = body.into_bytes();
    let uri = bucket_uri(config, "delete")?;
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CONTENT_TYPE, "application/xml")
        .body(body)
        .map_err(|e| Error::InvalidConfig(format!("cannot form a request: {e}")))?;
    crate::integrity::add_content_md5(&mut request);
    Ok(request)
}

/// What a DeleteObjects response reports for a request of `requested` keys. In quiet mode S3
/// lists only failures, so every key not reported as failed is deleted; a key reported as
/// `NoSuchKey` is already gone and counts as deleted (concurrent cleanups are harmless).
pub fn parse_delete_objects(
    bucket: &str,
    response: Response,
    requested: usize,
) -> Result<DeleteOutcome, Error> {
    if !is_success(&response) {
        return Err(response::error_for(bucket, &response));
    }
    response::check_length(&response)?;
    let mut listed_deleted = 0usize;
    let mut already_gone = 0usize;
    let mut errors = Vec::new();
    let mut current = (String::new(), String::new(), String::new());
    let root = walk(&response.body, "DeleteObjects", |event| {
        match event {
            Walk::Start(path) => {
                if path == ["Error"] {
                    current = Default::default();
                }
            }
            Walk::End(path, text) => match path {
                ["Deleted"] => listed_deleted += 1,
                ["Error"] => {
                    let entry = std::mem::take(&mut current);
                    if entry.1 == "NoSuchKey" {
                        already_gone += 1;
                    } else {
                        errors.push(entry);
                    }
                }
                ["Error", "Key"] => current.0 = text,
                ["Error", "Code"] => current.1 = text,
                ["Error", "Message"] => current.2 = text,
                _ => {}
            },
        }
        Ok(())
    })?;
    match root.as_str() {
        "DeleteResult" => {}
        // An error document with a 2xx status: the request as a whole failed.
        "Error" => return Err(response::error_for(bucket, &response)),
        other => {
            return Err(malformed(
                "DeleteObjects",
                format!("the document is <{}>, not <DeleteResult>", quote(other)),
            ));
        }
    }
    let accounted = listed_deleted + already_gone + errors.len();
    if accounted > requested {
        return Err(malformed(
            "DeleteObjects",
            format!("the response reports {accounted} keys but {requested} were requested"),
        ));
    }
    Ok(DeleteOutcome {
        deleted: requested - errors.len(),
        errors,
    })
}

/// An ISO 8601 UTC timestamp as S3 writes it (`2026-11-25T16:34:09.000Z`), also without the
/// fraction and with a numeric offset (`+00:00`, `-05:30`). `None` for anything else.
pub fn parse_s3_timestamp(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b[i] != c) || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        for i in 0..9 {
            let d = fraction.get(i).filter(|_| i < len).map_or(0, |d| d - b'0');
            nanos = nanos * 10 + u32::from(d);
        }
        rest = &fraction[len..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let field = |a: u8, b: u8| {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (field(*h1, *h2)?, field(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(seconds.unsigned_abs(), nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `name=value&...` sorted by name, each part percent-encoded over the unreserved set.
fn encode_query(params: &mut [(&str, &str)]) -> String {
    params.sort_unstable();
    let mut query = String::new();
    for (name, value) in params.iter() {
        if !query.is_empty() {
            query.push('&');
        }
        query.extend(utf8_percent_encode(name, QUERY_ENCODE_SET));
        query.push('=');
        query.extend(utf8_percent_encode(value, QUERY_ENCODE_SET));
    }
    query
}

/// The URL of the bucket itself with `query`: `/{bucket}?query` in path style, `/?query` on the
/// bucket's own host. Formatted from validated parts, as `request::object_uri` does.
fn bucket_uri(config: &Config, query: &str) -> Result<Uri, Error> {
    let endpoint = &config.endpoint;
    let (authority, path) = match config.addressing_style {
        AddressingStyle::VirtualHosted => (endpoint.authority(Some(&config.bucket)), "/".into()),
        AddressingStyle::Path | AddressingStyle::Auto => {
            (endpoint.authority(None), format!("/{}", config.bucket))
        }
    };
    Uri::builder()
        .scheme(endpoint.scheme())
        .authority(authority)
        .path_and_query(format!("{path}?{query}"))
        .build()
        .map_err(|e| Error::InvalidConfig(format!("cannot form a request URL: {e}")))
}

/// A key S3 can be asked to delete in an XML 1.0 body.
fn check_deletable(index: usize, key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidKey(format!("key {index} to delete is empty")));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey(format!(
            "key {index} to delete is {} bytes; S3 allows at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    // XML 1.0's Char production: no other C0 control, no U+FFFE or U+FFFF, not even escaped.
    let illegal = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if let Some(c) = key.chars().find(|&c| illegal(c)) {
        return Err(Error::InvalidKey(format!(
            "key {index} to delete contains U+{:04X}, which XML 1.0 cannot carry",
            u32::from(c)
        )));
    }
    Ok(())
}

/// XML-escapes `text` for element content. Tab, newline and carriage return are written as
/// character references so that the parser's line-end and whitespace handling cannot change
/// the key.
fn push_xml_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn is_success(response: &Response) -> bool {
    (200..300).contains(&response.status)
}

/// A transport error for a response that cannot be what it claims; the message is bounded
/// (values quoted from the body are cut to `QUOTE_LIMIT` and the whole to thrice that).
fn malformed(operation: &str, detail: impl std::fmt::Display) -> Error {
    Error::Transport(format!(
        "the {operation} response is not valid: {}",
        cut(&detail.to_string(), 3 * QUOTE_LIMIT)
    ))
}

/// Text from a response, cut to `QUOTE_LIMIT` characters, control characters blanked.
fn quote(text: &str) -> String {
    cut(text, QUOTE_LIMIT)
}

fn cut(text: &str, limit: usize) -> String {
    let mut out: String = text
        .chars()
        .take(limit)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(limit).is_some() {
        out.push('…');
    }
    out
}

#[derive(Default)]
struct PartialObject {
    key: Option<String>,
    last_modified: Option<String>,
    size: Option<String>,
}

impl PartialObject {
    fn finish(self) -> Result<ListedObject, Error> {
        let missing = |field| malformed("ListObjectsV2", format!("a <Contents> has no <{field}>"));
        let key = self.key.ok_or_else(|| missing("Key"))?;
        if key.is_empty() {
            return Err(malformed(
                "ListObjectsV2",
                "a <Contents> has an empty <Key>",
            ));
        }
        let last_modified = self.last_modified.ok_or_else(|| missing("LastModified"))?;
        let last_modified = parse_s3_timestamp(last_modified.trim()).ok_or_else(|| {
            malformed(
                "ListObjectsV2",
                format!(
                    "LastModified {:?} is not a timestamp",
                    quote(&last_modified)
                ),
            )
        })?;
        let size = self.size.ok_or_else(|| missing("Size"))?;
        let size = size.trim().parse::<u64>().map_err(|_| {
            malformed(
                "ListObjectsV2",
                format!("Size {:?} is not a byte count", quote(&size)),
            )
        })?;
        Ok(ListedObject {
            key,
            last_modified,
            size,
        })
    }
}

/// What `walk` reports: the path of an element below the root, on its start and on its end
/// (with its text: entities resolved, nothing trimmed or normalised).
enum Walk<'p> {
    Start(&'p [&'p str]),
    End(&'p [&'p str], String),
}

/// Reads a whole XML document, calling `visit` for every element below the root, and returns
/// the root's local name. Malformed, truncated or oversized documents are a transport error.
fn walk(
    body: &[u8],
    operation: &str,
    mut visit: impl FnMut(Walk<'_>) -> Result<(), Error>,
) -> Result<String, Error> {
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().expand_empty_elements = true;
    let mut root: Option<String> = None;
    let mut root_closed = false;
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let fail = |reader: &quick_xml::Reader<&[u8]>, detail: &dyn std::fmt::Display| {
        malformed(
            operation,
            format!("{detail} at byte {}", reader.buffer_position()),
        )
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| fail(&reader, &format_args!("{e}")))?;
        match event {
            Event::Start(start) => {
                let name = std::str::from_utf8(start.local_name().into_inner())
                    .map_err(|_| fail(&reader, &"an element name is not UTF-8"))?
                    .to_owned();
                text.clear();
                if root_closed {
                    return Err(fail(&reader, &"content after the root element"));
                }
                if root.is_none() {
                    root = Some(name);
                    continue;
                }
                if path.len() >= MAX_DEPTH {
                    return Err(fail(&reader, &"elements nested too deeply"));
                }
                path.push(name);
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                visit(Walk::Start(&names))?;
            }
            Event::End(_) => {
                let content = std::mem::take(&mut text);
                if path.is_empty() {
                    root_closed = true;
                    continue;
                }
                {
                    let names: Vec<&str> = path.iter().map(String::as_str).collect();
                    visit(Walk::End(&names, content))?;
                }
                path.pop();
            }
            Event::Text(t) => {
                let decoded = t
                    .decode()
                    .map_err(|e| fail(&reader, &format_args!("{e}")))?;
                if root.is_none() || root_closed {
                    if !decoded.trim().is_empty() {
                        return Err(fail(&reader, &"text outside the root element"));
                    }
                } else {
                    text.push_str(&decoded);
                }
            }
            Event::CData(c) => {
                let decoded = c
                    .decode()
                    .map_err(|e| fail(&reader, &format_args!("{e}")))?;
                text.push_str(&decoded);
            }
            // Entities arrive as their own events: `&amp;` in a key must read as '&'.
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| fail(&reader, &format_args!("{e}")))?
                {
                    Some(c) => c,
                    None => {
                        let name = r
                            .decode()
                            .map_err(|e| fail(&reader, &format_args!("{e}")))?;
                        let Some(value) = quick_xml::escape::resolve_predefined_entity(&name)
                        else {
                            return Err(fail(
                                &reader,
                                &format_args!("unknown entity &{};", quote(&name)),
                            ));
                        };
                        text.push_str(value);
                        continue;
                    }
                };
                text.push(resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        None => Err(malformed(operation, "the body has no XML document")),
        Some(_) if !root_closed => Err(malformed(operation, "the document ends early")),
        Some(root) => Ok(root),
    }
}

#[cfg(test)]
mod tests;
