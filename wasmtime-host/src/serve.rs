//! Serving a `wasi:http/proxy` component over HTTP/1.1, as `wasmtime serve` does: such as the
//! example task-status app composed with the store (`scripts/compose`).
//!
//! Every request gets a fresh instance (WASI 0.2 handlers are not reentrant, and nothing leaks
//! from one request to the next); instantiation is pre-resolved once, so that costs tens of
//! microseconds. The component's own outgoing requests (to S3) go through the
//! [`PooledSender`]: keep-alive connections shared by all requests.
//!
//! ```no_run
//! use s3_result_store_host::{ProxyServer, default_task_status_path};
//!
//! let server = ProxyServer::load(default_task_status_path())?
//!     .with_env([("S3RS_BUCKET", "celery-results"), ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")]);
//! let serving = server.bind("127.0.0.1:8080".parse().unwrap())?;
//! println!("serving on http://{}", serving.local_addr());
//! serving.wait()?;
//! # Ok::<(), s3_result_store_host::Error>(())
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::artifacts::read_component;
use crate::engine::RuntimeOptions;
use crate::error::Error;
use crate::sender::PooledSender;
use crate::state::HostState;

/// A compiled `wasi:http/proxy` component (one that exports `wasi:http/incoming-handler`),
/// ready to serve. It may import any of WASI 0.2's `wasi:cli`, `wasi:clocks`, `wasi:random`,
/// `wasi:io`, `wasi:filesystem`, `wasi:sockets` and `wasi:http`, as `wasmtime serve -S cli`
/// allows; the environment it sees is only what [`ProxyServer::with_env`] gives.
///
/// Cheap to clone (the compiled component is shared), e.g. to serve it under several
/// environments.
#[derive(Clone)]
pub struct ProxyServer {
    engine: Engine,
    pre: ProxyPre<HostState>,
    env: Vec<(String, String)>,
    sender: PooledSender,
}

impl ProxyServer {
    /// Compiles the component at `path` (reusing wasmtime's compilation cache).
    pub fn load(path: impl AsRef<Path>) -> Result<ProxyServer, Error> {
        ProxyServer::load_with(path, &RuntimeOptions::default())
    }

    /// [`ProxyServer::load`] with an engine set up as `options` say (e.g. the pooling
    /// allocator: one slot per request in flight).
    pub fn load_with(
        path: impl AsRef<Path>,
        options: &RuntimeOptions,
    ) -> Result<ProxyServer, Error> {
        let path = path.as_ref();
        let bytes = read_component(path, "build the example app with scripts/compose")?;
        ProxyServer::from_bytes_with(&bytes, &path.display().to_string(), options)
    }

    /// [`ProxyServer::load_with`] from the component's bytes; `name` says which component
    /// in errors.
    pub fn from_bytes_with(
        bytes: &[u8],
        name: &str,
        options: &RuntimeOptions,
    ) -> Result<ProxyServer, Error> {
        let engine = options.engine(true)?;
        let component = Component::new(&engine, bytes)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?).map_err(|e| {
            runtime_error(format!("{name} is not a wasi:http/proxy component: {e}"))
        })?;
        Ok(ProxyServer {
            engine,
            pre,
            env: Vec::new(),
            sender: PooledSender::new(),
        })
    }

    /// Environment variables the component sees (`wasi:cli/environment`). Empty unless set:
    /// the host's own environment is never passed implicitly.
    pub fn with_env<I, K, V>(mut self, env: I) -> ProxyServer
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// See [`crate::Runtime::with_connection_pool`].
    pub fn with_connection_pool(mut self, on: bool) -> ProxyServer {
        self.sender = self.sender.with_connection_pool(on);
        self
    }

    /// See [`crate::Runtime::with_resolve`].
    pub fn with_resolve(mut self, host_suffix: &str, ip: IpAddr) -> ProxyServer {
        self.sender = self.sender.with_resolve(host_suffix, ip);
        self
    }

    /// See [`crate::Runtime::with_root_certificates_pem`].
    pub fn with_root_certificates_pem(mut self, pem: &[u8]) -> Result<ProxyServer, Error> {
        self.sender = self.sender.with_root_certificates_pem(pem)?;
        Ok(self)
    }

    /// Names of the component's imports and whether each is an instance of types only (no
    /// functions): such an import needs no implementation, in wasmtime or anywhere.
    pub fn imports(&self) -> Vec<(String, bool)> {
        use wasmtime::component::types::ComponentItem;
        let component = self.pre.instance_pre().component();
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, item)| {
                let types_only = match item.ty {
                    ComponentItem::ComponentInstance(instance) => instance
                        .exports(&self.engine)
                        .all(|(_, export)| matches!(export.ty, ComponentItem::Type(_))),
                    _ => false,
                };
                (name.to_owned(), types_only)
            })
            .collect()
    }

    /// Listens on `addr` and serves on a Tokio runtime of its own, in a background thread,
    /// until the returned [`Serving`] is shut down or dropped.
    pub fn bind(self, addr: SocketAddr) -> Result<Serving, Error> {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| runtime_error(format!("cannot listen on {addr}: {e}")))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| runtime_error(format!("cannot listen on {addr}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| runtime_error(format!("cannot start the Tokio runtime: {e}")))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3rs-serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| runtime_error(format!("cannot listen on {addr}: {e}")))?;
                    self.serve(listener, async {
                        let _ = stopped.await;
                    })
                    .await;
                    Ok(())
                })
            })
            .map_err(|e| runtime_error(format!("cannot start the server thread: {e}")))?;
        Ok(Serving {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Accepts connections on `listener` until `shutdown` completes, on the caller's Tokio
    /// runtime. Connections already open are served to their end.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        let server = Arc::new(self);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    // Per-connection failures (a reset before accept, too many open files):
                    // the listener itself is still good.
                    Err(e) => {
                        eprintln!("serve: accept failed: {e}");
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let _ = stream.set_nodelay(true);
            let server = Arc::clone(&server);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, Infallible>(server.handle(request).await) }
                });
                // A client that goes away mid-request is not the server's failure.
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// One request: a fresh instance, its `handle` run on a task of its own (it may stream
    /// the body after the head is sent), and a 500 when it fails before answering.
    async fn handle(&self, request: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let mut wasi = WasiCtx::builder();
        wasi.envs(&self.env).inherit_stdout().inherit_stderr();
        let mut store = Store::new(
            &self.engine,
            // The store's per-instance state serves here too: WASI, WASI HTTP, the sender.
            HostState::new(
                wasi.build(),
                (!self.sender.is_default()).then(|| self.sender.clone()),
            ),
        );
        let (respond, response) = oneshot::channel();
        let resources = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .and_then(|req| {
                let out = store.data_mut().http().new_response_outparam(respond)?;
                Ok((req, out))
            });
        let (req, out) = match resources {
            Ok(resources) => resources,
            // Such as a request without a Host header (HTTP/1.0): the component needs an
            // authority.
            Err(e) => return plain(StatusCode::BAD_REQUEST, &format!("bad request: {e}\n")),
        };
        let pre = self.pre.clone();
        let run = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match response.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the component answered with an error: {code:?}\n"),
            ),
            // The outparam was dropped unset: the instance trapped or returned without
            // answering.
            Err(_) => {
                let why = match run.await {
                    Ok(Ok(())) => "the component returned without a response".to_owned(),
                    Ok(Err(e)) => format!("the component failed: {e:#}"),
                    Err(e) => format!("the component's task failed: {e}"),
                };
                eprintln!("serve: {why}");
                plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{why}\n"))
            }
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(text.to_owned()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn runtime_error(message: String) -> Error {
    Error::Runtime(wasmtime::Error::msg(message))
}

/// A [`ProxyServer`] serving in the background. Dropping it stops the server.
pub struct Serving {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl Serving {
    /// The address it listens on (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until the process ends (or the server fails).
    pub fn wait(mut self) -> Result<(), Error> {
        // `stop` stays alive until the thread ends, so nothing asks it to.
        self.join()
    }

    /// Stops accepting connections and waits for the server thread.
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop.take();
        self.join()
    }

    fn join(&mut self) -> Result<(), Error> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(runtime_error("the server thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop.take();
        let _ = self.join();
    }
}
