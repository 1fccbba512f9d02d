//! The in-process contenders, each behind one blocking get/set/delete interface, and the
//! measured loop that times them.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{Certificate, ClientOptions, ObjectStoreExt, PutPayload};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use s3_result_store::request::{self, Operation};
use s3_result_store::{Config, ConfigInput, ObjectKey, sign};
use s3_result_store_host::{ResultStore, Runtime};

use crate::measure::{Chunk, Op, process_cpu_ns, thread_cpu_ns};

// The S3 server and credentials both binaries measure against; the server runs in another
// process. (Not a doc comment: clap would make it the `about` of a command that flattens it.)
#[derive(clap::Args)]
pub struct ServerArgs {
    /// S3 endpoint, e.g. http://127.0.0.1:3900.
    #[arg(long, env = "S3RS_TEST_ENDPOINT")]
    pub endpoint: String,
    #[arg(long, env = "S3RS_TEST_REGION", default_value = "us-east-1")]
    pub region: String,
    #[arg(long, env = "S3RS_TEST_ACCESS_KEY_ID")]
    pub access_key_id: String,
    #[arg(long, env = "S3RS_TEST_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_access_key: String,
    /// An existing bucket; objects are written under a prefix and removed at the end.
    #[arg(long, env = "S3RS_TEST_BUCKET")]
    pub bucket: String,
}

impl ServerArgs {
    /// The store's config for this server, path style.
    pub fn config(&self) -> ConfigInput {
        ConfigInput {
            endpoint_url: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            access_key_id: Some(self.access_key_id.clone()),
            secret_access_key: Some(self.secret_access_key.clone()),
            bucket_name: Some(self.bucket.clone()),
            addressing_style: s3_result_store::AddressingStyle::Path,
            ..ConfigInput::default()
        }
    }
}

/// One client, blocking calls. `get` returns the whole body.
pub trait Client {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>>;
    fn set(&mut self, key: &str, value: &Bytes) -> Result<()>;
    fn delete(&mut self, key: &str) -> Result<()>;
}

/// A contender as the rounds see it: runs one operation over a slice of keys and reports
/// each operation's latency and the client's CPU time.
pub trait Contender {
    fn run(&mut self, op: Op, keys: &[String], value: &Bytes) -> Result<Chunk>;
}

/// An in-process [`Client`], timed with `Instant` around each call and `getrusage` around the
/// loop. Nothing else runs in this process meanwhile.
pub struct InProcess<C>(pub C);

impl<C: Client> Contender for InProcess<C> {
    fn run(&mut self, op: Op, keys: &[String], value: &Bytes) -> Result<Chunk> {
        let mut latencies_ns = Vec::with_capacity(keys.len());
        let thread0 = thread_cpu_ns();
        let cpu0 = process_cpu_ns();
        for key in keys {
            let t0 = Instant::now();
            match op {
                Op::Get => {
                    let got = self.0.get(key)?;
                    let elapsed = t0.elapsed();
                    let len = got.with_context(|| format!("get {key}: missing"))?.len();
                    ensure!(len == value.len(), "get {key}: {len} bytes");
                    latencies_ns.push(elapsed.as_nanos() as u64);
                    continue;
                }
                Op::Set => self.0.set(key, value)?,
                Op::Delete => self.0.delete(key)?,
            }
            latencies_ns.push(t0.elapsed().as_nanos() as u64);
        }
        let cpu_ns = process_cpu_ns().saturating_sub(cpu0);
        let thread_ns = thread_cpu_ns().saturating_sub(thread0);
        Ok(Chunk {
            latencies_ns,
            cpu_ns,
            thread_cpu_ns: Some(thread_ns),
        })
    }
}

/// The component under the wasmtime host: one `result-store` resource in its own instance.
pub struct Component(pub ResultStore);

impl Component {
    pub fn open(runtime: &Runtime, input: &ConfigInput) -> Result<Component> {
        Ok(Component(runtime.open(input)?))
    }
}

impl Client for Component {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.0.get(key)?.map(Bytes::from))
    }

    fn set(&mut self, key: &str, value: &Bytes) -> Result<()> {
        Ok(self.0.set(key, value)?)
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        Ok(self.0.delete(key)?)
    }
}

/// The floor: the project's core builds and signs each request (SigV4 with S3's settings, the
/// day's signing key kept, as the component keeps it), a hyper 1 legacy client sends it over
/// a keep-alive HTTP/1.1 pool (TLS by rustls for `https`), on a current-thread Tokio runtime
/// driven by the calling thread. No retries, no Content-MD5, no ETag check: transport and
/// signing, nothing more.
pub struct Floor {
    runtime: tokio::runtime::Runtime,
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    config: Config,
    signer: sign::Signer,
}

impl Floor {
    pub fn new(input: &ConfigInput) -> Result<Floor> {
        Floor::trusting(input, None)
    }

    /// For `https` endpoints, trusting `ca_pem`'s certificates only.
    pub fn trusting(input: &ConfigInput, ca_pem: Option<&[u8]>) -> Result<Floor> {
        let config = Config::resolve(input, std::iter::empty::<(String, String)>())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default()) {
            roots.add(cert?)?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        let signer = sign::Signer::new(config.credentials.clone(), config.region.clone());
        Ok(Floor {
            runtime,
            client,
            config,
            signer,
        })
    }

    fn send(
        &mut self,
        operation: Operation,
        key: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes)> {
        let key = ObjectKey::new(&self.config.base_path, key)?;
        let mut request = request::build(&self.config, operation, &key, body)?;
        self.signer.sign(&mut request, SystemTime::now())?;
        let request = request.map(|body| Full::new(Bytes::from(body)));
        let client = &self.client;
        self.runtime.block_on(async {
            let response = client.request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        })
    }
}

impl Client for Floor {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        match self.send(Operation::Get, key, Vec::new())? {
            (StatusCode::OK, body) => Ok(Some(body)),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (status, body) => bail!("GET {key}: {status}: {}", String::from_utf8_lossy(&body)),
        }
    }

    fn set(&mut self, key: &str, value: &Bytes) -> Result<()> {
        match self.send(Operation::Put, key, value.to_vec())? {
            (status, _) if status.is_success() => Ok(()),
            (status, body) => bail!("PUT {key}: {status}: {}", String::from_utf8_lossy(&body)),
        }
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        match self.send(Operation::Delete, key, Vec::new())? {
            (status, _) if status.is_success() => Ok(()),
            (status, body) => bail!("DELETE {key}: {status}: {}", String::from_utf8_lossy(&body)),
        }
    }
}

/// `object_store`'s S3 client (reqwest, hyper), path style, on a current-thread Tokio runtime
/// (its cheapest configuration) driven by the calling thread.
pub struct Sdk {
    runtime: tokio::runtime::Runtime,
    store: AmazonS3,
}

impl Sdk {
    /// A client of `input`'s server, trusting `ca_pem` as well as the usual roots.
    pub fn new(input: &ConfigInput, ca_pem: Option<&[u8]>) -> Result<Sdk> {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut options = ClientOptions::new().with_allow_http(true);
        if let Some(pem) = ca_pem {
            options = options.with_root_certificate(Certificate::from_pem(pem)?);
        }
        let store = AmazonS3Builder::new()
            .with_client_options(options)
            .with_endpoint(field(&input.endpoint_url))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(field(&input.region))
            .with_access_key_id(field(&input.access_key_id))
            .with_secret_access_key(field(&input.secret_access_key))
            .with_bucket_name(field(&input.bucket_name))
            .build()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Sdk { runtime, store })
    }
}

impl Client for Sdk {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        let path = ObjectPath::parse(key)?;
        let store = &self.store;
        self.runtime.block_on(async {
            match store.get(&path).await {
                Ok(result) => Ok(Some(result.bytes().await?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn set(&mut self, key: &str, value: &Bytes) -> Result<()> {
        let path = ObjectPath::parse(key)?;
        let payload = PutPayload::from_bytes(value.clone());
        self.runtime.block_on(self.store.put(&path, payload))?;
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        let path = ObjectPath::parse(key)?;
        self.runtime.block_on(self.store.delete(&path))?;
        Ok(())
    }
}
