//! The application without its wasi:http glue: routing, configuration, the JSON it answers
//! and how store errors become HTTP statuses. Plain Rust, unit-tested natively.

use std::fmt::Write as _;

use crate::bindings::result_store::s3::tasks::TaskStore;
use crate::bindings::result_store::s3::types::{AddressingStyle, Config, Error};

/// The bucket holding Celery's results (Celery's `s3_bucket`). Required.
pub const ENV_BUCKET: &str = "S3RS_BUCKET";
/// Celery's `s3_base_path`, prepended to every key as Celery does. Optional.
pub const ENV_BASE_PATH: &str = "S3RS_BASE_PATH";
/// Celery's `global_keyprefix` transport option. Optional.
pub const ENV_GLOBAL_KEYPREFIX: &str = "S3RS_GLOBAL_KEYPREFIX";

/// The methods the app tells apart; anything else is answered with 405.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Delete,
    Other,
}

/// What the app answers: always a JSON body, except for 204.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What the app needs of the store: the generated `task-store` resource, or a fake in tests.
pub trait Tasks {
    /// Celery's JSON document of the task (PENDING when unknown).
    fn get_document(&self, task_id: &str) -> Result<String, Error>;
    fn forget(&self, task_id: &str) -> Result<(), Error>;
}

impl Tasks for TaskStore {
    fn get_document(&self, task_id: &str) -> Result<String, Error> {
        TaskStore::get_document(self, task_id)
    }

    fn forget(&self, task_id: &str) -> Result<(), Error> {
        TaskStore::forget(self, task_id)
    }
}

/// The store's config and Celery's global key prefix, from the variables above; endpoint,
/// region and credentials are left out, so the store reads them from `AWS_*` itself.
pub fn config_from_env(var: impl Fn(&str) -> Option<String>) -> (Config, Option<String>) {
    // Empty means unset, as the store treats its own fields.
    let var = |name| var(name).filter(|v: &String| !v.is_empty());
    let config = Config {
        endpoint_url: None,
        region: None,
        access_key_id: None,
        secret_access_key: None,
        session_token: None,
        bucket_name: var(ENV_BUCKET),
        base_path: var(ENV_BASE_PATH),
        addressing_style: AddressingStyle::Auto,
        max_attempts: None,
        operation_timeout_ms: None,
        connect_timeout_ms: None,
        first_byte_timeout_ms: None,
        between_bytes_timeout_ms: None,
        max_value_bytes: None,
    };
    (config, var(ENV_GLOBAL_KEYPREFIX))
}

enum Route {
    Health,
    Task(String),
}

/// Answers one request. `open` opens the store (it validates the config and sends nothing);
/// it is called only by the routes that need it.
pub fn handle<S: Tasks>(
    method: Method,
    path_with_query: &str,
    open: impl FnOnce() -> Result<S, Error>,
) -> Response {
    let route = match route(path_with_query) {
        Ok(Some(route)) => route,
        Ok(None) => {
            return error(
                404,
                "not-found",
                &format!(
                    "no such resource: {}; the routes are GET /healthz, GET and DELETE /tasks/{{id}}",
                    path_of(path_with_query)
                ),
            );
        }
        Err(reason) => return error(400, "bad-request", &reason),
    };
    match (route, method) {
        // Healthy means configured: the store opens. S3 itself is not asked, so a health check
        // costs no request and an S3 outage shows on the task routes, as 502/503/504.
        (Route::Health, Method::Get) => match open() {
            Ok(_) => json(200, r#"{"status": "ok"}"#.to_owned()),
            Err(e) => store_error(&e),
        },
        (Route::Health, _) => not_allowed("GET"),
        (Route::Task(id), Method::Get) => match open().and_then(|s| s.get_document(&id)) {
            // As stored, byte for byte; an unknown id is PENDING, as Celery answers.
            Ok(document) => json(200, document),
            Err(e) => store_error(&e),
        },
        (Route::Task(id), Method::Delete) => match open().and_then(|s| s.forget(&id)) {
            Ok(()) => Response {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            },
            Err(e) => store_error(&e),
        },
        (Route::Task(_), Method::Other) => not_allowed("GET, DELETE"),
    }
}

fn path_of(path_with_query: &str) -> &str {
    path_with_query
        .split_once('?')
        .map_or(path_with_query, |(path, _)| path)
}

/// `/healthz` and `/tasks/{id}`, the id one percent-decoded path segment (`a%2Fb` is `a/b`).
fn route(path_with_query: &str) -> Result<Option<Route>, String> {
    let path = path_of(path_with_query);
    if path == "/healthz" {
        return Ok(Some(Route::Health));
    }
    match path.strip_prefix("/tasks/") {
        Some(segment) if !segment.is_empty() && !segment.contains('/') => {
            percent_decode(segment).map(|id| Some(Route::Task(id)))
        }
        _ => Ok(None),
    }
}

/// `%XX` escapes to bytes, which must then be UTF-8 (task ids are strings); a `%` without two
/// hex digits after it is an error rather than taken literally, so no id is guessed at.
fn percent_decode(segment: &str) -> Result<String, String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in task id {segment:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("task id {segment:?} is not UTF-8 once decoded"))
}

/// A JSON string for the error bodies, escaped as Python's `json.dumps` does (non-ASCII as
/// `\uXXXX`), like the task documents beside them.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

fn json(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type", "application/json".to_owned()),
            // A task's state changes until it is ready: never serve it from a cache.
            ("cache-control", "no-store".to_owned()),
        ],
        body,
    }
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    json(
        status,
        format!(
            "{{\"error\": {}, \"message\": {}}}",
            string(kind),
            string(message)
        ),
    )
}

fn not_allowed(allow: &'static str) -> Response {
    let mut response = error(
        405,
        "method-not-allowed",
        &format!("this resource allows {allow}"),
    );
    response.headers.push(("allow", allow.to_owned()));
    response
}

/// A store error as an HTTP answer. The app's own setup is a 500; a task id S3 cannot hold is
/// the client's 400; everything S3 or the network did is the gateway's: 504 for a timeout,
/// 503 when S3 says it is busy or unavailable, 502 otherwise. Messages never carry secrets
/// (the store guarantees it), so they are passed on.
pub fn store_error(e: &Error) -> Response {
    let s3 = |what: &str, i: &crate::bindings::result_store::s3::types::S3Error| {
        let mut m = format!("{what}: HTTP {}", i.status);
        if !i.code.is_empty() {
            let _ = write!(m, " {}", i.code);
        }
        if !i.message.is_empty() {
            let _ = write!(m, ": {}", i.message);
        }
        if let Some(id) = &i.request_id {
            let _ = write!(m, " (request id {id})");
        }
        m
    };
    match e {
        Error::MissingBucketName => error(
            500,
            "missing-bucket-name",
            &format!("the app is not configured: set {ENV_BUCKET}"),
        ),
        Error::MissingCredentials => error(
            500,
            "missing-credentials",
            "the app is not configured: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        Error::InvalidConfig(m) => error(500, "invalid-config", m),
        Error::InvalidKey(m) => error(400, "invalid-task-id", m),
        Error::InvalidValue(m) => error(502, "invalid-value", m),
        Error::ValueTooLarge(m) => error(502, "value-too-large", m),
        Error::NoSuchBucket(b) => error(502, "no-such-bucket", &format!("no such bucket: {b:?}")),
        Error::AccessDenied(i) => error(502, "access-denied", &s3("S3 refused access", i)),
        Error::S3(i) if matches!(i.status, 429 | 503) => {
            error(503, "s3-unavailable", &s3("S3 is unavailable", i))
        }
        Error::S3(i) => error(502, "s3", &s3("S3 answered with an error", i)),
        Error::Transport(m) => error(502, "transport", m),
        Error::Timeout(m) => error(504, "timeout", m),
        // The server lacks something the store needs (conditional writes, ETags): the
        // gateway's problem too, though reading and forgetting never ask for it.
        Error::Unsupported(m) => error(502, "unsupported", m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::result_store::s3::types::S3Error;
    use std::cell::RefCell;

    /// A store that records calls and answers from a script.
    #[derive(Default)]
    struct Fake {
        calls: RefCell<Vec<String>>,
        fail: Option<Error>,
    }

    impl Tasks for &Fake {
        fn get_document(&self, id: &str) -> Result<String, Error> {
            self.calls.borrow_mut().push(format!("get {id}"));
            match &self.fail {
                Some(e) => Err(e.clone()),
                None => Ok(format!(r#"{{"status": "PENDING", "task_id": "{id}"}}"#)),
            }
        }

        fn forget(&self, id: &str) -> Result<(), Error> {
            self.calls.borrow_mut().push(format!("forget {id}"));
            self.fail.clone().map_or(Ok(()), Err)
        }
    }

    fn call(fake: &Fake, method: Method, path: &str) -> Response {
        handle(method, path, || Ok(fake))
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn routes() {
        let fake = Fake::default();
        let r = call(&fake, Method::Get, "/tasks/abc-1?x=1");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, r#"{"status": "PENDING", "task_id": "abc-1"}"#);
        assert_eq!(call(&fake, Method::Delete, "/tasks/abc-1").status, 204);
        assert_eq!(call(&fake, Method::Get, "/healthz").status, 200);
        assert_eq!(*fake.calls.borrow(), ["get abc-1", "forget abc-1"]);
    }

    #[test]
    fn ids_are_percent_decoded() {
        let fake = Fake::default();
        call(&fake, Method::Get, "/tasks/a%2Fb%20c%C3%A9+");
        assert_eq!(*fake.calls.borrow(), ["get a/b cé+"]);
        for bad in ["/tasks/%zz", "/tasks/a%2", "/tasks/%ff"] {
            let r = call(&fake, Method::Get, bad);
            assert_eq!(r.status, 400, "{bad}");
            assert!(
                r.body.starts_with(r#"{"error": "bad-request""#),
                "{}",
                r.body
            );
        }
        assert_eq!(fake.calls.borrow().len(), 1);
    }

    #[test]
    fn unknown_paths_and_methods() {
        let fake = Fake::default();
        for path in [
            "/",
            "/tasks",
            "/tasks/",
            "/tasks/a/b",
            "/healthz/",
            "/task/a",
        ] {
            let r = call(&fake, Method::Get, path);
            assert_eq!(r.status, 404, "{path}");
            assert_eq!(header(&r, "content-type"), Some("application/json"));
            assert!(r.body.starts_with(r#"{"error": "not-found""#), "{}", r.body);
        }
        let r = call(&fake, Method::Other, "/tasks/a");
        assert_eq!((r.status, header(&r, "allow")), (405, Some("GET, DELETE")));
        let r = call(&fake, Method::Delete, "/healthz");
        assert_eq!((r.status, header(&r, "allow")), (405, Some("GET")));
        assert!(fake.calls.borrow().is_empty());
    }

    #[test]
    fn store_errors() {
        let s3 = |status, code: &str| S3Error {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("r1".into()),
        };
        let cases = [
            (Error::MissingBucketName, 500, "missing-bucket-name"),
            (Error::InvalidKey("too long".into()), 400, "invalid-task-id"),
            (
                Error::AccessDenied(s3(403, "SignatureDoesNotMatch")),
                502,
                "access-denied",
            ),
            (Error::NoSuchBucket("b".into()), 502, "no-such-bucket"),
            (Error::S3(s3(503, "SlowDown")), 503, "s3-unavailable"),
            (Error::S3(s3(500, "InternalError")), 502, "s3"),
            (Error::Transport("refused".into()), 502, "transport"),
            (Error::Timeout("first byte".into()), 504, "timeout"),
        ];
        for (e, status, kind) in cases {
            let fake = Fake {
                fail: Some(e),
                ..Fake::default()
            };
            for method in [Method::Get, Method::Delete] {
                let r = call(&fake, method, "/tasks/x");
                assert_eq!(r.status, status, "{kind}");
                assert!(
                    r.body.starts_with(&format!("{{\"error\": \"{kind}\"")),
                    "{}",
                    r.body
                );
            }
        }
        let r = store_error(&Error::AccessDenied(s3(403, "SignatureDoesNotMatch")));
        assert!(
            r.body
                .contains("S3 refused access: HTTP 403 SignatureDoesNotMatch: m (request id r1)"),
            "{}",
            r.body
        );
    }

    #[test]
    fn error_bodies_are_escaped_json() {
        let r = store_error(&Error::Transport("\"t\u{e9}\u{1f600}\"\\\n\tend".into()));
        assert_eq!(
            r.body,
            r#"{"error": "transport", "message": "\"t\u00e9\ud83d\ude00\"\\\n\tend"}"#
        );
    }

    #[test]
    fn health_is_the_config() {
        let r = handle::<&Fake>(Method::Get, "/healthz", || Err(Error::MissingBucketName));
        assert_eq!(r.status, 500);
        assert!(r.body.contains("set S3RS_BUCKET"), "{}", r.body);
    }

    #[test]
    fn config() {
        let env = |pairs: &'static [(&str, &str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let (c, prefix) = config_from_env(env(&[
            ("S3RS_BUCKET", "results"),
            ("S3RS_BASE_PATH", "celery/"),
            ("S3RS_GLOBAL_KEYPREFIX", ""),
        ]));
        assert_eq!(c.bucket_name.as_deref(), Some("results"));
        assert_eq!(c.base_path.as_deref(), Some("celery/"));
        assert_eq!(c.endpoint_url, None);
        assert_eq!(prefix, None);
    }
}
