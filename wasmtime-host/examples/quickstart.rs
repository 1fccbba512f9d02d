//! The README's first minute from Rust: an S3 server in this process, the component built by
//! `scripts/demo`, and one value set, read back and deleted through it.
//!
//!     cargo run -p s3-result-store-host --example quickstart

use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
use s3_result_store_host::{ConfigInput, Runtime, default_component_path};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A signature-checking S3 server (s3s-fs) on loopback; any S3 endpoint does as well.
    let server = LocalS3::start(LocalS3Options::default())?;
    server.create_bucket("celery-results")?;

    let runtime = Runtime::load(default_component_path())?;
    let mut store = runtime.open(&ConfigInput {
        endpoint_url: Some(server.endpoint()),
        region: Some(server.region().into()),
        access_key_id: Some(server.access_key().into()),
        secret_access_key: Some(server.secret_key().into()),
        bucket_name: Some("celery-results".into()),
        base_path: Some("results/".into()),
        ..ConfigInput::default()
    })?;

    let key = "celery-task-meta-8a5ddc2e";
    store.set(key, br#"{"status": "SUCCESS", "result": 42}"#)?;
    let value = store.get(key)?.expect("the value just stored");
    println!("{key} = {}", String::from_utf8_lossy(&value));
    store.delete(key)?;
    println!("after delete: {:?}", store.get(key)?);
    Ok(())
}
