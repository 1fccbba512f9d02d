//! The retry, budget and clock-skew logic, driven by a scripted transport and a fake clock.
//! (Everything that talks to S3 is tested for real, end to end, in `tests/`.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use sha2::Digest;

use super::*;
use crate::config::ConfigInput;

#[derive(Default)]
struct Script {
    answers: RefCell<VecDeque<Result<Response, Error>>>,
    sent: RefCell<Vec<http::Request<Vec<u8>>>>,
    /// Sizes of the batches handed to `send_all`.
    rounds: RefCell<Vec<usize>>,
    /// The operation deadline each request was sent with.
    deadlines: RefCell<Vec<Option<OperationDeadline>>>,
}

impl Transport for &Script {
    fn send(
        &self,
        request: &http::Request<Vec<u8>>,
        limits: &TransportLimits,
    ) -> Result<Response, Error> {
        self.sent.borrow_mut().push(request.clone());
        self.deadlines.borrow_mut().push(limits.operation);
        self.answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Ok(status(200, "")))
    }

    fn send_all(
        &self,
        requests: &[http::Request<Vec<u8>>],
        limits: &TransportLimits,
    ) -> Vec<Result<Response, Error>> {
        self.rounds.borrow_mut().push(requests.len());
        requests.iter().map(|r| self.send(r, limits)).collect()
    }
}

#[derive(Default)]
struct FakeSystem {
    slept: RefCell<Vec<Duration>>,
    elapsed: Cell<Duration>,
}

impl System for &FakeSystem {
    fn now(&self) -> SystemTime {
        // 2026-11-25T12:00:00Z
        UNIX_EPOCH + Duration::from_secs(1_795_608_000)
    }
    fn monotonic(&self) -> Duration {
        self.elapsed.get()
    }
    fn sleep(&self, duration: Duration) {
        self.slept.borrow_mut().push(duration);
        self.elapsed.set(self.elapsed.get() + duration);
    }
    fn random(&self) -> u64 {
        u64::MAX
    }
}

fn status(code: u16, s3_code: &str) -> Response {
    let body = if s3_code.is_empty() {
        Vec::new()
    } else {
        format!("<Error><Code>{s3_code}</Code><Message>m</Message></Error>").into_bytes()
    };
    Response {
        status: code,
        headers: HeaderMap::new(),
        body,
        checked: None,
    }
}

fn config(adjust: impl FnOnce(&mut ConfigInput)) -> Config {
    let mut input = ConfigInput {
        endpoint_url: Some("http://127.0.0.1:9000".into()),
        bucket_name: Some("results".into()),
        access_key_id: Some("AKID".into()),
        secret_access_key: Some("SECRET".into()),
        ..ConfigInput::default()
    };
    adjust(&mut input);
    Config::resolve(&input, std::iter::empty::<(String, String)>()).unwrap()
}

fn script(answers: Vec<Result<Response, Error>>) -> Script {
    Script {
        answers: RefCell::new(answers.into()),
        ..Script::default()
    }
}

#[test]
fn a_transient_failure_is_retried_after_a_jittered_wait() {
    let s = script(vec![Ok(status(503, "SlowDown")), Ok(status(200, ""))]);
    let sys = FakeSystem::default();
    let store = Store::new(config(|_| {}), &s, &sys);
    store.set("k", b"v".to_vec()).unwrap();
    assert_eq!(s.sent.borrow().len(), 2);
    assert_eq!(sys.slept.borrow().len(), 1);
    assert!(sys.slept.borrow()[0] < retry::BASE_BACKOFF);
    // The retry resends the same body, signed with its SHA-256 (over plain HTTP).
    for r in s.sent.borrow().iter() {
        assert_eq!(r.body(), b"v");
        assert_eq!(
            r.headers()["x-amz-content-sha256"],
            "4c94485e0c21ae6c41ce1dfe7b6bfaceea5ab68e40a2476f50208e526f506080"
        );
    }
}

#[test]
fn every_attempt_carries_the_operation_deadline_from_its_start() {
    let s = script(vec![Ok(status(503, "SlowDown")), Ok(status(200, ""))]);
    let sys = FakeSystem::default();
    sys.elapsed.set(Duration::from_secs(40));
    let store = Store::new(config(|c| c.operation_timeout_ms = Some(9_000)), &s, &sys);
    store.get("k").unwrap();
    let expected = Some(OperationDeadline {
        at: Duration::from_secs(49),
        timeout: Duration::from_secs(9),
    });
    // The retry, after a back-off, still ends where the operation does.
    assert_eq!(*s.deadlines.borrow(), vec![expected, expected]);
    // A batch's round starts its own.
    sys.elapsed.set(Duration::from_secs(100));
    store.get_many(&["a", "b"]);
    let deadlines = s.deadlines.borrow();
    assert_eq!(deadlines[2..].len(), 2);
    assert!(
        deadlines[2..]
            .iter()
            .all(|d| d.is_some_and(|d| d.at == Duration::from_secs(109)))
    );
}

#[test]
fn gives_up_after_max_attempts_saying_so() {
    let s = script(vec![
        Err(Error::Transport("connection reset".into())),
        Err(Error::Transport("connection reset".into())),
        Err(Error::Transport("connection reset".into())),
        Ok(status(200, "")),
    ]);
    let sys = FakeSystem::default();
    let store = Store::new(config(|_| {}), &s, &sys);
    let err = store.get("k").unwrap_err();
    assert_eq!(
        err,
        Error::Transport("connection reset (gave up after 3 attempts)".into())
    );
    assert_eq!(s.sent.borrow().len(), 3);
    let one = script(vec![Ok(status(500, "InternalError"))]);
    let store = Store::new(config(|c| c.max_attempts = Some(1)), &one, &sys);
    assert!(matches!(store.delete("k"), Err(Error::S3(i)) if i.status == 500));
    assert_eq!(one.sent.borrow().len(), 1);
}

#[test]
fn client_errors_are_not_retried() {
    let s = script(vec![Ok(status(403, "AccessDenied")), Ok(status(200, ""))]);
    let sys = FakeSystem::default();
    let store = Store::new(config(|_| {}), &s, &sys);
    assert!(matches!(store.get("k"), Err(Error::AccessDenied(_))));
    assert_eq!(s.sent.borrow().len(), 1);
    assert!(sys.slept.borrow().is_empty());
}

#[test]
fn the_operation_timeout_bounds_retries() {
    let failures = (0..10)
        .map(|_| Err(Error::Timeout("first byte".into())))
        .collect();
    let s = script(failures);
    let sys = FakeSystem::default();
    let store = Store::new(
        config(|c| {
            c.max_attempts = Some(10);
            c.operation_timeout_ms = Some(300);
        }),
        &s,
        &sys,
    );
    let err = store.get("k").unwrap_err();
    assert!(
        err.to_string().contains("operation timeout reached"),
        "{err}"
    );
    let total: Duration = sys.slept.borrow().iter().sum();
    assert!(total < Duration::from_millis(300), "{total:?}");
    assert!(s.sent.borrow().len() < 10);
}

#[test]
fn an_exhausted_retry_budget_stops_retries() {
    let sys = FakeSystem::default();
    let failing = Script::default();
    let store = Store::new(config(|_| {}), &failing, &sys);
    let mut messages = Vec::new();
    for _ in 0..60 {
        failing
            .answers
            .borrow_mut()
            .extend((0..3).map(|_| Ok(status(503, "SlowDown"))));
        messages.push(store.get("k").unwrap_err().to_string());
        failing.answers.borrow_mut().clear();
    }
    // 500 tokens pay for 100 retries: 50 operations with two each, then none.
    assert!(
        messages[49].contains("gave up after 3 attempts"),
        "{}",
        messages[49]
    );
    assert!(
        messages[59].contains("retry budget spent"),
        "{}",
        messages[59]
    );
    assert_eq!(failing.sent.borrow().len(), 50 * 3 + 10);
}

#[test]
fn a_skewed_clock_is_corrected_once_and_remembered() {
    let mut skewed = status(403, "RequestTimeTooSkewed");
    // 30 minutes ahead of FakeSystem::now.
    skewed.headers.insert(
        http::header::DATE,
        "Wed, 25 Nov 2026 12:30:00 GMT".parse().unwrap(),
    );
    let s = script(vec![
        Ok(skewed.clone()),
        Ok(status(200, "")),
        Ok(status(200, "")),
    ]);
    let sys = FakeSystem::default();
    let store = Store::new(config(|c| c.max_attempts = Some(1)), &s, &sys);
    store.set("k", b"v".to_vec()).unwrap();
    store.set("k", b"v".to_vec()).unwrap();
    let dates: Vec<String> = s
        .sent
        .borrow()
        .iter()
        .map(|r| r.headers()["x-amz-date"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        dates,
        ["20261125T120000Z", "20261125T123000Z", "20261125T123000Z"]
    );
    // A second skew answer in the same operation is not chased.
    let s = script(vec![Ok(skewed.clone()), Ok(skewed)]);
    let store = Store::new(config(|c| c.max_attempts = Some(1)), &s, &sys);
    assert!(
        matches!(store.get("k"), Err(Error::AccessDenied(i)) if i.code == "RequestTimeTooSkewed")
    );
    assert_eq!(s.sent.borrow().len(), 2);
}

#[test]
fn values_over_the_limit_are_refused_before_sending() {
    let s = Script::default();
    let sys = FakeSystem::default();
    let store = Store::new(config(|c| c.max_value_bytes = Some(4)), &s, &sys);
    store.set("k", b"1234".to_vec()).unwrap();
    let err = store.set("k", b"12345".to_vec()).unwrap_err();
    assert!(
        matches!(&err, Error::ValueTooLarge(m) if m.contains("5 bytes")),
        "{err}"
    );
    assert_eq!(s.sent.borrow().len(), 1);
}

#[test]
fn invalid_keys_send_nothing() {
    let s = Script::default();
    let sys = FakeSystem::default();
    let store = Store::new(config(|_| {}), &s, &sys);
    assert!(matches!(store.get(""), Err(Error::InvalidKey(_))));
    assert!(s.sent.borrow().is_empty());
}

#[test]
fn no_error_path_reveals_the_secret_or_the_token() {
    const SECRET: &str = "wJalrXUtnFEMI-secret-must-not-leak";
    const TOKEN: &str = "FwoGZXIvYXdzE-token-must-not-leak";
    let secret_config = || {
        config(|c| {
            c.secret_access_key = Some(SECRET.into());
            c.session_token = Some(TOKEN.into());
            c.max_attempts = Some(2);
            c.max_value_bytes = Some(10);
        })
    };
    let mut skewed = status(403, "RequestTimeTooSkewed");
    skewed.headers.insert(
        http::header::DATE,
        "Wed, 25 Nov 2026 12:30:00 GMT".parse().unwrap(),
    );
    let mut corrupted = status(200, "");
    corrupted.body = b"hellp".to_vec();
    corrupted.headers.insert(
        http::header::ETAG,
        "\"5d41402abc4b2a76b9719d911017c592\"".parse().unwrap(),
    );
    let answers: Vec<Vec<Result<Response, Error>>> = vec![
        vec![Ok(status(403, "SignatureDoesNotMatch"))],
        vec![Ok(status(403, "InvalidAccessKeyId"))],
        vec![Ok(status(404, "NoSuchBucket"))],
        vec![
            Ok(status(503, "SlowDown")),
            Ok(status(500, "InternalError")),
        ],
        vec![Ok(status(400, "InvalidArgument"))],
        vec![Ok(skewed.clone()), Ok(skewed)],
        vec![Ok(corrupted.clone()), Ok(corrupted)],
        vec![
            Err(Error::Transport("connection reset".into())),
            Err(Error::Timeout("first byte".into())),
        ],
    ];
    let sys = FakeSystem::default();
    let mut errors = Vec::new();
    for script_answers in answers {
        let s = script(script_answers);
        let store = Store::new(secret_config(), &s, &sys);
        errors.push(store.get("k").unwrap_err());
    }
    let s = Script::default();
    let store = Store::new(secret_config(), &s, &sys);
    errors.push(store.get("").unwrap_err());
    errors.push(store.set("k", vec![0; 11]).unwrap_err());
    errors.push(
        Config::resolve(
            &ConfigInput {
                secret_access_key: Some(SECRET.into()),
                bucket_name: Some("b".into()),
                ..ConfigInput::default()
            },
            [("AWS_SESSION_TOKEN", TOKEN)],
        )
        .unwrap_err(),
    );
    assert_eq!(errors.len(), 11);
    for e in &errors {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
        }
    }
    let debug = format!("{:?} {:?}", secret_config(), store.config());
    assert!(!debug.contains(SECRET) && !debug.contains(TOKEN), "{debug}");
}

#[test]
fn get_many_answers_each_key_in_order_retrying_only_the_failed() {
    let found = |v: &str| {
        let mut r = status(200, "");
        r.body = v.as_bytes().to_vec();
        Ok(r)
    };
    let s = script(vec![
        // The first round: one per valid key.
        found("a"),
        Ok(status(404, "NoSuchKey")),
        Ok(status(503, "SlowDown")),
        Ok(status(403, "AccessDenied")),
        // The retry of the 503.
        found("c"),
    ]);
    let sys = FakeSystem::default();
    let store = Store::new(config(|_| {}), &s, &sys);
    let results = store.get_many(&["a", "b", "", "c", "d"]);
    assert_eq!(results[0], Ok(Some(b"a".to_vec())));
    assert_eq!(results[1], Ok(None));
    assert!(matches!(results[2], Err(Error::InvalidKey(_))));
    assert_eq!(results[3], Ok(Some(b"c".to_vec())));
    assert!(matches!(results[4], Err(Error::AccessDenied(_))));
    let paths: Vec<String> = s
        .sent
        .borrow()
        .iter()
        .map(|r| r.uri().path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/results/a",
            "/results/b",
            "/results/c",
            "/results/d",
            "/results/c"
        ]
    );
}

#[test]
fn a_batch_rounds_attempt_counts_toward_max_attempts() {
    let s = script(vec![
        Ok(status(503, "SlowDown")),
        Ok(status(503, "SlowDown")),
        Ok(status(503, "SlowDown")),
    ]);
    let sys = FakeSystem::default();
    let store = Store::new(config(|c| c.max_attempts = Some(2)), &s, &sys);
    let results = store.get_many(&["a"]);
    // The round's request and one retry: two attempts, as for a single get.
    assert_eq!(s.sent.borrow().len(), 2);
    assert!(
        matches!(&results[0], Err(Error::S3(info)) if info.code == "SlowDown"),
        "{results:?}"
    );
    assert!(format!("{}", results[0].as_ref().unwrap_err()).contains("2 attempts"));
}

#[test]
fn batches_go_out_in_bounded_rounds_and_check_each_entry() {
    let s = Script::default();
    let sys = FakeSystem::default();
    let store = Store::new(config(|c| c.max_value_bytes = Some(3)), &s, &sys);
    let keys: Vec<String> = (0..70).map(|i| format!("k{i}")).collect();
    let entries: Vec<(&str, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.as_str(),
                if i == 5 {
                    b"toolong".to_vec()
                } else {
                    b"v".to_vec()
                },
            )
        })
        .collect();
    let results = store.set_many(entries);
    assert_eq!(results.len(), 70);
    assert!(matches!(results[5], Err(Error::ValueTooLarge(_))));
    assert!(results.iter().enumerate().all(|(i, r)| i == 5 || r.is_ok()));
    assert_eq!(
        *s.rounds.borrow(),
        [MAX_IN_FLIGHT - 1, MAX_IN_FLIGHT, 70 - 2 * MAX_IN_FLIGHT]
    );
    // Every body is covered by its signature (plain HTTP: its SHA-256).
    assert!(s.sent.borrow().iter().all(|r| {
        let sha = sha2::Sha256::digest(r.body());
        r.headers()["x-amz-content-sha256"] == hex::encode(sha).as_str()
    }));
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert!(store.delete_many(&refs).iter().all(Result::is_ok));
    assert_eq!(
        s.sent.borrow().last().unwrap().method(),
        http::Method::DELETE
    );
}
