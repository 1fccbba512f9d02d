//! The CLI as a user runs it: the real binary, the real component, an embedded S3 server.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use s3_result_store_host::local_s3::{LocalS3, LocalS3Options};

struct Cli {
    server: LocalS3,
}

impl Cli {
    fn new() -> Cli {
        let server = LocalS3::start(LocalS3Options::default()).unwrap();
        server.create_bucket("results").unwrap();
        Cli { server }
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let endpoint = self.server.endpoint();
        let located = ["--endpoint-url", &endpoint, "--bucket", "results"];
        self.run_with(&[&located, args].concat(), stdin)
    }

    /// Without the endpoint and bucket flags.
    fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_s3-result-store"))
            .args(args)
            .env_clear()
            .env("AWS_ACCESS_KEY_ID", self.server.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.server.secret_key())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn set_get_delete_with_exit_codes() {
    let cli = Cli::new();
    let out = cli.run(&["set", "k", "from an argument"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["get", "k"], None);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "from an argument".into())
    );
    let out = cli.run(&["set", "k2", "-"], Some(b"\x00from stdin\xff"));
    assert!(out.status.success());
    assert_eq!(cli.run(&["get", "k2"], None).stdout, b"\x00from stdin\xff");
    assert!(cli.run(&["delete", "k"], None).status.success());
    let out = cli.run(&["get", "k"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no value stored"));
}

#[test]
fn failures_are_one_clear_line_with_a_nonzero_code() {
    let cli = Cli::new();
    // Half a key pair in flags is not silently completed from the environment.
    let out = cli.run(&["--secret-access-key", "wrong-secret", "get", "k"], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("access-key-id is not"),
        "{}",
        text(&out.stderr)
    );
    let access = cli.server.access_key().to_owned();
    let out = cli.run(
        &[
            "--access-key-id",
            &access,
            "--secret-access-key",
            "wrong-secret",
            "get",
            "k",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "an error and what to do next: {stderr}");
    assert!(
        lines[0].starts_with("error: access denied: HTTP 403"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains("--region"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-secret"));
    let out = cli.run(&["--max-attempts", "0", "get", "k"], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("max-attempts is 0"),
        "{}",
        text(&out.stderr)
    );
    let out = cli.run(&["get"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "usage errors are clap's exit code 2"
    );
    let out = cli.run(&["--component", "/nonexistent.wasm", "get", "k"], None);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("cannot read the component"));
}

#[test]
fn task_commands_print_celery_documents() {
    let cli = Cli::new();
    let out = cli.run(
        &[
            "task",
            "put",
            "t1",
            "--result",
            r#"{"x": 1}"#,
            "--date-done",
            "2026-11-25T16:34:09.244119+00:00",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = r#"{"status": "SUCCESS", "result": {"x": 1}, "traceback": null, "children": [], "date_done": "2026-11-25T16:34:09.244119+00:00", "task_id": "t1"}"#;
    assert_eq!(text(&out.stdout).trim_end(), expected);
    let out = cli.run(&["task", "get", "t1", "t2"], None);
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], expected);
    assert!(
        lines[1].starts_with(r#"{"status": "PENDING", "result": null"#),
        "{}",
        lines[1]
    );
    assert_eq!(
        cli.run(&["get", "celery-task-meta-t1"], None).stdout,
        expected.as_bytes()
    );
    assert!(cli.run(&["task", "forget", "t1"], None).status.success());
    let out = cli.run(&["task", "get", "t1"], None);
    assert!(text(&out.stdout).starts_with(r#"{"status": "PENDING""#));
    assert!(cli.run(&["task", "put", "t4"], None).status.success());
    let out = cli.run(&["cleanup", "--older-than", "1h"], None);
    assert_eq!(text(&out.stdout), "{\"deleted\": 0}\n");
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let out = cli.run(&["cleanup", "--older-than", "1s"], None);
    assert_eq!(
        text(&out.stdout),
        "{\"deleted\": 1}\n",
        "{}",
        text(&out.stderr)
    );
    let out = cli.run(&["task", "put", "t3", "--result", "{not json"], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("--result is not JSON"));
}

#[test]
fn json_output_for_values_and_errors() {
    let cli = Cli::new();
    let out = cli.run(&["--json", "set", "k", "text value"], None);
    assert_eq!(text(&out.stdout), "{\"key\":\"k\",\"stored_bytes\":10}\n");
    let out = cli.run(&["--json", "get", "k"], None);
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        document,
        serde_json::json!({"key": "k", "found": true, "value": "text value"})
    );
    cli.run(&["set", "bin", "-"], Some(b"\xff\x00"));
    let out = cli.run(&["--json", "get", "bin"], None);
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(document["value_hex"], "ff00");
    let out = cli.run(&["--json", "delete", "k"], None);
    assert_eq!(text(&out.stdout), "{\"key\":\"k\",\"deleted\":true}\n");
    let out = cli.run(&["--json", "get", "k"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "{\"key\":\"k\",\"found\":false}\n");

    let endpoint = cli.server.endpoint();
    let missing = ["--endpoint-url", &endpoint, "--bucket", "no-such-bucket"];
    let out = cli.run_with(&[&missing[..], &["--json", "get", "k"]].concat(), None);
    assert_eq!(out.status.code(), Some(3));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "no-such-bucket");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-bucket")
    );
    assert!(
        error["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("create the bucket")
    );
}

#[test]
fn settings_from_a_config_file_under_flags_and_variables() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.toml");
    let endpoint = cli.server.endpoint();
    std::fs::write(
        &path,
        format!(
            "endpoint-url = \"{endpoint}\"\nbucket = \"results\"\nbase-path = \"from-file/\"\n"
        ),
    )
    .unwrap();
    let config = path.to_str().unwrap();
    let out = cli.run_with(&["--config", config, "set", "k", "v"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The file's base path was used: the key is under it.
    let located = ["--endpoint-url", &endpoint, "--bucket", "results"];
    let out = cli.run_with(&[&located[..], &["get", "from-file/k"]].concat(), None);
    assert_eq!(text(&out.stdout), "v");
    // A flag wins over the file.
    let out = cli.run_with(
        &["--config", config, "--base-path", "", "get", "from-file/k"],
        None,
    );
    assert_eq!(text(&out.stdout), "v", "{}", text(&out.stderr));

    std::fs::write(&path, "bukcet = \"results\"\n").unwrap();
    let out = cli.run_with(&["--config", config, "get", "k"], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("store.toml") && stderr.contains("bukcet"),
        "{stderr}"
    );
    let out = cli.run_with(&["--config", "/nonexistent/store.toml", "get", "k"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read config file"));
}

#[test]
fn a_ca_bundle_that_cannot_be_used_is_a_clear_error() {
    let cli = Cli::new();
    let out = cli.run(&["--ca-bundle", "/nonexistent/ca.pem", "get", "k"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read the CA bundle /nonexistent/ca.pem"),
        "{}",
        text(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, "not a certificate\n").unwrap();
    let out = cli.run(&["--ca-bundle", bundle.to_str().unwrap(), "get", "k"], None);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("invalid root certificates"),
        "{}",
        text(&out.stderr)
    );
    // The config file's `ca-bundle` is read the same way.
    let config = dir.path().join("store.toml");
    std::fs::write(&config, "ca-bundle = \"/nonexistent/file.pem\"\n").unwrap();
    let out = cli.run(&["--config", config.to_str().unwrap(), "get", "k"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/file.pem"));
}

#[test]
fn the_store_only_build_does_the_store_and_names_the_feature_tasks_need() {
    let cli = Cli::new();
    let component = s3_result_store_host::store_only_component_path();
    let component = component.to_str().unwrap();
    let out = cli.run(&["--component", component, "set", "k", "v"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["--component", component, "task", "get", "t1"], None);
    assert_eq!(out.status.code(), Some(4));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("does not export result-store:s3/tasks@0.1.0")
            && stderr.contains("--features tasks"),
        "{stderr}"
    );
}
