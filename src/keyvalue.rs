//! `wasi:keyvalue` over the store: one implementation behind both drafts the component exports.
//! A bucket is an S3 bucket, optionally narrowed to a key prefix; endpoint, region and
//! credentials come from the environment, as for any AWS client.

use std::cell::{Cell, RefCell};

use crate::bulk;
use crate::conditional::{Precondition, PutIf, Update, Versioned};
use crate::config::{AddressingStyle, Config, ConfigInput};
use crate::error::Error;
use crate::store::{Store, System, Transport};

/// How many list positions a bucket remembers the continuation token of, so that a draft
/// cursor (a position) resumes without re-listing from the start.
const REMEMBERED_CURSORS: usize = 64;

/// The errors of `wasi:keyvalue/store`, in the same shape at both drafts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NoSuchStore => f.write_str(
                "no such store: the identifier names no bucket (bucket, bucket/prefix or \
                 s3://bucket/prefix), or the bucket does not exist",
            ),
            KvError::AccessDenied => {
                f.write_str("access denied: check the credentials and the bucket's policy")
            }
            KvError::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for KvError {}

impl From<Error> for KvError {
    fn from(e: Error) -> KvError {
        match e {
            Error::NoSuchBucket(_) => KvError::NoSuchStore,
            Error::AccessDenied(_) => KvError::AccessDenied,
            other => KvError::Other(other.to_string()),
        }
    }
}

/// A store identifier: `bucket`, `bucket/prefix` or `s3://bucket/prefix`. The prefix is a
/// folder: a `/` is added when it does not end with one.
pub fn parse_identifier(identifier: &str) -> Result<(String, String), KvError> {
    let rest = identifier.strip_prefix("s3://").unwrap_or(identifier);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(KvError::NoSuchStore);
    }
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}

/// The config for a store identifier, the rest from `env`: the `AWS_*` variables any AWS client
/// reads, and `S3RS_ADDRESSING_STYLE`, `S3RS_MAX_ATTEMPTS`, `S3RS_OPERATION_TIMEOUT_MS`,
/// `S3RS_CONNECT_TIMEOUT_MS`, `S3RS_FIRST_BYTE_TIMEOUT_MS`, `S3RS_BETWEEN_BYTES_TIMEOUT_MS` and
/// `S3RS_MAX_VALUE_BYTES` for the config record's other fields. An identifier that names no
/// valid bucket is no store; a bad environment (no credentials, a malformed endpoint, a
/// setting that is not a number) is said plainly.
/// Whether the bucket exists shows on first use, so opening costs no request.
pub fn resolve(
    identifier: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, KvError> {
    let (bucket, prefix) = parse_identifier(identifier)?;
    crate::config::validate_bucket(&bucket).map_err(|_| KvError::NoSuchStore)?;
    let env: Vec<(String, String)> = env.into_iter().collect();
    let var = |name: &str| {
        env.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let number = |name: &str| -> Result<Option<u64>, KvError> {
        var(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| KvError::Other(format!("{name} is {v:?}, not a whole number")))
            })
            .transpose()
    };
    let small = |name: &str| -> Result<Option<u32>, KvError> {
        number(name)?
            .map(|n| u32::try_from(n).map_err(|_| KvError::Other(format!("{name} is too large"))))
            .transpose()
    };
    let addressing_style = match var("S3RS_ADDRESSING_STYLE") {
        None | Some("auto") => AddressingStyle::Auto,
        Some("path") => AddressingStyle::Path,
        Some("virtual-hosted") => AddressingStyle::VirtualHosted,
        Some(other) => {
            return Err(KvError::Other(format!(
                "S3RS_ADDRESSING_STYLE is {other:?}; use auto, path or virtual-hosted"
            )));
        }
    };
    let input = ConfigInput {
        bucket_name: Some(bucket),
        base_path: Some(prefix),
        addressing_style,
        max_attempts: small("S3RS_MAX_ATTEMPTS")?,
        operation_timeout_ms: small("S3RS_OPERATION_TIMEOUT_MS")?,
        connect_timeout_ms: small("S3RS_CONNECT_TIMEOUT_MS")?,
        first_byte_timeout_ms: small("S3RS_FIRST_BYTE_TIMEOUT_MS")?,
        between_bytes_timeout_ms: small("S3RS_BETWEEN_BYTES_TIMEOUT_MS")?,
        max_value_bytes: number("S3RS_MAX_VALUE_BYTES")?,
        ..ConfigInput::default()
    };
    Config::resolve(&input, env).map_err(|e| KvError::Other(e.to_string()))
}

/// One `bucket` resource.
pub struct Bucket<T, S> {
    store: Store<T, S>,
    /// Conditional-write support, once probed: atomics need it on every server.
    conditional: Cell<Option<bool>>,
    /// `(position, continuation token)` of list pages handed out, newest last.
    cursors: RefCell<Vec<(u64, String)>>,
}

/// A key and its value, as batch reads answer them.
pub type Entry = (String, Vec<u8>);

/// One page of keys and where the next begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPage<C> {
    pub keys: Vec<String>,
    pub cursor: Option<C>,
}

impl<T: Transport, S: System> Bucket<T, S> {
    pub fn new(store: Store<T, S>) -> Self {
        Bucket {
            store,
            conditional: Cell::new(None),
            cursors: RefCell::new(Vec::new()),
        }
    }

    pub fn store(&self) -> &Store<T, S> {
        &self.store
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.store.get(key)?)
    }

    pub fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        Ok(self.store.set(key, value)?)
    }

    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        Ok(self.store.delete(key)?)
    }

    pub fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.store.exists(key)?)
    }

    /// One ListObjectsV2 page of keys (prefix removed), continuing from an S3 continuation
    /// token: the draft2 cursor.
    pub fn list_keys(&self, token: Option<&str>) -> Result<KeyPage<String>, KvError> {
        let page = self.list_page(token)?;
        Ok(KeyPage {
            keys: page.0,
            cursor: page.1,
        })
    }

    /// Keys from position `start` of the listing (keys in S3's order): the draft's numeric
    /// cursor, which is the position of the next page's first key. A position handed out
    /// before resumes at once; any other is reached by listing up to it.
    pub fn list_keys_at(&self, start: u64) -> Result<KeyPage<u64>, KvError> {
        let (mut position, mut token) = self.nearest_cursor(start);
        loop {
            let (keys, next) = self.list_page(token.as_deref())?;
            let end = position + keys.len() as u64;
            if start < end || next.is_none() {
                let skip = usize::try_from(start.saturating_sub(position)).unwrap_or(usize::MAX);
                let keys: Vec<String> = keys.into_iter().skip(skip).collect();
                let cursor = next.map(|token| {
                    self.remember(end, token);
                    end
                });
                return Ok(KeyPage { keys, cursor });
            }
            position = end;
            token = next;
        }
    }

    fn list_page(&self, token: Option<&str>) -> Result<(Vec<String>, Option<String>), KvError> {
        let config = self.store.config();
        let prefix = &config.base_path;
        let mut request = bulk::list_objects_request(config, prefix, token, bulk::MAX_LIST_KEYS)?;
        let page = self.store.run(&mut request, |r| {
            bulk::parse_list_objects(&config.bucket, r)
        })?;
        let keys = page
            .objects
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(prefix.as_str()).map(str::to_owned))
            .collect();
        Ok((keys, page.next_continuation_token))
    }

    fn nearest_cursor(&self, start: u64) -> (u64, Option<String>) {
        self.cursors
            .borrow()
            .iter()
            .filter(|(position, _)| *position <= start)
            .max_by_key(|(position, _)| *position)
            .map_or((0, None), |(position, token)| {
                (*position, Some(token.clone()))
            })
    }

    fn remember(&self, position: u64, token: String) {
        let mut cursors = self.cursors.borrow_mut();
        cursors.retain(|(p, _)| *p != position);
        if cursors.len() == REMEMBERED_CURSORS {
            cursors.remove(0);
        }
        cursors.push((position, token));
    }

    /// Values for many keys, the reads in flight together; `None` for a missing key. One
    /// failure fails the call, as the interface has one error for the batch.
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Entry>>, KvError> {
        let values = self.store.get_many(keys);
        keys.iter()
            .zip(values)
            .map(|(key, value)| Ok(value?.map(|v| ((*key).to_owned(), v))))
            .collect()
    }

    pub fn set_many(&self, entries: Vec<(&str, Vec<u8>)>) -> Result<(), KvError> {
        first_error(self.store.set_many(entries))
    }

    pub fn delete_many(&self, keys: &[&str]) -> Result<(), KvError> {
        first_error(self.store.delete_many(keys))
    }

    /// Adds `delta` to the decimal number under `key` (0 when missing) and returns the sum.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        self.add(key, delta, i64::checked_add)
    }

    /// [`Bucket::increment`] over unsigned numbers, as the draft has it.
    pub fn increment_unsigned(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        self.add(key, delta, u64::checked_add)
    }

    fn add<N>(&self, key: &str, delta: N, checked_add: fn(N, N) -> Option<N>) -> Result<N, KvError>
    where
        N: Copy + Default + std::fmt::Display + std::str::FromStr,
    {
        self.require_conditional_writes()?;
        let sum = self.store.update(key, |current| {
            let value = match current {
                None => N::default(),
                Some(bytes) => parse_counter::<N>(key, bytes)?,
            };
            let sum = checked_add(value, delta).ok_or_else(|| overflow(key, value, delta))?;
            Ok(Update::Write(sum.to_string().into_bytes(), sum))
        })?;
        Ok(sum)
    }

    /// The start of a compare-and-swap: the key's value and version now.
    pub fn cas_read(&self, key: &str) -> Result<Cas, KvError> {
        self.require_conditional_writes()?;
        let read = self.store.get_versioned(key)?;
        Ok(Cas {
            key: key.to_owned(),
            read,
        })
    }

    /// Writes `value` if the key is still as `cas` read it. When it is not, the answer is a
    /// fresh `Cas` at the key's latest version, for a retry.
    pub fn cas_swap(&self, cas: Cas, value: Vec<u8>) -> Result<(), SwapError> {
        let write_id = self.store.new_write_id();
        let precondition = Precondition::of(cas.read.as_ref());
        match self.store.put_if(&cas.key, value, &precondition, &write_id) {
            Ok(PutIf::Written) => Ok(()),
            Ok(PutIf::Conflict) => {
                let read = self
                    .store
                    .get_versioned(&cas.key)
                    .map_err(|e| SwapError::Store(e.into()))?;
                if read.as_ref().and_then(|r| r.write_id.as_deref()) == Some(write_id.as_str()) {
                    // A retried attempt conflicted with our own first attempt, which landed.
                    return Ok(());
                }
                Err(SwapError::Changed(Cas { key: cas.key, read }))
            }
            Err(e) => Err(SwapError::Store(e.into())),
        }
    }

    fn require_conditional_writes(&self) -> Result<(), KvError> {
        match self.conditional.get() {
            Some(true) => Ok(()),
            Some(false) => Err(KvError::from(Error::Unsupported(
                "the server ignores conditional writes (If-Match / If-None-Match), so \
                 increment and compare-and-swap would silently lose updates"
                    .into(),
            ))),
            None => match self.store.probe_conditional_writes() {
                Ok(()) => {
                    self.conditional.set(Some(true));
                    Ok(())
                }
                Err(e @ Error::Unsupported(_)) => {
                    self.conditional.set(Some(false));
                    Err(e.into())
                }
                // Not an answer about support (the network, credentials): ask again next time.
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A compare-and-swap in progress: the key and the version read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cas {
    key: String,
    read: Option<Versioned>,
}

impl Cas {
    /// The value read, `None` when the key held nothing.
    pub fn current(&self) -> Option<&[u8]> {
        self.read.as_ref().map(|r| r.value.as_slice())
    }
}

/// Why a swap did not happen.
#[derive(Debug)]
pub enum SwapError {
    Store(KvError),
    /// Another write came first; this is the key as it is now.
    Changed(Cas),
}

fn first_error(results: Vec<Result<(), Error>>) -> Result<(), KvError> {
    results
        .into_iter()
        .try_for_each(|r| r.map_err(KvError::from))
}

/// Counters are stored as decimal text, as Redis and wasmtime's in-memory store keep them.
fn parse_counter<N: std::str::FromStr>(key: &str, bytes: &[u8]) -> Result<N, Error> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
            Error::InvalidValue(format!(
                "{key:?} holds {shown:?}, not a decimal integer in range, so it cannot be incremented"
            ))
        })
}

fn overflow(key: &str, value: impl std::fmt::Display, delta: impl std::fmt::Display) -> Error {
    Error::InvalidValue(format!(
        "incrementing {key:?} ({value}) by {delta} overflows; the value is left as it was"
    ))
}

#[cfg(test)]
mod tests;
