//! The typed API over one `result-store` resource.

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::{self, Component};
use crate::error::Error;
use crate::runtime::HostState;

/// An open result store, backed by its own component instance.
pub struct ResultStore {
    store: Store<HostState>,
    bindings: Component,
    resource: ResourceAny,
}

impl ResultStore {
    pub(crate) fn open(
        mut store: Store<HostState>,
        bindings: Component,
        config: &s3_result_store::ConfigInput,
    ) -> Result<ResultStore, Error> {
        let resource = bindings
            .result_store_s3_store()
            .result_store()
            .call_open(&mut store, &bindings::wit_config(config))?
            .map_err(bindings::core_error)?;
        Ok(ResultStore {
            store,
            bindings,
            resource,
        })
    }

    /// The value under `key`, or `None` when there is no such object. Keys may be text or
    /// bytes; bytes must be UTF-8, as Celery requires.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let key = utf8_key(key.as_ref())?;
        let guest = self.bindings.result_store_s3_store().result_store();
        Ok(guest
            .call_get(&mut self.store, self.resource, key)?
            .map_err(bindings::core_error)?)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let key = utf8_key(key.as_ref())?;
        let guest = self.bindings.result_store_s3_store().result_store();
        Ok(guest
            .call_set(&mut self.store, self.resource, key, value.as_ref())?
            .map_err(bindings::core_error)?)
    }

    /// Removes `key`; removing a missing key succeeds.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        let key = utf8_key(key.as_ref())?;
        let guest = self.bindings.result_store_s3_store().result_store();
        Ok(guest
            .call_delete(&mut self.store, self.resource, key)?
            .map_err(bindings::core_error)?)
    }
}

impl Drop for ResultStore {
    fn drop(&mut self) {
        // The instance goes away with the store; dropping the resource first lets the guest
        // run its destructor. A failure here has nowhere useful to go.
        let _ = self.resource.resource_drop(&mut self.store);
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
