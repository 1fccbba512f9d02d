//! s3s-fs keeps an object in two files, its bytes and then its ETag, and checks a PUT's
//! If-Match / If-None-Match before it writes. Under concurrent requests on one key a GET can
//! see new bytes with the old ETag, and two conditional PUTs can both pass one precondition.
//! S3 itself is linearizable per key; locking each key (writes exclusive, reads shared) makes
//! the embedded server so too, which the keyvalue atomics' tests rely on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;
use tokio::sync::RwLock;

/// `(bucket, key)` to the lock of that object.
type KeyLocks = HashMap<(String, String), Arc<RwLock<()>>>;

pub(super) struct Linearized {
    inner: FileSystem,
    keys: Mutex<KeyLocks>,
}

impl Linearized {
    pub(super) fn new(inner: FileSystem) -> Linearized {
        Linearized {
            inner,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lock_of(&self, bucket: &str, key: &str) -> Arc<RwLock<()>> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the locks nobody holds, so the map stays as small as the requests in flight.
        keys.retain(|_, lock| Arc::strong_count(lock) > 1);
        let entry = keys.entry((bucket.to_owned(), key.to_owned()));
        Arc::clone(entry.or_default())
    }
}

/// Forwards S3 methods to s3s-fs, under the key's lock when the input names one object.
macro_rules! forward {
    ($($method:ident($input:ty) -> $output:ty: $mode:ident;)*) => {
        #[async_trait::async_trait]
        impl S3 for Linearized {
            $(
                async fn $method(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    forward!(@call self, req, $method, $mode)
                }
            )*
        }
    };
    (@call $self:ident, $req:ident, $method:ident, any) => {
        $self.inner.$method($req).await
    };
    (@call $self:ident, $req:ident, $method:ident, read) => {{
        let lock = $self.lock_of(&$req.input.bucket, &$req.input.key);
        let _shared = lock.read().await;
        $self.inner.$method($req).await
    }};
    (@call $self:ident, $req:ident, $method:ident, write) => {{
        let lock = $self.lock_of(&$req.input.bucket, &$req.input.key);
        let _exclusive = lock.write().await;
        $self.inner.$method($req).await
    }};
}

forward! {
    create_bucket(CreateBucketInput) -> CreateBucketOutput: any;
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput: any;
    head_bucket(HeadBucketInput) -> HeadBucketOutput: any;
    list_buckets(ListBucketsInput) -> ListBucketsOutput: any;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput: any;
    list_objects(ListObjectsInput) -> ListObjectsOutput: any;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output: any;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput: any;
    copy_object(CopyObjectInput) -> CopyObjectOutput: any;
    get_object(GetObjectInput) -> GetObjectOutput: read;
    head_object(HeadObjectInput) -> HeadObjectOutput: read;
    put_object(PutObjectInput) -> PutObjectOutput: write;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput: write;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput: any;
    upload_part(UploadPartInput) -> UploadPartOutput: any;
    upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput: any;
    list_parts(ListPartsInput) -> ListPartsOutput: any;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput: write;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput: any;
}
