//! `demo`: the component against an embedded, signature-checking S3 server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};
use s3_result_store_host::{ConfigInput, Error, Runtime};

pub fn run(component: &Path, data_dir: Option<PathBuf>) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let runtime = Runtime::load(component)?;
    println!(
        "loaded the component {} in {:.0?}",
        component.display(),
        started.elapsed()
    );

    let server = LocalS3::start(LocalS3Options {
        data_dir,
        ..LocalS3Options::default()
    })
    .map_err(|e| {
        Error::Runtime(wasmtime::Error::msg(format!(
            "cannot start the local S3 server: {e:#}"
        )))
    })?;
    let bucket = "celery-results";
    server.create_bucket(bucket).map_err(|e| {
        Error::Runtime(wasmtime::Error::msg(format!(
            "cannot create the bucket: {e:#}"
        )))
    })?;
    println!(
        "started an embedded S3 server (s3s-fs, SigV4 checked) at {} with bucket {bucket:?}, data in {}",
        server.endpoint(),
        server.data_dir().display()
    );

    let config = ConfigInput {
        endpoint_url: Some(server.endpoint()),
        region: Some(server.region().to_owned()),
        access_key_id: Some(server.access_key().to_owned()),
        secret_access_key: Some(server.secret_key().to_owned()),
        bucket_name: Some(bucket.to_owned()),
        base_path: Some("results/".to_owned()),
        ..ConfigInput::default()
    };
    let mut store = runtime.open(&config)?;
    let key = "celery-task-meta-8a5ddc2e-7a1f-4b43-9c5e-0d5f8f0c1b23";
    let value = br#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "8a5ddc2e-7a1f-4b43-9c5e-0d5f8f0c1b23"}"#;

    let t = Instant::now();
    store.set(key, value)?;
    println!(
        "set    {key} ({} bytes) in {:.1?}",
        value.len(),
        t.elapsed()
    );
    let object = server.data_dir().join(bucket).join("results").join(key);
    println!(
        "       stored as object \"results/{key}\" ({})",
        if object.exists() {
            "found on disk"
        } else {
            "NOT on disk"
        }
    );

    let t = Instant::now();
    let read = store.get(key)?;
    let same = read.as_deref() == Some(&value[..]);
    println!(
        "get    {key} in {:.1?}: {} bytes, {}",
        t.elapsed(),
        read.as_ref().map_or(0, Vec::len),
        if same { "identical" } else { "DIFFERENT" }
    );
    println!(
        "       {}",
        String::from_utf8_lossy(read.as_deref().unwrap_or_default())
    );

    let t = Instant::now();
    store.delete(key)?;
    println!("delete {key} in {:.1?}", t.elapsed());
    let after = store.get(key)?;
    println!(
        "get    {key} after delete: {}",
        if after.is_none() {
            "none (missing keys read as none)"
        } else {
            "STILL THERE"
        }
    );

    let mut wrong = config.clone();
    wrong.secret_access_key = Some("not-the-secret".into());
    let denied = runtime.open(&wrong)?.get(key).err();
    println!(
        "get with a wrong secret: {}",
        denied.map_or_else(|| "UNEXPECTEDLY SUCCEEDED".into(), |e| e.to_string())
    );
    let mut missing = config.clone();
    missing.bucket_name = Some("no-such-bucket".into());
    let err = runtime.open(&missing)?.get(key).err();
    println!(
        "get from a missing bucket: {}",
        err.map_or_else(|| "UNEXPECTEDLY SUCCEEDED".into(), |e| e.to_string())
    );

    Ok(if same && after.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
