//! The one error type of the store, shared by the core, the component and (through WIT) the host.

use std::fmt;

/// What S3 said when it refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3ErrorInfo {
    /// HTTP status of the response.
    pub status: u16,
    /// The `<Code>` of the error body (`NoSuchKey`, `SlowDown`, ...); empty when there was none.
    pub code: String,
    /// The `<Message>` of the error body, or a short description when the body was not S3 XML.
    pub message: String,
    /// `<RequestId>` or the `x-amz-request-id` header, for support tickets.
    pub request_id: Option<String>,
}

impl fmt::Display for S3ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if !self.code.is_empty() {
            write!(f, " {}", self.code)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// Every way an operation of the store can fail. Messages never contain credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    MissingBucketName,
    MissingCredentials,
    InvalidConfig(String),
    InvalidKey(String),
    ValueTooLarge(String),
    InvalidValue(String),
    NoSuchBucket(String),
    AccessDenied(S3ErrorInfo),
    S3(S3ErrorInfo),
    Transport(String),
    Timeout(String),
    /// The server lacks a feature the operation needs (conditional writes).
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingBucketName => {
                f.write_str("missing bucket name: set bucket-name in the config")
            }
            Error::MissingCredentials => f.write_str(
                "missing S3 credentials: set access-key-id and secret-access-key in the config, \
                 or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
            ),
            Error::InvalidConfig(reason) => write!(f, "invalid config: {reason}"),
            Error::InvalidKey(reason) => write!(f, "invalid key: {reason}"),
            Error::ValueTooLarge(reason) => write!(f, "value too large: {reason}"),
            Error::InvalidValue(reason) => write!(f, "invalid value: {reason}"),
            Error::NoSuchBucket(bucket) => write!(f, "no such bucket: {bucket:?} does not exist"),
            Error::AccessDenied(info) => write!(f, "access denied: {info}"),
            Error::S3(info) => write!(f, "S3 error: {info}"),
            Error::Transport(reason) => write!(f, "transport error: {reason}"),
            Error::Timeout(reason) => write!(f, "timed out: {reason}"),
            Error::Unsupported(reason) => write!(f, "not supported by the server: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
