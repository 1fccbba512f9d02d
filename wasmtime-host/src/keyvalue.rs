//! The typed API over the component's `wasi:keyvalue` exports, at either draft: what an
//! application linked against the component sees, for tests and tools on the host.

use s3_result_store::keyvalue::{Entry, KvError};
use wasmtime::Store;
use wasmtime::component::{Instance, ResourceAny};

use crate::bindings::{
    KV_DRAFT_STORE_INTERFACE, KV_DRAFT2_STORE_INTERFACE, KvDraft2Indices, KvDraftIndices, KvGuests,
    kv_draft as draft, kv_draft2 as draft2,
};
use crate::driver::Driver;
use crate::error::Error;
use crate::state::HostState;

/// Which `wasi:keyvalue` the calls go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvVersion {
    /// `wasi:keyvalue@0.2.0-draft` (wasmtime's): numeric cursors, unsigned increment.
    Draft,
    /// `wasi:keyvalue@0.2.0-draft2` (Spin's): token cursors, signed increment, compare-and-swap.
    Draft2,
}

impl KvVersion {
    /// The name of this draft's `store` interface.
    pub fn store_interface(self) -> &'static str {
        match self {
            KvVersion::Draft => KV_DRAFT_STORE_INTERFACE,
            KvVersion::Draft2 => KV_DRAFT2_STORE_INTERFACE,
        }
    }
}

/// Where one draft's interfaces are in the component (see `bindings::ExportIndices`).
pub(crate) enum KvIndices<'a> {
    Draft(&'a KvDraftIndices),
    Draft2(&'a KvDraft2Indices),
}

impl KvIndices<'_> {
    pub(crate) fn load(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Guests> {
        Ok(match self {
            KvIndices::Draft(indices) => Guests::Draft(indices.load(store, instance)?),
            KvIndices::Draft2(indices) => Guests::Draft2(indices.load(store, instance)?),
        })
    }
}

/// One draft's interfaces in an instance.
pub(crate) enum Guests {
    Draft(KvGuests<draft::store::Guest, draft::batch::Guest, draft::atomics::Guest>),
    Draft2(KvGuests<draft2::store::Guest, draft2::batch::Guest, draft2::atomics::Guest>),
}

/// Where a listing continues: a continuation token (draft2) or a position (draft).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    Token(String),
    Position(u64),
}

/// One page of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPage {
    pub keys: Vec<String>,
    pub cursor: Option<Cursor>,
}

/// A compare-and-swap begun with [`KeyValueBucket::cas`] (draft2).
#[derive(Debug)]
pub struct Cas(ResourceAny);

/// What became of a swap.
#[derive(Debug)]
pub enum Swap {
    Done,
    /// Another write came first; this is the key as it is now, for a retry.
    Changed(Cas),
}

/// An open `bucket` resource, backed by its own component instance.
pub struct KeyValueBucket {
    store: Store<HostState>,
    guests: Guests,
    bucket: ResourceAny,
    driver: Driver,
}

impl From<draft::store::Error> for KvError {
    fn from(e: draft::store::Error) -> KvError {
        match e {
            draft::store::Error::NoSuchStore => KvError::NoSuchStore,
            draft::store::Error::AccessDenied => KvError::AccessDenied,
            draft::store::Error::Other(m) => KvError::Other(m),
        }
    }
}

impl From<draft2::store::Error> for KvError {
    fn from(e: draft2::store::Error) -> KvError {
        match e {
            draft2::store::Error::NoSuchStore => KvError::NoSuchStore,
            draft2::store::Error::AccessDenied => KvError::AccessDenied,
            draft2::store::Error::Other(m) => KvError::Other(m),
        }
    }
}

/// The same call at whichever draft the bucket was opened with; both answer the same types
/// but for the error, which becomes a [`KvError`]. `$i` is the draft's interface `$iface`.
macro_rules! either {
    ($self:ident, $iface:ident, |$i:ident| $call:expr) => {
        match &$self.guests {
            Guests::Draft(guests) => {
                let $i = &guests.$iface;
                $self
                    .driver
                    .run($call)?
                    .map_err(|e| Error::KeyValue(e.into()))
            }
            Guests::Draft2(guests) => {
                let $i = &guests.$iface;
                $self
                    .driver
                    .run($call)?
                    .map_err(|e| Error::KeyValue(e.into()))
            }
        }
    };
}

impl KeyValueBucket {
    pub(crate) fn open(
        mut store: Store<HostState>,
        guests: Guests,
        driver: Driver,
        identifier: &str,
    ) -> Result<KeyValueBucket, Error> {
        let opened = match &guests {
            Guests::Draft(g) => driver
                .run(g.store.call_open(&mut store, identifier))?
                .map_err(|e| Error::KeyValue(e.into())),
            Guests::Draft2(g) => driver
                .run(g.store.call_open(&mut store, identifier))?
                .map_err(|e| Error::KeyValue(e.into())),
        };
        Ok(KeyValueBucket {
            store,
            guests,
            bucket: opened?,
            driver,
        })
    }

    pub fn version(&self) -> KvVersion {
        match self.guests {
            Guests::Draft(_) => KvVersion::Draft,
            Guests::Draft2(_) => KvVersion::Draft2,
        }
    }

    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        either!(self, store, |i| i.bucket().call_get(
            &mut self.store,
            self.bucket,
            key
        ))
    }

    pub fn set(&mut self, key: &str, value: &[u8]) -> Result<(), Error> {
        either!(self, store, |i| i.bucket().call_set(
            &mut self.store,
            self.bucket,
            key,
            value
        ))
    }

    pub fn delete(&mut self, key: &str) -> Result<(), Error> {
        either!(self, store, |i| i.bucket().call_delete(
            &mut self.store,
            self.bucket,
            key
        ))
    }

    pub fn exists(&mut self, key: &str) -> Result<bool, Error> {
        either!(self, store, |i| i.bucket().call_exists(
            &mut self.store,
            self.bucket,
            key
        ))
    }

    /// One page of keys from `cursor` (the start when `None`). The cursor must be of this
    /// bucket's draft: a token for draft2, a position for draft.
    pub fn list_keys(&mut self, cursor: Option<&Cursor>) -> Result<KeyPage, Error> {
        let wrong_cursor = || {
            Error::KeyValue(KvError::Other(format!(
                "a {cursor:?} is no cursor of wasi:keyvalue {:?}",
                self.version()
            )))
        };
        match &self.guests {
            Guests::Draft(guests) => {
                let position = match cursor {
                    None => None,
                    Some(Cursor::Position(p)) => Some(*p),
                    Some(Cursor::Token(_)) => return Err(wrong_cursor()),
                };
                let guest = guests.store.bucket();
                let page = self
                    .driver
                    .run(guest.call_list_keys(&mut self.store, self.bucket, position))?
                    .map_err(|e| Error::KeyValue(e.into()))?;
                Ok(KeyPage {
                    keys: page.keys,
                    cursor: page.cursor.map(Cursor::Position),
                })
            }
            Guests::Draft2(guests) => {
                let token = match cursor {
                    None => None,
                    Some(Cursor::Token(t)) => Some(t.as_str()),
                    Some(Cursor::Position(_)) => return Err(wrong_cursor()),
                };
                let guest = guests.store.bucket();
                let page = self
                    .driver
                    .run(guest.call_list_keys(&mut self.store, self.bucket, token))?
                    .map_err(|e| Error::KeyValue(e.into()))?;
                Ok(KeyPage {
                    keys: page.keys,
                    cursor: page.cursor.map(Cursor::Token),
                })
            }
        }
    }

    /// Every key, page after page.
    pub fn all_keys(&mut self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_keys(cursor.as_ref())?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    pub fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Entry>>, Error> {
        either!(self, batch, |i| i.call_get_many(
            &mut self.store,
            self.bucket,
            keys
        ))
    }

    pub fn set_many(&mut self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        either!(self, batch, |i| i.call_set_many(
            &mut self.store,
            self.bucket,
            entries
        ))
    }

    pub fn delete_many(&mut self, keys: &[String]) -> Result<(), Error> {
        either!(self, batch, |i| i.call_delete_many(
            &mut self.store,
            self.bucket,
            keys
        ))
    }

    /// Adds `delta` to the counter under `key` (0 when missing); returns the new value. At
    /// draft, whose counters are unsigned, `delta` must not be negative.
    pub fn increment(&mut self, key: &str, delta: i64) -> Result<i64, Error> {
        match &self.guests {
            Guests::Draft2(guests) => {
                let increment =
                    guests
                        .atomics
                        .call_increment(&mut self.store, self.bucket, key, delta);
                self.driver
                    .run(increment)?
                    .map_err(|e| Error::KeyValue(e.into()))
            }
            Guests::Draft(guests) => {
                let delta = u64::try_from(delta).map_err(|_| {
                    Error::KeyValue(KvError::Other(
                        "wasi:keyvalue 0.2.0-draft counters only go up".into(),
                    ))
                })?;
                let increment =
                    guests
                        .atomics
                        .call_increment(&mut self.store, self.bucket, key, delta);
                let value = self
                    .driver
                    .run(increment)?
                    .map_err(|e| Error::KeyValue(e.into()))?;
                i64::try_from(value)
                    .map_err(|_| Error::KeyValue(KvError::Other(format!("the counter is {value}"))))
            }
        }
    }

    /// Starts a compare-and-swap on `key` (draft2 only).
    pub fn cas(&mut self, key: &str) -> Result<Cas, Error> {
        let guest = draft2(&self.guests, "compare-and-swap")?.atomics.cas();
        let cas = self
            .driver
            .run(guest.call_new(&mut self.store, self.bucket, key))?
            .map_err(|e| Error::KeyValue(e.into()))?;
        Ok(Cas(cas))
    }

    /// The value `cas` read.
    pub fn cas_current(&mut self, cas: &Cas) -> Result<Option<Vec<u8>>, Error> {
        let guest = draft2(&self.guests, "compare-and-swap")?.atomics.cas();
        self.driver
            .run(guest.call_current(&mut self.store, cas.0))?
            .map_err(|e| Error::KeyValue(e.into()))
    }

    /// Writes `value` if the key is still as `cas` read it.
    pub fn swap(&mut self, cas: Cas, value: &[u8]) -> Result<Swap, Error> {
        let swap = draft2(&self.guests, "compare-and-swap")?.atomics.call_swap(
            &mut self.store,
            cas.0,
            value,
        );
        let answer = self.driver.run(swap)?;
        match answer {
            Ok(()) => Ok(Swap::Done),
            Err(draft2::atomics::CasError::CasFailed(fresh)) => Ok(Swap::Changed(Cas(fresh))),
            Err(draft2::atomics::CasError::StoreError(e)) => Err(Error::KeyValue(e.into())),
        }
    }

    /// Ends a compare-and-swap without swapping.
    pub fn drop_cas(&mut self, cas: Cas) -> Result<(), Error> {
        Ok(self
            .driver
            .run(cas.0.resource_drop_async(&mut self.store))?)
    }
}

/// The draft2 interfaces, which alone have `what`.
fn draft2<'a>(
    guests: &'a Guests,
    what: &str,
) -> Result<&'a KvGuests<draft2::store::Guest, draft2::batch::Guest, draft2::atomics::Guest>, Error>
{
    match guests {
        Guests::Draft2(guests) => Ok(guests),
        Guests::Draft(_) => Err(Error::KeyValue(KvError::Other(format!(
            "wasi:keyvalue 0.2.0-draft has no {what}"
        )))),
    }
}

impl std::fmt::Debug for KeyValueBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueBucket")
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

impl Drop for KeyValueBucket {
    fn drop(&mut self) {
        // As for the other resources: let the guest run its destructor; nowhere to report.
        if self.driver.can_run() {
            let _ = self
                .driver
                .run(self.bucket.resource_drop_async(&mut self.store));
        }
    }
}
