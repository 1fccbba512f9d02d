//! The host's error: the store's own typed error, or a failure of the runtime around it.

use std::fmt;

/// A failed call through the host.
#[derive(Debug)]
pub enum Error {
    /// The store refused or failed the operation: the WIT `error` variant, as the core's enum.
    Store(s3_result_store::Error),
    /// A `wasi:keyvalue` call failed: its own error (no such store, access denied, other).
    KeyValue(s3_result_store::keyvalue::KvError),
    /// The component could not be loaded or instantiated, or it trapped. Never expected from
    /// a correct component; kept apart so callers can tell a bug from an S3 answer.
    Runtime(wasmtime::Error),
    /// The component was built without the feature that exports `interface` (see the
    /// component's Cargo features), so what was asked of it cannot be opened.
    NotExported {
        interface: &'static str,
        feature: &'static str,
    },
    /// The component could not be had from its OCI registry, or its cached copy is not what
    /// was downloaded (see [`crate::OciCache`]).
    Oci(crate::oci::OciError),
}

impl Error {
    /// The store error, if this is one.
    pub fn store_error(&self) -> Option<&s3_result_store::Error> {
        match self {
            Error::Store(e) => Some(e),
            Error::KeyValue(_) | Error::Runtime(_) | Error::NotExported { .. } | Error::Oci(_) => {
                None
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Store(e) => e.fmt(f),
            Error::KeyValue(e) => e.fmt(f),
            Error::Runtime(e) => write!(f, "component runtime failure: {e:#}"),
            Error::NotExported { interface, feature } => write!(
                f,
                "the component does not export {interface}: it was built without the \
                 `{feature}` feature"
            ),
            Error::Oci(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Store(e) => Some(e),
            Error::KeyValue(e) => Some(e),
            Error::Runtime(e) => Some(e.as_ref()),
            Error::NotExported { .. } => None,
            Error::Oci(e) => Some(e),
        }
    }
}

impl From<crate::oci::OciError> for Error {
    fn from(e: crate::oci::OciError) -> Self {
        Error::Oci(e)
    }
}

impl From<s3_result_store::Error> for Error {
    fn from(e: s3_result_store::Error) -> Self {
        Error::Store(e)
    }
}

impl From<crate::sender::InvalidRoots> for Error {
    fn from(e: crate::sender::InvalidRoots) -> Self {
        Error::Runtime(wasmtime::Error::msg(e.to_string()))
    }
}

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Runtime(e)
    }
}
