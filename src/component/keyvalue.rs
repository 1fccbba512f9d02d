//! Export glue for `wasi:keyvalue` at 0.2.0-draft2 and 0.2.0-draft: both map onto one
//! [`crate::keyvalue::Bucket`]. The two drafts' store and batch interfaces differ only in the
//! list cursor, so one macro writes both; their atomics differ and are written out.

use std::rc::Rc;

use super::exports::wasi::{keyvalue0_2_0_draft as draft, keyvalue0_2_0_draft2 as draft2};
use super::{Component, WasiSystem, transport::WasiHttp};
use crate::keyvalue::{self, Cas, KeyPage, KvError, SwapError};
use crate::store::Store;

type Bucket = keyvalue::Bucket<WasiHttp, WasiSystem>;

/// The `bucket` resource of both drafts. Shared with the `cas` resources read from it, which
/// may outlive the borrow they were made from.
pub struct KvBucket {
    bucket: Rc<Bucket>,
}

impl KvBucket {
    fn open(identifier: &str) -> Result<KvBucket, KvError> {
        let config = keyvalue::resolve(identifier, wasi::cli::environment::get_environment())?;
        Ok(KvBucket {
            bucket: Rc::new(Bucket::new(Store::new(config, WasiHttp, WasiSystem))),
        })
    }
}

macro_rules! store_and_batch {
    ($v:ident, $cursor:ty, $list:expr) => {
        impl From<KvError> for $v::store::Error {
            fn from(e: KvError) -> Self {
                match e {
                    KvError::NoSuchStore => $v::store::Error::NoSuchStore,
                    KvError::AccessDenied => $v::store::Error::AccessDenied,
                    KvError::Other(m) => $v::store::Error::Other(m),
                }
            }
        }

        impl $v::store::Guest for Component {
            type Bucket = KvBucket;

            fn open(identifier: String) -> Result<$v::store::Bucket, $v::store::Error> {
                Ok($v::store::Bucket::new(KvBucket::open(&identifier)?))
            }
        }

        impl $v::store::GuestBucket for KvBucket {
            fn get(&self, key: String) -> Result<Option<Vec<u8>>, $v::store::Error> {
                Ok(self.bucket.get(&key)?)
            }

            fn set(&self, key: String, value: Vec<u8>) -> Result<(), $v::store::Error> {
                Ok(self.bucket.set(&key, value)?)
            }

            fn delete(&self, key: String) -> Result<(), $v::store::Error> {
                Ok(self.bucket.delete(&key)?)
            }

            fn exists(&self, key: String) -> Result<bool, $v::store::Error> {
                Ok(self.bucket.exists(&key)?)
            }

            fn list_keys(
                &self,
                cursor: Option<$cursor>,
            ) -> Result<$v::store::KeyResponse, $v::store::Error> {
                let list: fn(&Bucket, Option<$cursor>) -> Result<KeyPage<$cursor>, KvError> = $list;
                let page = list(&self.bucket, cursor)?;
                Ok($v::store::KeyResponse {
                    keys: page.keys,
                    cursor: page.cursor,
                })
            }
        }

        impl $v::batch::Guest for Component {
            fn get_many(
                bucket: $v::store::BucketBorrow<'_>,
                keys: Vec<String>,
            ) -> Result<Vec<Option<(String, Vec<u8>)>>, $v::store::Error> {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                Ok(bucket.get::<KvBucket>().bucket.get_many(&keys)?)
            }

            fn set_many(
                bucket: $v::store::BucketBorrow<'_>,
                key_values: Vec<(String, Vec<u8>)>,
            ) -> Result<(), $v::store::Error> {
                let entries = key_values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                Ok(bucket.get::<KvBucket>().bucket.set_many(entries)?)
            }

            fn delete_many(
                bucket: $v::store::BucketBorrow<'_>,
                keys: Vec<String>,
            ) -> Result<(), $v::store::Error> {
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                Ok(bucket.get::<KvBucket>().bucket.delete_many(&keys)?)
            }
        }
    };
}

store_and_batch!(draft2, String, |bucket, cursor| bucket
    .list_keys(cursor.as_deref()));
store_and_batch!(draft, u64, |bucket, cursor| bucket
    .list_keys_at(cursor.unwrap_or(0)));

impl draft::atomics::Guest for Component {
    fn increment(
        bucket: draft::store::BucketBorrow<'_>,
        key: String,
        delta: u64,
    ) -> Result<u64, draft::store::Error> {
        Ok(bucket
            .get::<KvBucket>()
            .bucket
            .increment_unsigned(&key, delta)?)
    }
}

/// draft2's `cas` resource: a read in progress, and the bucket it came from.
pub struct KvCas {
    cas: Cas,
    bucket: Rc<Bucket>,
}

impl draft2::atomics::Guest for Component {
    type Cas = KvCas;

    fn increment(
        bucket: draft2::store::BucketBorrow<'_>,
        key: String,
        delta: i64,
    ) -> Result<i64, draft2::store::Error> {
        Ok(bucket.get::<KvBucket>().bucket.increment(&key, delta)?)
    }

    fn swap(cas: draft2::atomics::Cas, value: Vec<u8>) -> Result<(), draft2::atomics::CasError> {
        let KvCas { cas, bucket } = cas.into_inner::<KvCas>();
        match bucket.cas_swap(cas, value) {
            Ok(()) => Ok(()),
            Err(SwapError::Store(e)) => Err(draft2::atomics::CasError::StoreError(e.into())),
            Err(SwapError::Changed(cas)) => Err(draft2::atomics::CasError::CasFailed(
                draft2::atomics::Cas::new(KvCas { cas, bucket }),
            )),
        }
    }
}

impl draft2::atomics::GuestCas for KvCas {
    fn new(
        bucket: draft2::store::BucketBorrow<'_>,
        key: String,
    ) -> Result<draft2::atomics::Cas, draft2::store::Error> {
        let bucket = Rc::clone(&bucket.get::<KvBucket>().bucket);
        let cas = bucket.cas_read(&key)?;
        Ok(draft2::atomics::Cas::new(KvCas { cas, bucket }))
    }

    fn current(&self) -> Result<Option<Vec<u8>>, draft2::store::Error> {
        Ok(self.cas.current().map(<[u8]>::to_vec))
    }
}
