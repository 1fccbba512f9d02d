//! The typed API over one `result-store` resource.

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::{self, store as guest};
use crate::driver::Driver;
use crate::error::Error;
use crate::state::HostState;

/// An open result store, backed by its own component instance.
pub struct ResultStore {
    store: Store<HostState>,
    guest: guest::Guest,
    resource: ResourceAny,
    driver: Driver,
}

impl ResultStore {
    pub(crate) fn open(
        mut store: Store<HostState>,
        guest: guest::Guest,
        driver: Driver,
        config: &s3_result_store::ConfigInput,
    ) -> Result<ResultStore, Error> {
        let config = bindings::wit_config(config);
        let resource = driver
            .run(guest.result_store().call_open(&mut store, &config))?
            .map_err(bindings::core_error)?;
        Ok(ResultStore {
            store,
            guest,
            resource,
            driver,
        })
    }

    /// The value under `key`, or `None` when there is no such object. Keys may be text or
    /// bytes; bytes must be UTF-8, as Celery requires.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let key = utf8_key(key.as_ref())?;
        let guest = self.guest.result_store();
        Ok(self
            .driver
            .run(guest.call_get(&mut self.store, self.resource, key))?
            .map_err(bindings::core_error)?)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let key = utf8_key(key.as_ref())?;
        let guest = self.guest.result_store();
        Ok(self
            .driver
            .run(guest.call_set(&mut self.store, self.resource, key, value.as_ref()))?
            .map_err(bindings::core_error)?)
    }

    /// The most linear memory this store's instance has had so far, in bytes. A wasm
    /// instance's memory only grows, so it holds this much until the store is dropped.
    pub fn guest_memory_peak(&self) -> usize {
        self.store.data().guest_memory_peak()
    }

    /// Removes `key`; removing a missing key succeeds.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        let key = utf8_key(key.as_ref())?;
        let guest = self.guest.result_store();
        Ok(self
            .driver
            .run(guest.call_delete(&mut self.store, self.resource, key))?
            .map_err(bindings::core_error)?)
    }
}

impl ResultStore {
    /// `get` of many keys, the component keeping up to 32 requests in flight at once. The
    /// outer error is a runtime failure; each key has its own result.
    pub fn get_many<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<Vec<ValueResult>, Error> {
        let keys = utf8_keys(keys)?;
        let guest = self.guest.result_store();
        let results =
            self.driver
                .run(guest.call_get_many(&mut self.store, self.resource, &keys))?;
        Ok(results
            .into_iter()
            .map(|r| r.map_err(store_error))
            .collect())
    }

    /// `set` of many entries at once.
    pub fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        entries: &[(K, V)],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        let entries = entries
            .iter()
            .map(|(k, v)| Ok((utf8_key(k.as_ref())?.to_owned(), v.as_ref().to_vec())))
            .collect::<Result<Vec<_>, Error>>()?;
        let guest = self.guest.result_store();
        let results =
            self.driver
                .run(guest.call_set_many(&mut self.store, self.resource, &entries))?;
        Ok(results
            .into_iter()
            .map(|r| r.map_err(store_error))
            .collect())
    }

    /// `delete` of many keys at once.
    pub fn delete_many<K: AsRef<[u8]>>(
        &mut self,
        keys: &[K],
    ) -> Result<Vec<Result<(), Error>>, Error> {
        let keys = utf8_keys(keys)?;
        let guest = self.guest.result_store();
        let results =
            self.driver
                .run(guest.call_delete_many(&mut self.store, self.resource, &keys))?;
        Ok(results
            .into_iter()
            .map(|r| r.map_err(store_error))
            .collect())
    }
}

/// One key's answer in a batch read: its value, none, or its own error.
pub type ValueResult = Result<Option<Vec<u8>>, Error>;

fn store_error(e: bindings::wit::Error) -> Error {
    Error::Store(bindings::core_error(e))
}

fn utf8_keys<K: AsRef<[u8]>>(keys: &[K]) -> Result<Vec<String>, Error> {
    keys.iter()
        .map(|k| utf8_key(k.as_ref()).map(str::to_owned))
        .collect()
}

impl Drop for ResultStore {
    fn drop(&mut self) {
        // The instance goes away with the store; dropping the resource first lets the guest
        // run its destructor. A failure here has nowhere useful to go.
        if self.driver.can_run() {
            let _ = self
                .driver
                .run(self.resource.resource_drop_async(&mut self.store));
        }
    }
}

/// Bytes keys are decoded as UTF-8 like Celery's `bytes_to_str`; invalid bytes are refused
/// here rather than replaced, so two different byte keys can never share an object.
fn utf8_key(key: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(key).map_err(|e| {
        Error::Store(s3_result_store::Error::InvalidKey(format!(
            "the key is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_keys_must_be_utf8() {
        assert_eq!(
            utf8_key(b"celery-task-meta-1").unwrap(),
            "celery-task-meta-1"
        );
        assert_eq!(utf8_key("é".as_bytes()).unwrap(), "é");
        let err = utf8_key(b"ab\xffcd").unwrap_err();
        assert!(
            matches!(&err, Error::Store(s3_result_store::Error::InvalidKey(m)) if m.contains("offset 2")),
            "{err}"
        );
    }
}
