//! Expected bytes below are what CPython 3.11's `json.dumps` and Celery 5.6 write for the
//! same inputs (the end-to-end interop tests check against a live Celery as well).

use std::time::Duration;

use serde_json::json;

use super::*;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn keys_follow_celery_prefix_rules() {
    assert_eq!(task_key("", "abc").unwrap(), "celery-task-meta-abc");
    assert_eq!(
        task_key("myapp", "abc").unwrap(),
        "myapp_celery-task-meta-abc"
    );
    for sep in [":", "_", "-", "."] {
        assert_eq!(
            task_key(&format!("myapp{sep}"), "abc").unwrap(),
            format!("myapp{sep}celery-task-meta-abc")
        );
    }
    assert_eq!(group_key("", "g1").unwrap(), "celery-taskset-meta-g1");
    assert!(matches!(task_key("", ""), Err(Error::InvalidKey(m)) if m.contains("task id")));
    assert!(matches!(group_key("p", ""), Err(Error::InvalidKey(m)) if m.contains("group id")));
}

#[test]
fn python_json_formatting() {
    assert_eq!(python_json(&json!({"x": 1})), r#"{"x": 1}"#);
    assert_eq!(
        python_json(&Value::String("é€日本🎉\u{7f}\u{1}\n\t\"\\/".into())),
        r#""\u00e9\u20ac\u65e5\u672c\ud83c\udf89\u007f\u0001\n\t\"\\/""#
    );
    assert_eq!(
        python_json(&parse(
            "[1.0, 0.1, 1e16, 1e15, 1e-5, 0.0001, 123456789.123, -0.0, 2.5e-7, \
             1.7976931348623157e308, 5e-324, 100000.0, 3.14159]"
        )),
        "[1.0, 0.1, 1e+16, 1000000000000000.0, 1e-05, 0.0001, 123456789.123, -0.0, 2.5e-07, \
         1.7976931348623157e+308, 5e-324, 100000.0, 3.14159]"
    );
    assert_eq!(
        python_json(&parse("[12345678901234567890123, -0, 0, -12]")),
        "[12345678901234567890123, 0, 0, -12]"
    );
    assert_eq!(
        python_json(&parse(
            r#"{"nested": {"a": [true, false, null], "b": {}}, "empty": []}"#
        )),
        r#"{"nested": {"a": [true, false, null], "b": {}}, "empty": []}"#
    );
    // Key order is kept as given, as Python dicts keep insertion order.
    assert_eq!(
        python_json(&parse(r#"{"b": 1, "a": 2}"#)),
        r#"{"b": 1, "a": 2}"#
    );
}

#[test]
fn float_repr_matches_python() {
    for (f, repr) in [
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e22, "1e+22"),
        (1.5e300, "1.5e+300"),
        (0.5, "0.5"),
        (12.0, "12.0"),
        (-2.5e-7, "-2.5e-07"),
        (123456789.123, "123456789.123"),
    ] {
        assert_eq!(python_float_repr(f), repr, "{f}");
    }
}

#[test]
fn date_done_is_celerys_isoformat() {
    let t = UNIX_EPOCH + Duration::new(1_795_624_449, 244_119_000);
    assert_eq!(date_done(t), "2026-11-25T16:34:09.244119+00:00");
    let whole = UNIX_EPOCH + Duration::from_secs(1_795_624_449);
    assert_eq!(date_done(whole), "2026-11-25T16:34:09+00:00");
    assert_eq!(
        date_done(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00+00:00"
    );
}

#[test]
fn success_meta_is_byte_identical_to_celerys() {
    let meta = TaskMeta {
        task_id: "11111111-1111-1111-1111-111111111111".into(),
        state: State::Success,
        result: json!({"x": 1}),
        date_done: Some("2026-11-25T16:34:09.244119+00:00".into()),
        ..TaskMeta::pending("")
    };
    assert_eq!(
        String::from_utf8(meta.encode()).unwrap(),
        r#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "11111111-1111-1111-1111-111111111111"}"#
    );
}

#[test]
fn failure_meta_is_byte_identical_to_celerys() {
    let meta = TaskMeta {
        task_id: "44444444-4444-4444-4444-444444444444".into(),
        state: State::Failure,
        result: exception("ValueError", vec![json!("boom")], "builtins"),
        traceback: Some("Traceback (most recent call last):\n  ...\nValueError: boom\n".into()),
        date_done: Some("2026-11-25T16:34:09.255149+00:00".into()),
        ..TaskMeta::pending("")
    };
    assert_eq!(
        String::from_utf8(meta.encode()).unwrap(),
        r#"{"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}, "traceback": "Traceback (most recent call last):\n  ...\nValueError: boom\n", "children": [], "date_done": "2026-11-25T16:34:09.255149+00:00", "task_id": "44444444-4444-4444-4444-444444444444"}"#
    );
}

#[test]
fn optional_and_extended_fields_keep_celerys_order() {
    let meta = TaskMeta {
        task_id: "t".into(),
        state: State::Started,
        result: json!({"pid": 123, "hostname": "celery@host"}),
        group_id: Some("g".into()),
        parent_id: Some("p".into()),
        extended: Some(Extended {
            name: Some("app.add".into()),
            args: json!([1, 2]),
            kwargs: json!({}),
            worker: Some("celery@host".into()),
            retries: Some(0),
            queue: Some("celery".into()),
        }),
        ..TaskMeta::pending("")
    };
    assert_eq!(
        String::from_utf8(meta.encode()).unwrap(),
        r#"{"status": "STARTED", "result": {"pid": 123, "hostname": "celery@host"}, "traceback": null, "children": [], "date_done": null, "group_id": "g", "parent_id": "p", "name": "app.add", "args": [1, 2], "kwargs": {}, "worker": "celery@host", "retries": 0, "queue": "celery", "task_id": "t"}"#
    );
    assert_eq!(TaskMeta::decode("t", Some(&meta.encode())).unwrap(), meta);
}

#[test]
fn decoding_reads_celerys_documents_and_missing_means_pending() {
    let stored = br#"{"status": "RETRY", "result": {"exc_type": "Retry", "exc_message": ["later"], "exc_module": "celery.exceptions"}, "traceback": "tb", "children": [], "date_done": null, "task_id": "abc"}"#;
    let meta = TaskMeta::decode("abc", Some(stored)).unwrap();
    assert_eq!(meta.state, State::Retry);
    assert!(meta.state.is_exception() && !meta.state.is_ready());
    assert_eq!(meta.result["exc_message"][0], "later");
    assert_eq!(meta.traceback.as_deref(), Some("tb"));
    assert_eq!(TaskMeta::decode("x", None).unwrap(), TaskMeta::pending("x"));
    assert_eq!(
        TaskMeta::decode("x", Some(b"")).unwrap().state,
        State::Pending
    );
    assert_eq!(State::parse("PROGRESS"), State::Custom("PROGRESS".into()));
    assert!(matches!(
        TaskMeta::decode("x", Some(b"not json")),
        Err(Error::InvalidValue(_))
    ));
    assert!(matches!(
        TaskMeta::decode("x", Some(b"[1]")),
        Err(Error::InvalidValue(_))
    ));
}
