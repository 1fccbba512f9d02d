//! Celery's own S3 backend as a contender: `benches/celery_backend.py` in one long-lived
//! Python process, driven over its stdin/stdout. It times each operation and its own CPU
//! itself, so the pipe and the JSON never count.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use s3_result_store::ConfigInput;
use serde_json::{Value, json};

use crate::clients::Contender;
use crate::measure::{Chunk, Op};

pub struct Celery {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Versions: python, celery, boto3, botocore.
    pub info: Value,
}

impl Celery {
    /// Starts the backend's process against `input`'s server, trusting the CA certificates in
    /// `ca_file` for HTTPS (boto3's `AWS_CA_BUNDLE`).
    pub fn start(
        python: &Path,
        script: &Path,
        input: &ConfigInput,
        ca_file: Option<&Path>,
    ) -> Result<Celery> {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut command = Command::new(python);
        if let Some(ca_file) = ca_file {
            command.env("AWS_CA_BUNDLE", ca_file);
        }
        let mut child = command
            .arg(script)
            .env("ENDPOINT", field(&input.endpoint_url))
            .env("REGION", field(&input.region))
            .env("ACCESS_KEY_ID", field(&input.access_key_id))
            .env("SECRET_ACCESS_KEY", field(&input.secret_access_key))
            .env("BUCKET", field(&input.bucket_name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (run `scripts/setup --test` for the venv)",
                    python.display()
                )
            })?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut celery = Celery {
            child,
            stdin,
            stdout,
            info: Value::Null,
        };
        celery.info = celery.call(&json!({"cmd": "info"}))?;
        Ok(celery)
    }

    fn call(&mut self, request: &Value) -> Result<Value> {
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            bail!("Celery's backend process exited ({status}); see its stderr above");
        }
        Ok(serde_json::from_str(&line)?)
    }
}

impl Contender for Celery {
    fn run(&mut self, op: Op, keys: &[String], value: &Bytes) -> Result<Chunk> {
        let reply = self.call(&json!({
            "cmd": "run",
            "op": op.name(),
            "size": value.len(),
            "keys": keys,
        }))?;
        let latencies_ns = reply["latencies_ns"]
            .as_array()
            .context("no latencies_ns")?
            .iter()
            .map(|v| v.as_u64().context("latency not an integer"))
            .collect::<Result<Vec<_>>>()?;
        let cpu_ns = reply["cpu_ns"].as_u64().context("no cpu_ns")?;
        Ok(Chunk {
            latencies_ns,
            cpu_ns,
            thread_cpu_ns: None,
        })
    }
}

impl Drop for Celery {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
