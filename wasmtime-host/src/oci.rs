//! Components from OCI registries, as Wasm OCI artifacts (`wkg oci push` makes them: one
//! `application/wasm` layer), kept in a local cache under their digest.
//!
//! ```no_run
//! use s3_result_store_host::{OciCache, OciReference};
//!
//! let reference = OciReference::parse("oci://127.0.0.1:5000/result-store/s3-result-store:0.1.0")?;
//! let pulled = OciCache::default().pull(&reference)?;
//! println!("{} bytes, {}", pulled.bytes.len(), pulled.digest);
//! # Ok::<(), s3_result_store_host::OciError>(())
//! ```
//!
//! A tag is looked up at the registry each time (tags move); the component it names is
//! downloaded once. A reference pinned by digest (`...@sha256:...`) is served from the cache
//! without asking the registry. Everything is checked against its digest: what the registry
//! sends (by oci-client, and again here) and what the cache holds, each time it is read.
//! Pulls are anonymous; loopback registries are spoken to over plain HTTP, others over HTTPS
//! unless `S3RS_OCI_INSECURE` lists them.

mod cache;
mod error;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

pub use error::OciError;

use cache::Kind;

/// The scheme that marks a component argument as an OCI reference rather than a path.
pub const OCI_SCHEME: &str = "oci://";

/// Layer media types of a Wasm component: the CNCF Wasm OCI artifact's, and the older
/// wasm-to-oci one.
const WASM_LAYER_MEDIA_TYPES: [&str; 2] = [
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// The first bytes of a component (a core module has version 1 and layer 0).
const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";

/// An OCI artifact: `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]` (no tag: `latest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciReference(Reference);

impl OciReference {
    /// Parses a reference, with or without its `oci://`. The registry must be named (there is
    /// no default registry to fall back to).
    pub fn parse(text: &str) -> Result<OciReference, OciError> {
        let bad = |reason: &str| OciError::BadReference {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text.strip_prefix(OCI_SCHEME).unwrap_or(text);
        if !rest.contains('/') {
            return Err(bad(
                "name the registry and the repository: oci://REGISTRY/REPOSITORY:TAG",
            ));
        }
        let reference = Reference::try_from(rest).map_err(|e| {
            // The grammar cannot tell an uppercase repository from any other bad character.
            let repository = rest.split_once('/').map_or("", |(_, r)| r);
            let repository = repository.split([':', '@']).next().unwrap_or_default();
            if repository.chars().any(|c| c.is_ascii_uppercase()) {
                bad("repository names are lowercase")
            } else {
                bad(&e.to_string())
            }
        })?;
        // Without a dot, colon or "localhost" before the first slash, the grammar takes the
        // first segment for part of a Docker Hub repository name.
        if rest.split('/').next() != Some(reference.registry()) {
            return Err(bad(&format!(
                "{:?} is not a registry host (host, host:port or localhost)",
                rest.split('/').next().unwrap_or_default()
            )));
        }
        Ok(OciReference(reference))
    }

    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// Whether the registry is on this machine (spoken to over plain HTTP).
    fn is_loopback(&self) -> bool {
        let registry = self.registry();
        let host = match registry.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => registry.split(':').next().unwrap_or_default(),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{OCI_SCHEME}{}", self.0)
    }
}

impl FromStr for OciReference {
    type Err = OciError;

    fn from_str(text: &str) -> Result<OciReference, OciError> {
        OciReference::parse(text)
    }
}

/// A component fetched from a registry or its cache, checked against its digest.
#[derive(Debug)]
pub struct PulledComponent {
    pub bytes: Vec<u8>,
    /// The component's digest (its layer's), `sha256:...`.
    pub digest: String,
    /// The digest of the manifest the reference resolved to, by which it can be pinned.
    pub manifest_digest: String,
    /// Where the cache keeps it.
    pub path: PathBuf,
}

/// Where pulled components are kept, and how registries are reached.
#[derive(Clone, Debug)]
pub struct OciCache {
    dir: PathBuf,
    insecure: Vec<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Default for OciCache {
    /// The cache in [`OciCache::default_dir`], with the registries `S3RS_OCI_INSECURE` lists
    /// (comma-separated `host:port`) reached over plain HTTP.
    fn default() -> OciCache {
        let insecure = std::env::var("S3RS_OCI_INSECURE").unwrap_or_default();
        OciCache::new(OciCache::default_dir())
            .with_insecure_registries(insecure.split(',').filter(|s| !s.is_empty()))
    }
}

impl OciCache {
    pub fn new(dir: impl Into<PathBuf>) -> OciCache {
        OciCache {
            dir: dir.into(),
            insecure: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }

    /// `S3RS_OCI_CACHE`, else `s3-result-store/oci` in the user's cache directory
    /// (`XDG_CACHE_HOME`, else `~/.cache`), else in the system's temporary directory.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("S3RS_OCI_CACHE") {
            return PathBuf::from(dir);
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("s3-result-store").join("oci")
    }

    /// Registries (`host:port`) to reach over plain HTTP besides loopback ones.
    pub fn with_insecure_registries<I, S>(mut self, registries: I) -> OciCache
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.insecure.extend(registries.into_iter().map(Into::into));
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the component of `digest` (`sha256:...`) is kept, once pulled.
    pub fn component_path(&self, digest: &str) -> Option<PathBuf> {
        cache::path(&self.dir, Kind::Blob, digest)
    }

    /// The component `reference` names: from the cache when pinned by a digest it holds, else
    /// from the registry (the component itself only if the cache lacks it).
    ///
    /// The registry client (reqwest) takes rustls's process-wide default crypto provider: if
    /// the process has none when it first reaches a registry, ring's is installed as the
    /// default. An application that wants another installs its own before.
    pub fn pull(&self, reference: &OciReference) -> Result<PulledComponent, OciError> {
        if let Some(pulled) = self.pinned_from_cache(reference)? {
            return Ok(pulled);
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| OciError::Registry {
                reference: reference.to_string(),
                reason: format!("cannot start an I/O runtime: {e}"),
            })?
            .block_on(self.pull_from_registry(reference))
    }

    fn pinned_from_cache(
        &self,
        reference: &OciReference,
    ) -> Result<Option<PulledComponent>, OciError> {
        let Some(manifest_digest) = reference.digest() else {
            return Ok(None);
        };
        let Some(manifest_path) = cache::path(&self.dir, Kind::Manifest, manifest_digest) else {
            return Ok(None);
        };
        let Some(manifest) = cache::read(&manifest_path, manifest_digest)? else {
            return Ok(None);
        };
        let layer = component_layer(reference, &manifest)?;
        let path = self.blob_path(reference, &layer.digest)?;
        let Some(bytes) = cache::read(&path, &layer.digest)? else {
            return Ok(None);
        };
        Ok(Some(PulledComponent {
            bytes,
            digest: layer.digest,
            manifest_digest: manifest_digest.to_owned(),
            path,
        }))
    }

    async fn pull_from_registry(
        &self,
        reference: &OciReference,
    ) -> Result<PulledComponent, OciError> {
        // reqwest is built without a crypto provider of its own: the host's (ring), unless the
        // process has chosen one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut except = self.insecure.clone();
        if reference.is_loopback() {
            except.push(reference.registry().to_owned());
        }
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(except),
            connect_timeout: Some(self.connect_timeout),
            read_timeout: Some(self.read_timeout),
            platform_resolver: None,
            ..ClientConfig::default()
        });
        let image = &reference.0;
        let (manifest, manifest_digest) = client
            .pull_manifest_raw(
                image,
                &RegistryAuth::Anonymous,
                &[OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE],
            )
            .await
            .map_err(|e| registry_error(reference, e))?;
        let layer = component_layer(reference, &manifest)?;
        let path = self.blob_path(reference, &layer.digest)?;
        let bytes = match cache::read(&path, &layer.digest)? {
            Some(bytes) => bytes,
            None => {
                let mut bytes = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
                client
                    .pull_blob(image, &layer, &mut bytes)
                    .await
                    .map_err(|e| registry_error(reference, e))?;
                // oci-client checks the digest as the bytes arrive; checked here as well so
                // that nothing reaches the cache on another library's word alone.
                let actual = cache::sha256(&bytes);
                if actual != layer.digest {
                    return Err(OciError::DigestMismatch {
                        reference: reference.to_string(),
                        expected: layer.digest,
                        actual,
                    });
                }
                check_component(reference, &bytes)?;
                cache::write(&path, &bytes)?;
                bytes
            }
        };
        if let Some(manifest_path) = cache::path(&self.dir, Kind::Manifest, &manifest_digest) {
            cache::write(&manifest_path, &manifest)?;
        }
        Ok(PulledComponent {
            bytes,
            digest: layer.digest,
            manifest_digest,
            path,
        })
    }

    fn blob_path(&self, reference: &OciReference, digest: &str) -> Result<PathBuf, OciError> {
        cache::path(&self.dir, Kind::Blob, digest).ok_or_else(|| OciError::NotAComponent {
            reference: reference.to_string(),
            reason: format!("its layer's digest {digest} is not a SHA-256 one"),
        })
    }
}

/// The one layer of a Wasm component artifact, from its manifest.
fn component_layer(
    reference: &OciReference,
    manifest: &[u8],
) -> Result<oci_client::manifest::OciDescriptor, OciError> {
    let not_a_component = |reason: String| OciError::NotAComponent {
        reference: reference.to_string(),
        reason,
    };
    let manifest: OciImageManifest = serde_json::from_slice(manifest)
        .map_err(|e| not_a_component(format!("its manifest is not an image manifest: {e}")))?;
    match &manifest.layers[..] {
        [layer] if WASM_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) => Ok(layer.clone()),
        [layer] => Err(not_a_component(format!(
            "its layer is {}, not application/wasm",
            layer.media_type
        ))),
        layers => Err(not_a_component(format!(
            "it has {} layers, not one application/wasm layer",
            layers.len()
        ))),
    }
}

fn check_component(reference: &OciReference, bytes: &[u8]) -> Result<(), OciError> {
    if bytes.starts_with(&COMPONENT_HEADER) {
        return Ok(());
    }
    let reason = if bytes.starts_with(b"\0asm\x01\x00\x00\x00") {
        "it is a core Wasm module"
    } else {
        "its layer is not WebAssembly"
    };
    Err(OciError::NotAComponent {
        reference: reference.to_string(),
        reason: reason.to_owned(),
    })
}

/// oci-client's error, as what went wrong for the user.
fn registry_error(reference: &OciReference, error: OciDistributionError) -> OciError {
    let not_found = || OciError::NotFound {
        reference: reference.to_string(),
    };
    match error {
        OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
            OciError::Unreachable {
                registry: reference.registry().to_owned(),
                reason: causes(&e),
            }
        }
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => OciError::DigestMismatch {
            reference: reference.to_string(),
            expected,
            actual,
        },
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) =>
        {
            not_found()
        }
        other => OciError::Registry {
            reference: reference.to_string(),
            reason: causes(&other),
        },
    }
}

/// An error and its sources on one line ("error sending request: ...: Connection refused").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
