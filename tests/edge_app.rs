//! The example edge app (examples/task-status) composed with the store by `scripts/compose`,
//! served on loopback and asked over real HTTP: tasks written by the store's task API and by
//! real Celery, unknown and forgotten tasks, health, routing errors, and store errors as HTTP
//! statuses.
//!
//! One suite, two hosts: the host library (`ProxyServer`, in this process) by default, or with
//! `S3RS_EDGE_HOST=wasmtime-cli` wasmtime's own CLI (`wasmtime serve`, the official binary of
//! `scripts/install-wasmtime`; support/wasmtime_cli.rs), one process per app.
//!
//! Needs `target/wasm32-wasip2/release/task-status.composed.wasm` (`scripts/compose`; or
//! `S3RS_TASK_STATUS_COMPONENT`), built by `scripts/test` before the suites.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;

use s3_result_store_host::celery::{State, TaskMeta, python_json};
use s3_result_store_host::{ProxyServer, Serving, TaskStore, default_task_status_path};
use s3_result_store_tests::celery::CeleryApp;
use s3_result_store_tests::wasmtime_cli::{self, CliServer};
use s3_result_store_tests::{TestServer, report, runtime, server, unique_prefix};
use serde_json::{Value, json};

/// The composed component, compiled once for this test binary.
fn compiled() -> &'static ProxyServer {
    static SERVER: OnceLock<ProxyServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let path = default_task_status_path();
        ProxyServer::load(&path)
            .unwrap_or_else(|e| panic!("{e} (build it with scripts/compose: {})", path.display()))
    })
}

/// Which host serves the app (`S3RS_EDGE_HOST`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    Library,
    WasmtimeCli,
}

fn host() -> Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    *HOST.get_or_init(|| {
        let host = match std::env::var("S3RS_EDGE_HOST").as_deref() {
            Err(_) | Ok("" | "host") => Host::Library,
            Ok("wasmtime-cli") => Host::WasmtimeCli,
            Ok(other) => panic!("S3RS_EDGE_HOST={other}: expected host or wasmtime-cli"),
        };
        report(&match host {
            Host::Library => "edge app served by the host library (ProxyServer)".to_owned(),
            Host::WasmtimeCli => format!(
                "edge app served by `wasmtime serve`, {}",
                wasmtime_cli::version()
            ),
        });
        host
    })
}

/// The app served on loopback, by either host; stopped when dropped.
enum Served {
    Library(Serving),
    WasmtimeCli(CliServer),
}

impl Served {
    fn local_addr(&self) -> SocketAddr {
        match self {
            Served::Library(serving) => serving.local_addr(),
            Served::WasmtimeCli(server) => server.local_addr(),
        }
    }
}

/// The app as deployed against the test server: configured only through its environment.
struct App {
    serving: Served,
    base_path: String,
}

impl App {
    fn start(test: &str) -> App {
        let base_path = unique_prefix(test);
        let serving = serve(&env(server(), &base_path, &[]));
        App { serving, base_path }
    }

    fn get(&self, path: &str) -> Reply {
        send(self.serving.local_addr(), "GET", path)
    }

    fn delete(&self, path: &str) -> Reply {
        send(self.serving.local_addr(), "DELETE", path)
    }

    /// The store's task API (the host library, not HTTP) on the same bucket and prefix.
    fn tasks(&self) -> TaskStore {
        runtime()
            .open_tasks(&server().config(&self.base_path), None)
            .unwrap()
    }
}

fn env(s: &TestServer, base_path: &str, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL_S3", s.endpoint.as_str()),
        ("AWS_REGION", &s.region),
        ("AWS_ACCESS_KEY_ID", &s.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &s.secret_access_key),
        ("S3RS_BUCKET", &s.bucket),
        ("S3RS_BASE_PATH", base_path),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in overrides {
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value.to_string()));
    }
    env
}

fn serve(env: &[(String, String)]) -> Served {
    match host() {
        Host::Library => Served::Library(
            compiled()
                .clone()
                .with_env(env.iter().cloned())
                .bind("127.0.0.1:0".parse().unwrap())
                .unwrap(),
        ),
        Host::WasmtimeCli => {
            Served::WasmtimeCli(CliServer::start(&default_task_status_path(), env))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one request per connection, so every request is on the wire as
// written here.

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    fn json(&self) -> Value {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn send(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect to the served app");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a header line");
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if reply.header("transfer-encoding") == Some("chunked") {
        reply.body = dechunk(&reply.body);
    } else if let Some(n) = reply.header("content-length") {
        assert_eq!(reply.body.len(), n.parse::<usize>().unwrap(), "body length");
    }
    reply
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn the_composed_component_imports_only_wasi() {
    let imports = compiled().imports();
    assert!(
        imports
            .iter()
            .any(|(n, _)| n.starts_with("wasi:http/outgoing-handler@")),
        "{imports:?}"
    );
    // The store exports its `types` too, so the app's import of them is satisfied inside the
    // composition: a host needs to provide WASI and nothing else.
    let other: Vec<&str> = imports
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.starts_with("wasi:"))
        .collect();
    assert!(other.is_empty(), "non-WASI imports: {other:?}");
    let size = std::fs::metadata(default_task_status_path()).unwrap().len();
    report(&format!(
        "edge app: composed component {size} bytes, {} imports, all WASI",
        imports.len()
    ));
}

#[test]
fn a_task_stored_by_the_task_api_is_served_as_celery_stores_it() {
    let app = App::start("edge-known");
    let mut tasks = app.tasks();
    let success = tasks
        .store_result(&TaskMeta {
            state: State::Success,
            result: json!({"sum": 3, "name": "caf\u{e9}", "items": [1.5, null, true]}),
            ..TaskMeta::pending("edge-ok-1")
        })
        .unwrap();
    let failure = tasks
        .store_result(&TaskMeta {
            state: State::Failure,
            result: json!({"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}),
            traceback: Some("Traceback (most recent call last):\nValueError: boom\n".into()),
            ..TaskMeta::pending("edge-failed-1")
        })
        .unwrap();
    for meta in [&success, &failure] {
        let reply = app.get(&format!("/tasks/{}", meta.task_id));
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        // Celery's document, in Celery's bytes.
        assert_eq!(reply.json(), meta.to_value());
        assert_eq!(reply.text(), python_json(&meta.to_value()));
    }
    assert_eq!(app.get("/tasks/edge-ok-1").json()["status"], "SUCCESS");
    assert_eq!(
        app.get("/tasks/edge-failed-1").json()["result"]["exc_type"],
        "ValueError"
    );
}

#[test]
fn an_unknown_task_is_pending_as_celery_answers() {
    let app = App::start("edge-unknown");
    let reply = app.get("/tasks/never-stored-4b1e?verbose=1");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        r#"{"status": "PENDING", "result": null, "traceback": null, "children": [], "date_done": null, "task_id": "never-stored-4b1e"}"#
    );
}

#[test]
fn delete_forgets_and_the_task_reads_pending_again() {
    let app = App::start("edge-delete");
    let mut tasks = app.tasks();
    tasks
        .store_result(&TaskMeta {
            state: State::Success,
            result: json!(42),
            ..TaskMeta::pending("edge-forget-1")
        })
        .unwrap();
    assert_eq!(app.get("/tasks/edge-forget-1").json()["result"], 42);
    assert_eq!(server().list_keys(&app.base_path).len(), 1);

    let reply = app.delete("/tasks/edge-forget-1");
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());
    // Gone from the bucket, as an independent client sees it, and PENDING over HTTP.
    assert!(server().list_keys(&app.base_path).is_empty());
    let after = app.get("/tasks/edge-forget-1").json();
    assert_eq!(after["status"], "PENDING");
    assert_eq!(after["result"], Value::Null);
    // Forgetting what is not there succeeds, as Celery's forget does.
    assert_eq!(app.delete("/tasks/edge-forget-1").status, 204);
}

#[test]
fn task_ids_are_percent_decoded() {
    let app = App::start("edge-decode");
    let id = "a b/\u{e9}+1";
    app.tasks()
        .store_result(&TaskMeta {
            state: State::Success,
            result: json!("decoded"),
            ..TaskMeta::pending(id)
        })
        .unwrap();
    let reply = app.get("/tasks/a%20b%2F%C3%A9+1");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["task_id"], id);
    assert_eq!(reply.json()["result"], "decoded");
    let bad = app.get("/tasks/a%2");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "bad-request");
}

#[test]
fn health_routing_and_methods() {
    let app = App::start("edge-routes");
    let health = app.get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));

    for path in ["/", "/tasks", "/tasks/", "/tasks/a/b", "/nope"] {
        let reply = app.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json()["error"], "not-found", "{path}");
    }
    let addr = app.serving.local_addr();
    for (method, path, allow) in [
        ("POST", "/tasks/x", "GET, DELETE"),
        ("PUT", "/tasks/x", "GET, DELETE"),
        ("DELETE", "/healthz", "GET"),
        ("POST", "/healthz", "GET"),
    ] {
        let reply = send(addr, method, path);
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(reply.json()["error"], "method-not-allowed");
    }
    // None of it wrote anything.
    assert!(server().list_keys(&app.base_path).is_empty());
}

#[test]
fn store_errors_are_json_with_gateway_statuses() {
    let s = server();
    let base_path = unique_prefix("edge-errors");
    let check = |overrides: &[(&str, &str)], path: &str, status: u16, kind: &str| -> Value {
        let serving = serve(&env(s, &base_path, overrides));
        let reply = send(serving.local_addr(), "GET", path);
        assert_eq!(reply.status, status, "{kind}: {}", reply.text());
        let body = reply.json();
        assert_eq!(body["error"], kind, "{body}");
        body
    };

    let missing = check(
        &[("S3RS_BUCKET", "s3rs-no-such-bucket-edge")],
        "/tasks/t1",
        502,
        "no-such-bucket",
    );
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("s3rs-no-such-bucket-edge")
    );

    // A port nothing listens on (bound, then released).
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{closed}");
    check(
        &[("AWS_ENDPOINT_URL_S3", &endpoint)],
        "/tasks/t1",
        502,
        "transport",
    );

    // The app's own configuration: a 500 from the health check already, and no S3 request.
    let unconfigured = check(
        &[("S3RS_BUCKET", "")],
        "/healthz",
        500,
        "missing-bucket-name",
    );
    assert!(
        unconfigured["message"]
            .as_str()
            .unwrap()
            .contains("S3RS_BUCKET")
    );

    if s.verifies_signatures {
        let denied = check(
            &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
            "/tasks/t1",
            502,
            "access-denied",
        );
        let message = denied["message"].as_str().unwrap();
        assert!(
            message.starts_with("S3 refused access: HTTP 403"),
            "{message}"
        );
        assert!(!message.contains("not-the-secret"), "{message}");
        // Health does not ask S3, so it stays up with a wrong secret.
        let serving = serve(&env(
            s,
            &base_path,
            &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
        ));
        assert_eq!(send(serving.local_addr(), "GET", "/healthz").status, 200);
    } else {
        s.unsupported(
            "edge app: wrong credentials -> 502 access-denied",
            "the server accepts any signature",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Results written by real Celery (tests/support/celery_interop.py, its S3 backend over boto3)

fn celery(s: &TestServer, base_path: &str, command: &str, input: &Value) -> Value {
    let app = CeleryApp {
        server: s,
        base_path,
        global_keyprefix: None,
        extended: false,
    };
    app.run(command, input)
}

#[test]
fn results_written_by_celery_are_served_byte_for_byte() {
    let s = server();
    let app = App::start("edge-celery");
    let cases = json!([
        {"task_id": "celery-ok", "state": "SUCCESS",
         "result": {"total": 10, "names": ["\u{e9}t\u{e9}", "\u{1f600}"], "ratio": 0.1}},
        {"task_id": "celery-failed", "state": "FAILURE",
         "exception": {"type": "KeyError", "module": "builtins", "args": ["missing"]},
         "traceback": true},
        {"task_id": "celery-progress", "state": "PROGRESS", "result": {"current": 3, "total": 7}},
        {"task_id": "celery-started", "state": "STARTED", "result": {"pid": 4242}},
    ]);
    celery(s, &app.base_path, "write", &cases);
    let ids = [
        "celery-ok",
        "celery-failed",
        "celery-progress",
        "celery-started",
    ];
    let keys: Vec<String> = ids
        .iter()
        .map(|id| format!("{}celery-task-meta-{id}", app.base_path))
        .collect();
    let stored = celery(s, &app.base_path, "raw", &json!(keys));
    let seen_by_celery = celery(s, &app.base_path, "read", &json!({"tasks": ids}));

    for (i, id) in ids.iter().enumerate() {
        let reply = app.get(&format!("/tasks/{id}"));
        assert_eq!(reply.status, 200, "{id}: {}", reply.text());
        // The very bytes Celery stored (its json.dumps), not just the same JSON.
        let hex: String = reply.body.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            Some(hex.as_str()),
            stored[&keys[i]].as_str(),
            "{id}: {}",
            reply.text()
        );
        let body = reply.json();
        let py = &seen_by_celery["tasks"][i];
        assert_eq!(body["task_id"], *id);
        assert_eq!(body["status"], py["state"], "{id}");
        assert_eq!(body["traceback"], py["traceback"], "{id}");
        assert_eq!(body["children"], py["children"], "{id}");
        if py.get("result").is_some() {
            assert_eq!(body["result"], py["result"], "{id}");
        }
    }
    let failed = app.get("/tasks/celery-failed").json();
    assert_eq!(failed["result"]["exc_type"], "KeyError");
    assert!(
        failed["traceback"]
            .as_str()
            .unwrap()
            .ends_with("KeyError: 'missing'\n")
    );

    // Forgotten over HTTP: Celery's AsyncResult sees PENDING too.
    assert_eq!(app.delete("/tasks/celery-ok").status, 204);
    let after = celery(s, &app.base_path, "read", &json!({"tasks": ["celery-ok"]}));
    assert_eq!(after["tasks"][0]["state"], "PENDING");
    assert_eq!(app.get("/tasks/celery-ok").json()["status"], "PENDING");
}
