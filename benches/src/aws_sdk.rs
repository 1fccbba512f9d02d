//! `aws-sdk-s3`, the AWS SDK for Rust, as most Rust programs reach S3: behaviour version
//! "latest", so its default checksums (a CRC on every PUT, checked on every GET whose answer
//! carries one), on hyper 1 and rustls over ring like the other native contenders, on a
//! current-thread Tokio runtime driven by the calling thread.

use anyhow::{Context, Result};
use aws_sdk_s3::Client as S3Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use bytes::Bytes;
use s3_result_store::ConfigInput;

use crate::clients::Client;

pub struct AwsSdk {
    runtime: tokio::runtime::Runtime,
    client: S3Client,
    bucket: String,
}

impl AwsSdk {
    /// A client of `input`'s server, trusting `ca_pem` as well as the system's roots.
    pub fn new(input: &ConfigInput, ca_pem: Option<&[u8]>) -> Result<AwsSdk> {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut trust = TrustStore::empty().with_native_roots(ca_pem.is_none());
        if let Some(pem) = ca_pem {
            trust = trust.with_pem_certificate(pem.to_vec());
        }
        let tls = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .context("aws-sdk-s3: TLS context")?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls)
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(field(&input.region)))
            .endpoint_url(field(&input.endpoint_url))
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                field(&input.access_key_id),
                field(&input.secret_access_key),
                None,
                None,
                "bench",
            ))
            .http_client(http)
            .build();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(AwsSdk {
            runtime,
            client: S3Client::from_conf(config),
            bucket: field(&input.bucket_name),
        })
    }
}

impl Client for AwsSdk {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        let request = self.client.get_object().bucket(&self.bucket).key(key);
        self.runtime.block_on(async {
            match request.send().await {
                Ok(output) => Ok(Some(output.body.collect().await?.into_bytes())),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
                Err(e) => Err(anyhow::Error::new(e).context("aws-sdk-s3 GetObject")),
            }
        })
    }

    fn set(&mut self, key: &str, value: &Bytes) -> Result<()> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(value.clone()));
        self.runtime
            .block_on(request.send())
            .context("aws-sdk-s3 PutObject")?;
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<()> {
        let request = self.client.delete_object().bucket(&self.bucket).key(key);
        self.runtime
            .block_on(request.send())
            .context("aws-sdk-s3 DeleteObject")?;
        Ok(())
    }
}
