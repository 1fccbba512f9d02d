//! Why a component could not be had from an OCI registry or the local cache of its downloads.

use std::fmt;
use std::path::PathBuf;

/// A failure to fetch a component from an OCI registry, or to read it back from the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OciError {
    /// The reference is not `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`.
    BadReference { reference: String, reason: String },
    /// Nothing answered at the registry: refused, unresolvable, timed out, or TLS failed.
    Unreachable { registry: String, reason: String },
    /// The registry has no such repository, tag or digest.
    NotFound { reference: String },
    /// What the registry sent does not hash to the digest that names it: not used.
    DigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    /// The artifact is not one Wasm component (an image, several layers, a core module...).
    NotAComponent { reference: String, reason: String },
    /// A cached download no longer hashes to the digest it is stored under: refused, not run.
    CorruptCache {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The registry refused or failed otherwise (authentication, a server error).
    Registry { reference: String, reason: String },
    /// The cache directory could not be read or written.
    Cache { path: PathBuf, reason: String },
}

impl fmt::Display for OciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OciError::BadReference { reference, reason } => {
                write!(f, "{reference:?} is not an OCI reference: {reason}")
            }
            OciError::Unreachable { registry, reason } => {
                write!(f, "cannot reach the OCI registry {registry}: {reason}")
            }
            OciError::NotFound { reference } => {
                write!(f, "the OCI registry has no {reference}")
            }
            OciError::DigestMismatch {
                reference,
                expected,
                actual,
            } => write!(
                f,
                "{reference}: the registry sent bytes whose digest is {actual}, not {expected}; \
                 they were not used"
            ),
            OciError::NotAComponent { reference, reason } => {
                write!(f, "{reference} is not a Wasm component: {reason}")
            }
            OciError::CorruptCache {
                path,
                expected,
                actual,
            } => write!(
                f,
                "the cached component {} has changed (its digest is {actual}, not {expected}): \
                 refused",
                path.display()
            ),
            OciError::Registry { reference, reason } => {
                write!(f, "the OCI registry failed {reference}: {reason}")
            }
            OciError::Cache { path, reason } => {
                write!(f, "the OCI cache {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for OciError {}
