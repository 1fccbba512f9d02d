//! Celery's rules over an in-memory object map (the real servers are in `tests/`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method};
use serde_json::json;

use super::*;
use crate::config::{Config, ConfigInput, TransportLimits};
use crate::response::Response;

#[derive(Default)]
struct Objects {
    map: RefCell<BTreeMap<String, Vec<u8>>>,
    puts: RefCell<usize>,
}

impl Transport for &Objects {
    fn send(&self, r: &http::Request<Vec<u8>>, _: &TransportLimits) -> Result<Response, Error> {
        let path = r.uri().path().to_owned();
        let mut map = self.map.borrow_mut();
        let (status, body) = match *r.method() {
            Method::GET => match map.get(&path) {
                Some(v) => {
                    let mut headers = HeaderMap::new();
                    // Not an MD5, so the integrity check leaves it alone; the precondition
                    // it allows is ignored here anyway (a server like Garage).
                    headers.insert("etag", format!("\"e{}\"", v.len()).parse().unwrap());
                    return Ok(Response {
                        status: 200,
                        headers,
                        body: v.clone(),
                        checked: None,
                    });
                }
                None => (404, b"<Error><Code>NoSuchKey</Code></Error>".to_vec()),
            },
            Method::PUT => {
                *self.puts.borrow_mut() += 1;
                map.insert(path, r.body().clone());
                (200, Vec::new())
            }
            Method::DELETE => {
                map.remove(&path);
                (204, Vec::new())
            }
            _ => (405, Vec::new()),
        };
        Ok(Response {
            status,
            headers: HeaderMap::new(),
            body,
            checked: None,
        })
    }
}

struct Fixed;

impl System for Fixed {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::new(1_795_624_449, 244_119_000)
    }
    fn monotonic(&self) -> Duration {
        Duration::ZERO
    }
    fn sleep(&self, _: Duration) {}
    fn random(&self) -> u64 {
        0
    }
}

fn tasks<'a>(objects: &'a Objects, prefix: &str) -> TaskStore<&'a Objects, Fixed> {
    let input = ConfigInput {
        endpoint_url: Some("http://127.0.0.1:9000".into()),
        bucket_name: Some("results".into()),
        access_key_id: Some("AKID".into()),
        secret_access_key: Some("SECRET".into()),
        base_path: Some("base/".into()),
        ..ConfigInput::default()
    };
    let config = Config::resolve(&input, std::iter::empty::<(String, String)>()).unwrap();
    TaskStore::new(Store::new(config, objects, Fixed), prefix)
}

fn meta(id: &str, state: State, result: Value) -> TaskMeta {
    TaskMeta {
        state,
        result,
        ..TaskMeta::pending(id)
    }
}

#[test]
fn store_result_writes_celerys_document_under_celerys_key() {
    let objects = Objects::default();
    let t = tasks(&objects, "myapp");
    let stored = t
        .store_result(meta("t1", State::Success, json!({"x": 1})))
        .unwrap();
    assert_eq!(
        stored.date_done.as_deref(),
        Some("2026-11-25T16:34:09.244119+00:00")
    );
    let map = objects.map.borrow();
    let value = &map["/results/base/myapp_celery-task-meta-t1"];
    assert_eq!(
        std::str::from_utf8(value).unwrap(),
        r#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "t1"}"#
    );
}

#[test]
fn a_stored_success_is_never_overwritten() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    t.store_result(meta("t", State::Success, json!(42)))
        .unwrap();
    let after = t
        .store_result(meta(
            "t",
            State::Failure,
            celery::exception("E", vec![], "m"),
        ))
        .unwrap();
    assert_eq!(after.state, State::Success);
    assert_eq!(after.result, json!(42));
    assert_eq!(*objects.puts.borrow(), 1);
    assert_eq!(t.get_meta("t").unwrap().result, json!(42));
}

/// Two workers: ours read the task as STARTED, then another stored SUCCESS before our FAILURE
/// arrived. Celery would overwrite the SUCCESS; the conditional write cannot.
#[test]
fn a_success_stored_between_the_read_and_the_write_is_kept() {
    use crate::conditional::tests::{Model, Quick, store};
    let (model, system) = (Model::default(), Quick::default());
    let t = TaskStore::new(store(&model, &system), "");
    t.store_result(meta("t", State::Started, json!(null)))
        .unwrap();
    let success = meta("t", State::Success, json!(42)).encode();
    model.interleave(&success);
    let after = t
        .store_result(meta(
            "t",
            State::Failure,
            celery::exception("E", vec![], "m"),
        ))
        .unwrap();
    assert_eq!(after.state, State::Success);
    assert_eq!(after.result, json!(42));
    assert_eq!(t.get_meta("t").unwrap().state, State::Success);
}

#[test]
fn non_ready_states_carry_no_date_and_may_be_overwritten() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    let mut started = meta("t", State::Started, json!({"pid": 1}));
    started.date_done = Some("2026-01-01T00:00:00+00:00".into());
    assert_eq!(t.store_result(started).unwrap().date_done, None);
    t.store_result(meta("t", State::Retry, json!(null)))
        .unwrap();
    assert_eq!(t.get_meta("t").unwrap().state, State::Retry);
}

#[test]
fn missing_is_pending_and_forget_forgets() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    assert_eq!(t.get_meta("nope").unwrap(), TaskMeta::pending("nope"));
    t.store_result(meta("t", State::Success, json!(1))).unwrap();
    t.forget("t").unwrap();
    assert_eq!(t.get_meta("t").unwrap().state, State::Pending);
    assert!(matches!(t.get_meta(""), Err(Error::InvalidKey(_))));
}

#[test]
fn get_many_reads_every_id_in_order() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    t.store_result(meta("a", State::Success, json!("A")))
        .unwrap();
    t.store_result(meta("c", State::Started, json!(null)))
        .unwrap();
    let metas = t.get_many(&["a", "b", "", "c"]);
    assert_eq!(metas[0].as_ref().unwrap().result, json!("A"));
    assert_eq!(metas[1].as_ref().unwrap().state, State::Pending);
    assert!(matches!(metas[2], Err(Error::InvalidKey(_))));
    assert_eq!(metas[3].as_ref().unwrap().state, State::Started);
}

#[test]
fn groups_are_saved_and_restored_as_celery_does() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    t.save_group("g", &["t1", "t2"]).unwrap();
    assert_eq!(
        std::str::from_utf8(&objects.map.borrow()["/results/base/celery-taskset-meta-g"]).unwrap(),
        r#"{"result": [["g", null], [[["t1", null], null], [["t2", null], null]]]}"#
    );
    assert_eq!(
        t.restore_group("g").unwrap(),
        Some(vec!["t1".into(), "t2".into()])
    );
    t.forget_group("g").unwrap();
    assert_eq!(t.restore_group("g").unwrap(), None);
    objects.map.borrow_mut().insert(
        "/results/base/celery-taskset-meta-bad".into(),
        b"{}".to_vec(),
    );
    assert!(matches!(
        t.restore_group("bad"),
        Err(Error::InvalidValue(_))
    ));
}

#[test]
fn the_document_is_the_stored_bytes_or_celerys_pending_document() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    assert_eq!(
        t.get_document("t").unwrap(),
        r#"{"status": "PENDING", "result": null, "traceback": null, "children": [], "date_done": null, "task_id": "t"}"#
    );
    // Written by another client in its own layout (compact separators, a field Celery added
    // later): served as stored, not re-encoded.
    let stored = r#"{"status":"SUCCESS","result":"caf\u00e9","task_id":"t","extra":1}"#;
    objects.map.borrow_mut().insert(
        "/results/base/celery-task-meta-t".into(),
        stored.as_bytes().to_vec(),
    );
    assert_eq!(t.get_document("t").unwrap(), stored);
    assert_eq!(t.get_meta("t").unwrap().state, State::Success);
}

#[test]
fn a_document_that_is_no_task_meta_is_an_invalid_value() {
    let objects = Objects::default();
    let t = tasks(&objects, "");
    for stored in [
        &b"[1, 2]"[..],
        b"not json",
        b"{\"status\": \"SUCCESS\"",
        b"\xff\xfe",
    ] {
        objects
            .map
            .borrow_mut()
            .insert("/results/base/celery-task-meta-t".into(), stored.to_vec());
        let err = t.get_document("t").unwrap_err();
        assert!(matches!(err, Error::InvalidValue(_)), "{stored:?}: {err:?}");
    }
    assert!(matches!(
        t.get_document("").unwrap_err(),
        Error::InvalidKey(_)
    ));
}
