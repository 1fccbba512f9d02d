//! Real Celery (PyPI `celery`, its S3 result backend over boto3), driven through
//! `support/celery_interop.py` with the tests' Python.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::{TestServer, python};

/// One Celery app on `server`: `s3_base_path`, the `global_keyprefix` transport option and
/// `result_extended`.
pub struct CeleryApp<'a> {
    pub server: &'a TestServer,
    pub base_path: &'a str,
    pub global_keyprefix: Option<&'a str>,
    pub extended: bool,
}

impl CeleryApp<'_> {
    /// Runs the script's `command` with `input` on its stdin; the JSON it prints.
    pub fn run(&self, command: &str, input: &Value) -> Value {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support/celery_interop.py");
        let s = self.server;
        let mut child = Command::new(python())
            .arg(script)
            .arg(command)
            .env("ENDPOINT", &s.endpoint)
            .env("REGION", &s.region)
            .env("ACCESS_KEY_ID", &s.access_key_id)
            .env("SECRET_ACCESS_KEY", &s.secret_access_key)
            .env("BUCKET", &s.bucket)
            .env("BASE_PATH", self.base_path)
            .env("GLOBAL_KEYPREFIX", self.global_keyprefix.unwrap_or(""))
            .env("RESULT_EXTENDED", if self.extended { "1" } else { "0" })
            .env("PYTHONUTF8", "1")
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the Celery script (is Python with Celery installed? see README)");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.to_string().as_bytes())
            .expect("send the script its input");
        let output = child
            .wait_with_output()
            .expect("wait for the Celery script");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "Celery script `{command}` failed{}:\n{stderr}",
            if stderr.contains("No module named 'celery'") {
                " (pip install -r tests/requirements.txt into the tests' Python)"
            } else {
                ""
            }
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "Celery script `{command}` printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}
