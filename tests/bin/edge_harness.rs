//! `edge-harness`: the test S3 server and the fault proxy in front of it, as a process, for the
//! suites that are not Rust: the Node package's (`js/`, under `node --test`) and the workerd
//! Worker's (`examples/worker/`, under `workerd test`). They get the same servers and the same
//! faults as the Rust suites.
//!
//! The server is the one the Rust suites would use (`S3RS_TEST_*`, else the embedded s3s-fs
//! server, started here). Once ready it prints one line on stdout: a JSON object (or, with
//! `--shell`, `export S3RS_EDGE_...=` lines) naming the server, its credentials, the proxy and
//! the control port:
//!
//! | request to the control port | effect |
//! |---|---|
//! | `POST /faults` `{"fault": "stall-body", "after": 1000, "count": 2}` | queues a fault (kinds below) |
//! | `POST /clear` | empties the queue |
//! | `GET /stats` | `{"requests", "passed", "faults", "byKind", "held": [{"kind", "ms", "closedByClient"}]}` |
//! | `GET /object?key=K`, `PUT /object?key=K` | the object read or written by boto3 (404: no such key) |
//! | `GET /keys?prefix=P` | the keys under P, as boto3 lists them (JSON) |
//! | `POST /celery/COMMAND?basePath=P[&globalKeyprefix=G][&extended=1]` | real Celery (`support/celery_interop.py`) |
//!
//! Fault kinds: `refuse`, `reset-mid-request`, `reset-mid-response`, `slow-down`,
//! `internal-error`, `delay` (`ms`), `truncate-body`, `corrupt-body`, `corrupt-request-body`,
//! `html-error`, `oversized-error`, `not-http`, `stall-body` (`after` bytes, then nothing until
//! the client closes), `stall-body-for` (`after` bytes, nothing for `ms`, then the rest), `silent`.
//!
//! It runs until SIGTERM or SIGINT, or with `--until-stdin-closes` until its stdin ends (so a
//! test process that dies takes it along).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3_result_store_tests::celery::CeleryApp;
use s3_result_store_tests::fault_proxy::{Fault, FaultProxy, Stats};
use s3_result_store_tests::{TestServer, server};
use serde_json::{Value, json};
use tokio::net::TcpListener;

struct Harness {
    server: &'static TestServer,
    proxy: FaultProxy,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for arg in &args {
        if !matches!(arg.as_str(), "--shell" | "--until-stdin-closes") {
            eprintln!("usage: edge-harness [--shell] [--until-stdin-closes]");
            std::process::exit(2);
        }
    }
    let shell = args.iter().any(|a| a == "--shell");
    let until_stdin_closes = args.iter().any(|a| a == "--until-stdin-closes");

    let server = server();
    let upstream: SocketAddr = server
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "the fault proxy needs an http://IP:PORT endpoint, not {}",
                server.endpoint
            )
        });
    let harness = Arc::new(Harness {
        server,
        proxy: FaultProxy::start(upstream),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("edge-harness: cannot build its tokio runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("edge-harness: cannot bind the control port");
        let control = listener.local_addr().expect("a local address");
        announce(&harness, control, shell);
        tokio::select! {
            () = serve_control(listener, Arc::clone(&harness)) => {}
            () = shutdown(until_stdin_closes) => {}
        }
    });
    // Dropping the runtime ends the control connections; the proxy and an embedded server end
    // with the process.
    runtime.shutdown_timeout(Duration::from_millis(500));
}

/// Prints what the test suites need to reach the server, the proxy and the control port.
fn announce(h: &Harness, control: SocketAddr, shell: bool) {
    let s = h.server;
    let fields = [
        ("server", json!(s.name)),
        ("endpoint", json!(s.endpoint)),
        ("region", json!(s.region)),
        ("accessKeyId", json!(s.access_key_id)),
        ("secretAccessKey", json!(s.secret_access_key)),
        ("bucket", json!(s.bucket)),
        ("verifiesSignatures", json!(s.verifies_signatures)),
        ("conditionalWrites", json!(s.conditional_writes)),
        ("proxy", json!(h.proxy.endpoint())),
        ("control", json!(format!("http://{control}"))),
    ];
    if shell {
        for (name, value) in fields {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            println!(
                "export S3RS_EDGE_{}='{}'",
                screaming_snake(name),
                value.replace('\'', r"'\''")
            );
        }
    } else {
        let object: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        println!("{}", Value::Object(object));
    }
}

/// `accessKeyId` -> `ACCESS_KEY_ID`.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

async fn shutdown(until_stdin_closes: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("a SIGINT handler");
    let stdin_closed = async {
        if until_stdin_closes {
            // A blocking read on a thread of its own: tokio's stdin would keep the runtime
            // from shutting down while it waits.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = tx.send(());
            });
            let _ = rx.await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        () = stdin_closed => {}
    }
}

async fn serve_control(listener: TcpListener, harness: Arc<Harness>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let harness = Arc::clone(&harness);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let harness = Arc::clone(&harness);
                async move { Ok::<_, Infallible>(answer(&harness, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

fn json_reply(value: &Value) -> Reply {
    let mut response = reply(StatusCode::OK, value.to_string());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn bad_request(message: impl Into<String>) -> Reply {
    reply(StatusCode::BAD_REQUEST, message.into())
}

fn query(request: &Request<Incoming>, name: &str) -> Option<String> {
    form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

async fn answer(h: &Arc<Harness>, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let key = query(&request, "key");
    let prefix = query(&request, "prefix");
    let base_path = query(&request, "basePath");
    let global_keyprefix = query(&request, "globalKeyprefix");
    let extended = query(&request, "extended").as_deref() == Some("1");
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return bad_request(format!("reading the request body: {e}")),
    };
    match (&method, path.as_str()) {
        (&Method::POST, "/faults") => match parse_faults(&body) {
            Ok((fault, count)) => {
                h.proxy.push_n(fault, count);
                reply(StatusCode::NO_CONTENT, "")
            }
            Err(message) => bad_request(message),
        },
        (&Method::POST, "/clear") => {
            h.proxy.clear();
            reply(StatusCode::NO_CONTENT, "")
        }
        (&Method::GET, "/stats") => json_reply(&stats_json(&h.proxy.stats())),
        (&Method::GET, "/object") | (&Method::PUT, "/object") => {
            let Some(key) = key else {
                return bad_request("?key= is required");
            };
            let h = Arc::clone(h);
            let put = method == Method::PUT;
            blocking(move || object(h.server, put, &key, &body)).await
        }
        (&Method::GET, "/keys") => {
            let h = Arc::clone(h);
            let prefix = prefix.unwrap_or_default();
            blocking(move || Ok(json_reply(&json!(h.server.list_keys(&prefix))))).await
        }
        (&Method::POST, command) if command.starts_with("/celery/") => {
            let command = command.trim_start_matches("/celery/").to_owned();
            let Some(base_path) = base_path else {
                return bad_request("?basePath= is required");
            };
            let input: Value = match serde_json::from_slice(&body) {
                Ok(input) => input,
                Err(e) => return bad_request(format!("the body is not JSON: {e}")),
            };
            let h = Arc::clone(h);
            blocking(move || {
                let app = CeleryApp {
                    server: h.server,
                    base_path: &base_path,
                    global_keyprefix: global_keyprefix.as_deref(),
                    extended,
                };
                Ok(json_reply(&app.run(&command, &input)))
            })
            .await
        }
        _ => reply(StatusCode::NOT_FOUND, format!("no route {method} {path}")),
    }
}

/// Runs `work` off the runtime; a panic in it (a failed script says why) is a 500.
async fn blocking(work: impl FnOnce() -> Result<Reply, String> + Send + 'static) -> Reply {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(message)) => reply(StatusCode::INTERNAL_SERVER_ERROR, message),
        Err(panicked) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the harness failed: {panicked}"),
        ),
    }
}

/// An object read or written by boto3 (`support/s3_object.py`).
fn object(s: &TestServer, put: bool, key: &str, body: &[u8]) -> Result<Reply, String> {
    if put {
        s.put_object(key, body);
        return Ok(reply(StatusCode::NO_CONTENT, ""));
    }
    Ok(match s.object(key) {
        Some(value) => reply(StatusCode::OK, value),
        None => reply(StatusCode::NOT_FOUND, "no such key"),
    })
}

fn parse_faults(body: &[u8]) -> Result<(Fault, usize), String> {
    let spec: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let number = |name: &str| {
        spec.get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{spec}: needs a number `{name}`"))
    };
    let after = || usize::try_from(number("after")?).map_err(|_| "`after` is too large".to_owned());
    let kind = spec
        .get("fault")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{spec}: needs a string `fault`"))?;
    let fault = match kind {
        "refuse" => Fault::Refuse,
        "reset-mid-request" => Fault::ResetMidRequest,
        "reset-mid-response" => Fault::ResetMidResponse,
        "slow-down" => Fault::SlowDown,
        "internal-error" => Fault::InternalError,
        "delay" => Fault::Delay(Duration::from_millis(number("ms")?)),
        "truncate-body" => Fault::TruncateBody,
        "corrupt-body" => Fault::CorruptBody,
        "corrupt-request-body" => Fault::CorruptRequestBody,
        "html-error" => Fault::HtmlError,
        "oversized-error" => Fault::OversizedError,
        "not-http" => Fault::NotHttp,
        "stall-body" => Fault::StallBodyUntilClosed(after()?),
        "stall-body-for" => Fault::StallBody {
            after: after()?,
            stall: Duration::from_millis(number("ms")?),
        },
        "silent" => Fault::Silent,
        other => return Err(format!("unknown fault {other:?}")),
    };
    let count = match spec.get("count") {
        None => 1,
        Some(_) => usize::try_from(number("count")?).map_err(|_| "`count` is too large")?,
    };
    Ok((fault, count))
}

fn stats_json(stats: &Stats) -> Value {
    json!({
        "requests": stats.requests,
        "passed": stats.passed,
        "faults": stats.faults,
        "byKind": stats.by_kind,
        "held": stats.held.iter().map(|held| json!({
            "kind": held.kind,
            "ms": held.for_.as_millis() as u64,
            "closedByClient": held.closed_by_client,
        })).collect::<Vec<_>>(),
    })
}
