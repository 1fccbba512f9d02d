//! Celery's result backend through the component against a real S3 server: the documents and
//! keys it writes, and Celery's rules.

use s3_result_store_host::celery::{self, State, TaskMeta};
use s3_result_store_host::{Error, StoreError};
use s3_result_store_tests::{runtime, server, unique_prefix};
use serde_json::json;

fn meta(id: &str, state: State, result: serde_json::Value) -> TaskMeta {
    TaskMeta {
        state,
        result,
        ..TaskMeta::pending(id)
    }
}

#[test]
fn a_stored_result_is_celerys_document_under_celerys_key() {
    let s = server();
    let prefix = unique_prefix("tasks-doc");
    let mut tasks = runtime()
        .open_tasks(&s.config(&prefix), Some("myapp"))
        .unwrap();
    let mut stored = meta(
        "11111111-1111-1111-1111-111111111111",
        State::Success,
        json!({"x": 1}),
    );
    stored.date_done = Some("2026-11-25T16:34:09.244119+00:00".into());
    tasks.store_result(&stored).unwrap();
    let mut raw = runtime().open(&s.config(&prefix)).unwrap();
    let bytes = raw
        .get("myapp_celery-task-meta-11111111-1111-1111-1111-111111111111")
        .unwrap()
        .expect("stored under Celery's key");
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "11111111-1111-1111-1111-111111111111"}"#
    );
    assert_eq!(
        s.list_keys(&prefix),
        vec![format!(
            "{prefix}myapp_celery-task-meta-11111111-1111-1111-1111-111111111111"
        )]
    );
}

#[test]
fn every_state_round_trips_with_its_fields() {
    let s = server();
    let mut tasks = runtime()
        .open_tasks(&s.config(&unique_prefix("tasks-states")), None)
        .unwrap();
    let failure = TaskMeta {
        traceback: Some("Traceback (most recent call last):\n  ...\nValueError: boom\n".into()),
        ..meta(
            "f",
            State::Failure,
            celery::exception("ValueError", vec![json!("boom")], "builtins"),
        )
    };
    let cases = [
        meta("s", State::Success, json!({"é": [1, 2.5, "日本"]})),
        failure,
        meta(
            "st",
            State::Started,
            json!({"pid": 123, "hostname": "celery@host"}),
        ),
        meta(
            "r",
            State::Retry,
            celery::exception("Retry", vec![json!("later")], "celery.exceptions"),
        ),
        meta(
            "p",
            State::Custom("PROGRESS".into()),
            json!({"done": 3, "total": 10}),
        ),
    ];
    for case in &cases {
        let stored = tasks.store_result(case).unwrap();
        let read = tasks.get_meta(&case.task_id).unwrap();
        assert_eq!(read, stored, "{}", case.task_id);
        assert_eq!(read.state, case.state);
        assert_eq!(read.result, case.result);
        assert_eq!(
            read.date_done.is_some(),
            case.state.is_ready(),
            "{}",
            case.task_id
        );
    }
}

#[test]
fn a_success_is_never_overwritten_and_missing_is_pending() {
    let s = server();
    let mut tasks = runtime()
        .open_tasks(&s.config(&unique_prefix("tasks-success")), None)
        .unwrap();
    assert_eq!(tasks.get_meta("t").unwrap(), TaskMeta::pending("t"));
    tasks
        .store_result(&meta("t", State::Success, json!(42)))
        .unwrap();
    let after = tasks
        .store_result(&meta(
            "t",
            State::Failure,
            celery::exception("Lost", vec![], "m"),
        ))
        .unwrap();
    assert_eq!((after.state, after.result), (State::Success, json!(42)));
    assert_eq!(tasks.get_meta("t").unwrap().result, json!(42));
    tasks.forget("t").unwrap();
    assert_eq!(tasks.get_meta("t").unwrap().state, State::Pending);
}

#[test]
fn get_many_reads_a_hundred_tasks_in_one_call() {
    let s = server();
    let mut tasks = runtime()
        .open_tasks(&s.config(&unique_prefix("tasks-many")), None)
        .unwrap();
    let ids: Vec<String> = (0..100).map(|i| format!("task-{i:03}")).collect();
    for id in ids.iter().step_by(2) {
        tasks
            .store_result(&meta(id, State::Success, json!(id)))
            .unwrap();
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let metas = tasks.get_many(&refs).unwrap();
    assert_eq!(metas.len(), 100);
    for (i, m) in metas.into_iter().enumerate() {
        let m = m.unwrap();
        assert_eq!(m.task_id, ids[i]);
        if i % 2 == 0 {
            assert_eq!((m.state, m.result), (State::Success, json!(ids[i])));
        } else {
            assert_eq!(m.state, State::Pending);
        }
    }
}

#[test]
fn groups_save_restore_and_forget() {
    let s = server();
    let mut tasks = runtime()
        .open_tasks(&s.config(&unique_prefix("tasks-group")), None)
        .unwrap();
    assert_eq!(tasks.restore_group("g").unwrap(), None);
    tasks.save_group("g", &["t1", "t2"]).unwrap();
    assert_eq!(
        tasks.restore_group("g").unwrap(),
        Some(vec!["t1".to_owned(), "t2".to_owned()])
    );
    tasks.forget_group("g").unwrap();
    assert_eq!(tasks.restore_group("g").unwrap(), None);
}

#[test]
fn bad_input_is_a_clear_error() {
    let s = server();
    let prefix = unique_prefix("tasks-bad");
    let mut tasks = runtime().open_tasks(&s.config(&prefix), None).unwrap();
    let err = tasks.get_meta("").unwrap_err();
    assert!(matches!(err, Error::Store(StoreError::InvalidKey(m)) if m.contains("task id")));
    let mut raw = runtime().open(&s.config(&prefix)).unwrap();
    raw.set("celery-task-meta-garbage", b"not json").unwrap();
    let err = tasks.get_meta("garbage").unwrap_err();
    assert!(
        matches!(&err, Error::Store(StoreError::InvalidValue(m)) if m.contains("not JSON")),
        "{err}"
    );
}

#[test]
fn cleanup_deletes_old_results_under_the_prefix_only_and_pages_through_many() {
    let s = server();
    let prefix = unique_prefix("tasks-cleanup");
    let mut raw = runtime().open(&s.config(&prefix)).unwrap();
    // More than one page (1000) of task results, a group, and objects cleanup must not touch.
    for i in 0..1010 {
        raw.set(format!("app_celery-task-meta-{i:04}"), b"{}")
            .unwrap();
    }
    raw.set("app_celery-taskset-meta-g", b"{}").unwrap();
    raw.set("app_not-a-result", b"keep").unwrap();
    raw.set("celery-task-meta-other-app", b"keep").unwrap();
    let mut outside = runtime().open(&s.config(&format!("{prefix}x"))).unwrap();
    outside
        .set("app_celery-task-meta-outside", b"keep")
        .unwrap();
    // Old results are at least 3 s older than the fresh one. Servers keep LastModified to the
    // second, so a cutoff between the two, 1.5 s older than the fresh one, tells them apart
    // however slow the server is.
    std::thread::sleep(std::time::Duration::from_millis(3_100));
    let mut tasks = runtime()
        .open_tasks(&s.config(&prefix), Some("app"))
        .unwrap();
    let fresh = meta("fresh", State::Success, json!(1));
    let fresh_written = std::time::Instant::now();
    tasks.store_result(&fresh).unwrap();
    // Whole seconds, rounded up, as cleanup takes them.
    let between = move || {
        let cutoff = fresh_written.elapsed() + std::time::Duration::from_millis(1_500);
        std::time::Duration::from_secs(cutoff.as_secs() + 1)
    };
    assert_eq!(
        tasks.cleanup(std::time::Duration::from_secs(3600)).unwrap(),
        0
    );
    assert_eq!(tasks.cleanup(between()).unwrap(), 1011);
    let left = s.list_keys(&prefix);
    assert_eq!(
        left,
        vec![
            format!("{prefix}app_celery-task-meta-fresh"),
            format!("{prefix}app_not-a-result"),
            format!("{prefix}celery-task-meta-other-app"),
            format!("{prefix}xapp_celery-task-meta-outside"),
        ]
    );
    // Again, and from two stores at once: nothing left to delete, no error.
    let mut other = runtime()
        .open_tasks(&s.config(&prefix), Some("app"))
        .unwrap();
    let age = between();
    let handle = std::thread::spawn(move || other.cleanup(age));
    assert_eq!(tasks.cleanup(age).unwrap(), 0);
    assert_eq!(handle.join().unwrap().unwrap(), 0);
}
