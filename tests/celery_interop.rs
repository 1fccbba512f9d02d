//! Interop with real Celery (PyPI `celery`, its S3 result backend over boto3) on the same S3
//! server: what Celery writes the component reads, what the component writes Celery reads, and
//! for the same inputs both store the same bytes under the same keys.
//!
//! Celery runs in `support/celery_interop.py`, with the Python of `S3RS_PYTHON` or `.venv`
//! (`pip install -r tests/requirements.txt`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use s3_result_store_host::TaskStore;
use s3_result_store_host::celery::{self, Extended, State, TaskMeta};
use s3_result_store_tests::celery::CeleryApp;
use s3_result_store_tests::{TestServer, report, runtime, server, unique_prefix};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Celery, driven through the Python script

/// One Celery app: `s3_base_path`, the `global_keyprefix` transport option, `result_extended`.
struct Celery<'a> {
    server: &'a TestServer,
    base_path: String,
    global_keyprefix: Option<&'a str>,
    extended: bool,
}

impl Celery<'_> {
    fn run(&self, command: &str, input: &Value) -> Value {
        CeleryApp {
            server: self.server,
            base_path: &self.base_path,
            global_keyprefix: self.global_keyprefix,
            extended: self.extended,
        }
        .run(command, input)
    }

    /// Stores the cases with `backend.store_result` and saves the groups with
    /// `GroupResult.save()`; returns the traceback stored for each task.
    fn write(&self, cases: &[Case], groups: &[Group]) -> BTreeMap<String, Option<String>> {
        let mut input: Vec<Value> = cases.iter().map(Case::to_python).collect();
        input.extend(
            groups
                .iter()
                .map(|g| json!({"group": {"id": g.id, "task_ids": g.task_ids}})),
        );
        let out = self.run("write", &Value::Array(input));
        let Value::Object(out) = out else {
            panic!("write answers an object: {out}")
        };
        out.into_iter()
            .map(|(id, v)| (id, v["traceback"].as_str().map(str::to_owned)))
            .collect()
    }

    /// What Celery's `AsyncResult` and `GroupResult.restore` see.
    fn read(&self, task_ids: &[&str], group_ids: &[&str]) -> (BTreeMap<String, Value>, Value) {
        let out = self.run("read", &json!({"tasks": task_ids, "groups": group_ids}));
        let tasks = out["tasks"]
            .as_array()
            .expect("tasks is a list")
            .iter()
            .map(|t| (t["task_id"].as_str().unwrap().to_owned(), t.clone()))
            .collect();
        (tasks, out["groups"].clone())
    }

    /// `AsyncResult.forget()` and `GroupResult.delete()`.
    fn forget(&self, task_ids: &[&str], group_ids: &[&str]) {
        self.run("forget", &json!({"tasks": task_ids, "groups": group_ids}));
    }

    /// The stored bytes of full keys, read with plain boto3.
    fn raw(&self, keys: &[String]) -> BTreeMap<String, Option<Vec<u8>>> {
        let out = self.run("raw", &json!(keys));
        let Value::Object(out) = out else {
            panic!("raw answers an object: {out}")
        };
        out.into_iter()
            .map(|(k, v)| (k, v.as_str().map(|hex| decode_hex(hex).expect("hex bytes"))))
            .collect()
    }

    /// The full key of a task's meta, spelled out independently of the component.
    fn task_key(&self, key_prefix: &str, task_id: &str) -> String {
        format!("{}{key_prefix}celery-task-meta-{task_id}", self.base_path)
    }

    fn group_key(&self, key_prefix: &str, group_id: &str) -> String {
        format!(
            "{}{key_prefix}celery-taskset-meta-{group_id}",
            self.base_path
        )
    }

    fn tasks(&self) -> TaskStore {
        runtime()
            .open_tasks(&self.server.config(&self.base_path), self.global_keyprefix)
            .unwrap()
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The versions in use, asked once, for the report lines.
fn versions(s: &TestServer) -> &'static str {
    static VERSIONS: OnceLock<String> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        let celery = Celery {
            server: s,
            base_path: unique_prefix("interop-info"),
            global_keyprefix: None,
            extended: false,
        };
        let info = celery.run("info", &json!(null));
        assert_eq!(info["addressing_style"], "path", "{info}");
        format!(
            "Celery {}, boto3 {}, botocore {}, Python {}",
            info["celery"].as_str().unwrap_or("?"),
            info["boto3"].as_str().unwrap_or("?"),
            info["botocore"].as_str().unwrap_or("?"),
            info["python"].as_str().unwrap_or("?"),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Cases: one description, written by either side

#[derive(Clone)]
struct Exc {
    ty: &'static str,
    module: &'static str,
    args: Vec<Value>,
}

#[derive(Clone)]
struct Case {
    id: String,
    state: &'static str,
    /// The result of a non-exception state.
    result: Value,
    /// The exception of a FAILURE, RETRY or REVOKED.
    exception: Option<Exc>,
    traceback: Option<String>,
    /// Celery raises the exception and stores the real traceback (Celery writes only).
    real_traceback: bool,
    /// For ready states: the fixed `date_done` (Celery's clock is set to it); none: now.
    date_done: Option<&'static str>,
    /// A worker's request: gives group_id, parent_id and the result_extended fields.
    request: Option<Value>,
}

struct Group {
    id: String,
    task_ids: Vec<String>,
}

impl Case {
    fn new(id: &str, state: &'static str, result: Value) -> Case {
        Case {
            id: id.to_owned(),
            state,
            result,
            exception: None,
            traceback: None,
            real_traceback: false,
            date_done: None,
            request: None,
        }
    }

    fn raising(id: &str, state: &'static str, exc: Exc) -> Case {
        Case {
            exception: Some(exc),
            ..Case::new(id, state, Value::Null)
        }
    }

    fn traceback(mut self, tb: &str) -> Case {
        self.traceback = Some(tb.to_owned());
        self
    }

    fn dated(mut self, date: &'static str) -> Case {
        self.date_done = Some(date);
        self
    }

    fn request(mut self, request: Value) -> Case {
        self.request = Some(request);
        self
    }

    fn state(&self) -> State {
        State::parse(self.state)
    }

    /// Celery writes the children of the worker's request: `[]` in a worker, and `null` when
    /// `backend.store_result` is called with no request, outside any task.
    fn children(&self) -> Value {
        match self.request {
            Some(_) => json!([]),
            None => Value::Null,
        }
    }

    /// The stored `result`: the value, or Celery's exception document.
    fn stored_result(&self) -> Value {
        match &self.exception {
            Some(e) => celery::exception(e.ty, e.args.clone(), e.module),
            None => self.result.clone(),
        }
    }

    fn to_python(&self) -> Value {
        let mut case = json!({"task_id": self.id, "state": self.state, "result": self.result});
        if let Some(e) = &self.exception {
            case["exception"] = json!({"type": e.ty, "module": e.module, "args": e.args});
        }
        if self.real_traceback {
            case["traceback"] = json!(true);
        } else if let Some(tb) = &self.traceback {
            case["traceback"] = json!(tb);
        }
        if let Some(d) = self.date_done {
            case["date_done"] = json!(d);
        }
        if let Some(r) = &self.request {
            case["request"] = r.clone();
        }
        case
    }

    /// The meta the component stores for this case, with Celery's `result_extended` on or off.
    fn to_meta(&self, extended: bool) -> TaskMeta {
        let request = self.request.as_ref();
        let text = |field: &str| request.and_then(|r| r[field].as_str().map(str::to_owned));
        TaskMeta {
            state: self.state(),
            result: self.stored_result(),
            traceback: self.traceback.clone(),
            children: self.children(),
            date_done: self.date_done.map(str::to_owned),
            group_id: text("group"),
            parent_id: text("parent_id"),
            extended: self.expected_extended(extended),
            ..TaskMeta::pending(&self.id)
        }
    }

    fn expected_extended(&self, extended: bool) -> Option<Extended> {
        let r = self.request.as_ref().filter(|_| extended)?;
        let text = |field: &str| r[field].as_str().map(str::to_owned);
        Some(Extended {
            name: text("task"),
            args: r["args"].clone(),
            kwargs: r["kwargs"].clone(),
            worker: text("hostname"),
            retries: Some(r["retries"].as_i64().unwrap_or(0)),
            queue: text("queue"),
        })
    }
}

fn exc(ty: &'static str, module: &'static str, args: Value) -> Exc {
    let Value::Array(args) = args else {
        panic!("exception args are a list")
    };
    Exc { ty, module, args }
}

/// The kinds of results a Celery application stores, each under its own task id.
fn common_cases() -> Vec<Case> {
    let tb = "Traceback (most recent call last):\n  File \"tasks.py\", line 7, in work\n    raise ValueError(\"boom\")\nValueError: boom\n";
    vec![
        Case::new(
            "7c0a5d1e-3b7f-4a56-9d3e-2f1b8c4d6e01",
            "SUCCESS",
            json!({"x": 1, "nested": {"list": [1, 2.5, "three", null, true]}}),
        ),
        Case::new("tâche-日本", "SUCCESS", json!({"msg": "héllo 日本 🎉"})),
        Case::new("task-string", "SUCCESS", json!("done")),
        Case::new("task-none", "SUCCESS", Value::Null),
        Case::raising(
            "task-failure",
            "FAILURE",
            exc("ValueError", "builtins", json!(["boom"])),
        )
        .traceback(tb),
        Case::raising(
            "task-failure-args",
            "FAILURE",
            exc("ValueError", "builtins", json!(["bad", 42])),
        ),
        Case::new(
            "task-started",
            "STARTED",
            json!({"pid": 123, "hostname": "celery@host"}),
        ),
        Case::new("task-received", "RECEIVED", Value::Null),
        Case::raising(
            "task-retry",
            "RETRY",
            exc("ConnectionError", "builtins", json!(["try again"])),
        )
        .traceback("Traceback (most recent call last):\nConnectionError: try again\n"),
        Case::new("task-progress", "PROGRESS", json!({"done": 3, "total": 10})),
        Case::raising(
            "task-revoked",
            "REVOKED",
            exc("TaskRevokedError", "celery.exceptions", json!(["revoked"])),
        ),
        Case::new("task-extended", "SUCCESS", json!(3)).request(json!({
            "task": "tasks.add",
            "args": [1, 2],
            "kwargs": {"note": "é"},
            "hostname": "celery@worker-1",
            "retries": 0,
            "queue": "celery",
            "group": "grp-of-extended",
            "parent_id": "parent-1",
        })),
    ]
}

fn group_of(cases: &[Case]) -> Group {
    Group {
        id: "b2f1c7a0-group".into(),
        task_ids: vec![cases[0].id.clone(), cases[1].id.clone()],
    }
}

fn ids(cases: &[Case]) -> Vec<&str> {
    cases.iter().map(|c| c.id.as_str()).collect()
}

/// `prefix` without its trailing '/': Celery concatenates, so keys become `…/namecelery-…`.
fn without_slash(prefix: String) -> String {
    prefix.trim_end_matches('/').to_owned()
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------------
// Celery writes, the component reads

/// Returns the number of cases checked.
fn celery_writes_component_reads(celery: &Celery, key_prefix: &str) -> usize {
    let mut cases = common_cases();
    let mut real = Case::raising(
        "task-real-traceback",
        "FAILURE",
        exc("KeyError", "builtins", json!(["missing"])),
    );
    real.real_traceback = true;
    cases.push(real);
    cases.push(
        Case::new("task-dated", "SUCCESS", json!([1, "a"])).dated("2026-01-02T03:04:05+00:00"),
    );
    let group = group_of(&cases);
    let tracebacks = celery.write(&cases, std::slice::from_ref(&group));

    // Celery really wrote to the server, under the keys its rules give.
    let mut expected_keys: Vec<String> = cases
        .iter()
        .map(|c| celery.task_key(key_prefix, &c.id))
        .collect();
    expected_keys.push(celery.group_key(key_prefix, &group.id));
    assert_eq!(
        celery.server.list_keys(&celery.base_path),
        sorted(expected_keys)
    );

    let task_ids = ids(&cases);
    let (seen_by_celery, _) = celery.read(&task_ids, &[]);
    let mut tasks = celery.tasks();
    let mut metas = Vec::new();
    for case in &cases {
        let m = tasks.get_meta(&case.id).unwrap();
        let py = &seen_by_celery[&case.id];
        let what = format!("{} ({})", case.id, case.state);
        assert_eq!(m.task_id, case.id, "{what}");
        assert_eq!(m.state, case.state(), "{what}");
        assert_eq!(m.state.as_str(), py["state"], "{what}");
        assert_eq!(m.result, case.stored_result(), "{what}");
        if case.exception.is_none() {
            assert_eq!(m.result, py["result"], "{what}");
        }
        let tb = tracebacks[&case.id].clone();
        if case.real_traceback {
            let tb = tb.as_deref().expect("Celery stored a real traceback");
            assert!(
                tb.starts_with("Traceback (most recent call last):\n"),
                "{tb}"
            );
            assert!(tb.ends_with("KeyError: 'missing'\n"), "{tb}");
        } else {
            assert_eq!(tb, case.traceback, "{what}");
        }
        assert_eq!(m.traceback, tb, "{what}");
        assert_eq!(m.children, case.children(), "{what}");
        assert_eq!(m.children, py["children"], "{what}");
        // Celery records date_done for the ready states only; both sides read the same text.
        assert_eq!(m.date_done.is_some(), case.state().is_ready(), "{what}");
        assert_eq!(py["ready"], json!(case.state().is_ready()), "{what}");
        assert_eq!(json!(m.date_done), py["date_done"], "{what}");
        if let Some(d) = case.date_done {
            assert_eq!(m.date_done.as_deref(), Some(d), "{what}");
        }
        let expected = case.to_meta(celery.extended);
        assert_eq!(m.group_id, expected.group_id, "{what}");
        assert_eq!(m.parent_id, expected.parent_id, "{what}");
        assert_eq!(m.extended, expected.extended, "{what}");
        metas.push(m);
    }

    // All at once, and a task nobody stored.
    let mut many_ids = task_ids.clone();
    many_ids.push("never-stored");
    let many = tasks.get_many(&many_ids).unwrap();
    assert_eq!(many.len(), many_ids.len());
    for (i, got) in many.into_iter().enumerate() {
        let got = got.unwrap();
        match metas.get(i) {
            Some(m) => assert_eq!(&got, m, "{}", many_ids[i]),
            None => assert_eq!(got, TaskMeta::pending("never-stored")),
        }
    }

    // The documents served as they are: what boto3 reads, byte for byte; PENDING as Celery
    // writes it for a task nobody stored.
    let keys: Vec<String> = cases
        .iter()
        .map(|c| celery.task_key(key_prefix, &c.id))
        .collect();
    let raw = celery.raw(&keys);
    for (case, key) in cases.iter().zip(&keys) {
        let stored = raw[key].as_deref().expect("Celery stored the task");
        let document = tasks.get_document(&case.id).unwrap();
        assert_eq!(document.as_bytes(), stored, "{}", case.id);
    }
    assert_eq!(
        tasks.get_document("never-stored").unwrap(),
        r#"{"status": "PENDING", "result": null, "traceback": null, "children": [], "date_done": null, "task_id": "never-stored"}"#
    );

    assert_eq!(
        tasks.restore_group(&group.id).unwrap(),
        Some(group.task_ids.clone())
    );
    assert_eq!(tasks.restore_group("no-such-group").unwrap(), None);

    // The component forgets what Celery wrote; Celery sees it gone.
    tasks.forget(&cases[0].id).unwrap();
    tasks.forget_group(&group.id).unwrap();
    let (after, groups) = celery.read(&[&cases[0].id, &cases[1].id], &[&group.id]);
    assert_eq!(after[&cases[0].id]["state"], "PENDING");
    assert_eq!(after[&cases[0].id]["result"], Value::Null);
    assert_eq!(after[&cases[1].id]["state"], "SUCCESS");
    assert_eq!(groups[&group.id], Value::Null);
    cases.len() + 1
}

#[test]
fn celery_writes_the_component_reads() {
    let s = server();
    let celery = Celery {
        server: s,
        base_path: unique_prefix("interop-c2w"),
        global_keyprefix: None,
        extended: false,
    };
    let n = celery_writes_component_reads(&celery, "");
    report(&format!(
        "celery interop: Celery -> component, base path with '/', no global_keyprefix: {n} \
         cases checked ({})",
        versions(s)
    ));
}

#[test]
fn celery_writes_the_component_reads_with_keyprefix_extended_and_bare_base_path() {
    let s = server();
    let celery = Celery {
        server: s,
        base_path: without_slash(unique_prefix("interop-c2w-gkp")),
        global_keyprefix: Some("myapp"),
        extended: true,
    };
    let n = celery_writes_component_reads(&celery, "myapp_");
    report(&format!(
        "celery interop: Celery -> component, base path without '/', global_keyprefix \
         'myapp', result_extended: {n} cases checked ({})",
        versions(s)
    ));
}

// ---------------------------------------------------------------------------------------------
// The component writes, Celery reads

fn component_writes_celery_reads(celery: &Celery, key_prefix: &str) -> usize {
    let mut cases = common_cases();
    cases.push(
        Case::new("task-dated", "SUCCESS", json!([1, "a"])).dated("2026-01-02T03:04:05+00:00"),
    );
    cases.push(
        Case::raising(
            "task-failure-dated",
            "FAILURE",
            exc("ValueError", "builtins", json!(["boom"])),
        )
        .dated("2026-11-25T16:34:09.244119+00:00"),
    );
    // An exception class Celery cannot import: it makes one up with the same name and args.
    cases.push(Case::raising(
        "task-unknown-exception",
        "FAILURE",
        exc("QuotaExceeded", "myapp.errors", json!(["over quota", 3])),
    ));
    let group = group_of(&cases);

    let mut tasks = celery.tasks();
    let mut stored = BTreeMap::new();
    for case in &cases {
        let meta = tasks.store_result(&case.to_meta(celery.extended)).unwrap();
        stored.insert(case.id.clone(), meta);
    }
    let members: Vec<&str> = group.task_ids.iter().map(String::as_str).collect();
    tasks.save_group(&group.id, &members).unwrap();

    let mut expected_keys: Vec<String> = cases
        .iter()
        .map(|c| celery.task_key(key_prefix, &c.id))
        .collect();
    expected_keys.push(celery.group_key(key_prefix, &group.id));
    assert_eq!(
        celery.server.list_keys(&celery.base_path),
        sorted(expected_keys)
    );

    let mut task_ids = ids(&cases);
    task_ids.push("never-stored");
    let (seen, groups) = celery.read(&task_ids, &[&group.id, "no-such-group"]);
    for case in &cases {
        let py = &seen[&case.id];
        let what = format!("{} ({}): {py}", case.id, case.state);
        let ready = case.state().is_ready();
        assert_eq!(py["state"], case.state, "{what}");
        assert_eq!(py["ready"], json!(ready), "{what}");
        assert_eq!(py["traceback"], json!(case.traceback), "{what}");
        assert_eq!(py["children"], case.children(), "{what}");
        // Celery parses the component's date_done and gives back the same text.
        let date = &stored[&case.id].date_done;
        assert_eq!(date.is_some(), ready, "{what}");
        assert_eq!(py["date_done"], json!(date), "{what}");
        if let Some(d) = case.date_done {
            assert_eq!(date.as_deref(), Some(d), "{what}");
        }
        match &case.exception {
            Some(e) => {
                let got = &py["exception"];
                assert_eq!(got["type"], e.ty, "{what}");
                assert_eq!(got["args"], json!(e.args), "{what}");
                if e.module != "myapp.errors" {
                    assert_eq!(got["module"], e.module, "{what}");
                }
                if ready {
                    // AsyncResult.get() re-raises the task's exception.
                    assert_eq!(py["get"]["raised"]["type"], e.ty, "{what}");
                    assert_eq!(py["get"]["raised"]["args"], json!(e.args), "{what}");
                }
            }
            None => {
                assert_eq!(py["result"], case.result, "{what}");
                if ready {
                    assert_eq!(py["get"]["value"], case.result, "{what}");
                }
            }
        }
        let expected = case.to_meta(celery.extended);
        assert_eq!(py["group_id"], json!(expected.group_id), "{what}");
        assert_eq!(py["parent_id"], json!(expected.parent_id), "{what}");
        match case.expected_extended(celery.extended) {
            Some(x) => {
                assert_eq!(py["name"], json!(x.name), "{what}");
                assert_eq!(py["args"], x.args, "{what}");
                assert_eq!(py["kwargs"], x.kwargs, "{what}");
                assert_eq!(py["worker"], json!(x.worker), "{what}");
                assert_eq!(py["retries"], json!(x.retries), "{what}");
                assert_eq!(py["queue"], json!(x.queue), "{what}");
            }
            None => assert_eq!(py["name"], Value::Null, "{what}"),
        }
    }
    assert_eq!(seen["never-stored"]["state"], "PENDING");
    assert_eq!(seen["never-stored"]["result"], Value::Null);
    assert_eq!(groups[&group.id], json!(group.task_ids));
    assert_eq!(groups["no-such-group"], Value::Null);

    // Celery forgets what the component wrote; the component sees it gone.
    celery.forget(&[&cases[0].id], &[&group.id]);
    assert_eq!(
        tasks.get_meta(&cases[0].id).unwrap(),
        TaskMeta::pending(&cases[0].id)
    );
    assert_eq!(tasks.get_meta(&cases[1].id).unwrap(), stored[&cases[1].id]);
    assert_eq!(tasks.restore_group(&group.id).unwrap(), None);
    cases.len() + 1
}

#[test]
fn the_component_writes_celery_reads() {
    let s = server();
    let celery = Celery {
        server: s,
        base_path: unique_prefix("interop-w2c"),
        global_keyprefix: Some("myapp"),
        extended: true,
    };
    let n = component_writes_celery_reads(&celery, "myapp_");
    report(&format!(
        "celery interop: component -> Celery, base path with '/', global_keyprefix 'myapp', \
         result_extended: {n} cases checked ({})",
        versions(s)
    ));
}

#[test]
fn the_component_writes_celery_reads_with_bare_base_path() {
    let s = server();
    let celery = Celery {
        server: s,
        base_path: without_slash(unique_prefix("interop-w2c-bare")),
        global_keyprefix: Some("tenant:"),
        extended: false,
    };
    let n = component_writes_celery_reads(&celery, "tenant:");
    report(&format!(
        "celery interop: component -> Celery, base path without '/', global_keyprefix \
         'tenant:': {n} cases checked ({})",
        versions(s)
    ));
}

// ---------------------------------------------------------------------------------------------
// The same bytes

/// Every case with a fixed date (ready states), plus what stresses the JSON encoder.
fn byte_cases() -> Vec<Case> {
    let dates = [
        "2026-11-25T16:34:09.244119+00:00",
        "2026-01-02T03:04:05+00:00",
        "1999-12-31T23:59:59.000001+00:00",
    ];
    let mut cases = common_cases();
    let numbers: Value = serde_json::from_str(
        r#"{"floats": [2.5, 0.1, 1e-07, 0.0001, 1e16, 1.5e300, 123456.789, -0.0, 100.0, 3.0e2, 1E5],
            "ints": [0, -0, 7, -7, 9007199254740993, 123456789012345678901234567890],
            "empty": [{}, [], ""], "bools": [true, false, null]}"#,
    )
    .unwrap();
    cases.push(Case::new("bytes-numbers", "SUCCESS", numbers));
    cases.push(Case::new(
        "bytes-escapes",
        "SUCCESS",
        json!({
            "s": "tab\t nl\n cr\r quote\" backslash\\ slash/ del\u{7f} nul\u{0} bell\u{7} \
                  bs\u{8} ff\u{c} esc\u{1b} nbsp\u{a0} ls\u{2028} bom\u{feff} astral 𝄞 max\u{10ffff}",
            "clé é": "日本",
            "": [" ", "~"],
        }),
    ));
    cases.push(
        Case::raising(
            "bytes-failure-unicode",
            "FAILURE",
            exc("ValueError", "builtins", json!(["bøøm ✓"])),
        )
        .traceback(
            "Traceback (most recent call last):\n  File \"tâche.py\", line 1\nValueError: bøøm ✓\n",
        ),
    );
    cases.push(Case::raising(
        "bytes-failure-noargs",
        "FAILURE",
        exc("ValueError", "builtins", json!([])),
    ));
    cases.push(Case::new(
        "bytes-big",
        "SUCCESS",
        json!(["x".repeat(50_000), (0..2000).collect::<Vec<i32>>()]),
    ));
    for (i, case) in cases.iter_mut().enumerate() {
        if case.state().is_ready() {
            case.date_done = Some(dates[i % dates.len()]);
        }
    }
    cases
}

/// `bytes` around its first difference from `other`, so a long value's mismatch stays readable.
fn excerpt(bytes: &[u8], other: &[u8]) -> String {
    let at = bytes
        .iter()
        .zip(other)
        .position(|(a, b)| a != b)
        .unwrap_or(bytes.len().min(other.len()));
    let start = at.saturating_sub(120);
    let end = (at + 120).min(bytes.len());
    format!(
        "(byte {at} of {}) {}{}{}",
        bytes.len(),
        if start > 0 { "…" } else { "" },
        String::from_utf8_lossy(&bytes[start..end]),
        if end < bytes.len() { "…" } else { "" }
    )
}

fn same_bytes(test: &str, global_keyprefix: Option<&str>, slash: bool, extended: bool) -> usize {
    let s = server();
    let base = |side: &str| {
        let p = unique_prefix(&format!("{test}-{side}"));
        if slash { p } else { without_slash(p) }
    };
    let by_celery = Celery {
        server: s,
        base_path: base("celery"),
        global_keyprefix,
        extended,
    };
    let by_component = Celery {
        base_path: base("component"),
        ..by_celery
    };
    let cases = byte_cases();
    let group = group_of(&cases);
    by_celery.write(&cases, std::slice::from_ref(&group));
    let mut tasks = by_component.tasks();
    for case in &cases {
        tasks.store_result(&case.to_meta(extended)).unwrap();
    }
    let members: Vec<&str> = group.task_ids.iter().map(String::as_str).collect();
    tasks.save_group(&group.id, &members).unwrap();

    // The same keys below each base path, and the same bytes under each.
    let relative = |c: &Celery| -> Vec<String> {
        s.list_keys(&c.base_path)
            .into_iter()
            .map(|k| k[c.base_path.len()..].to_owned())
            .collect()
    };
    assert_eq!(relative(&by_celery), relative(&by_component));
    let keys = relative(&by_celery);
    assert_eq!(keys.len(), cases.len() + 1);
    let full = |c: &Celery| -> Vec<String> {
        keys.iter().map(|k| format!("{}{k}", c.base_path)).collect()
    };
    let celery_bytes = by_celery.raw(&full(&by_celery));
    let component_bytes = by_component.raw(&full(&by_component));
    let mut mismatches = Vec::new();
    for key in &keys {
        let want = celery_bytes[&format!("{}{key}", by_celery.base_path)]
            .as_ref()
            .unwrap_or_else(|| panic!("Celery's {key} is listed but cannot be read"));
        let got = component_bytes[&format!("{}{key}", by_component.base_path)]
            .as_ref()
            .unwrap_or_else(|| panic!("the component's {key} is listed but cannot be read"));
        if want != got {
            mismatches.push(format!(
                "{key}:\n  Celery:    {}\n  component: {}",
                excerpt(want, got),
                excerpt(got, want)
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} stored values differ from Celery's bytes:\n{}",
        mismatches.len(),
        keys.len(),
        mismatches.join("\n")
    );
    keys.len()
}

#[test]
fn celery_and_the_component_store_the_same_bytes() {
    let n = same_bytes("interop-bytes", None, true, false);
    let m = same_bytes("interop-bytes-gkp", Some("myapp"), false, true);
    report(&format!(
        "celery interop: same bytes as Celery for {n} values (base path with '/') and {m} \
         values (base path without '/', global_keyprefix 'myapp', result_extended) ({})",
        versions(server())
    ));
}
