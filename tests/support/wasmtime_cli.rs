//! wasmtime's own CLI (the official binary, `scripts/install-wasmtime`) as a second host for the
//! composed apps: `wasmtime serve` for the task-status app, `wasmtime run` for the kv command.
//!
//! The binary is `S3RS_WASMTIME`, else whatever `scripts/install-wasmtime` prints (it installs
//! it once). Components are precompiled once per test process (`wasmtime compile`) so that each
//! server or command started does not compile them again.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long `wasmtime serve` may take to listen.
const START_LIMIT: Duration = Duration::from_secs(30);

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The wasmtime binary.
pub fn wasmtime() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("S3RS_WASMTIME").filter(|v| !v.is_empty()) {
            return bin.into();
        }
        let output = Command::new(workspace().join("scripts/install-wasmtime"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/install-wasmtime");
        assert!(output.status.success(), "scripts/install-wasmtime failed");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

/// `wasmtime --version`, for reports.
pub fn version() -> String {
    let output = Command::new(wasmtime())
        .arg("--version")
        .output()
        .expect("run wasmtime --version");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `component` compiled by `wasmtime compile`, once per process, under cargo's target/tmp.
pub fn precompiled(component: &Path) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = done.get(component) {
        return path.clone();
    }
    assert!(
        component.exists(),
        "{} is missing: build it with scripts/compose",
        component.display()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let dir = target.join("tmp/wasmtime-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let stem = component.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("{stem}-{}.cwasm", std::process::id()));
    let status = Command::new(wasmtime())
        .arg("compile")
        .arg("-o")
        .arg(&out)
        .arg(component)
        .status()
        .expect("run wasmtime compile");
    assert!(status.success(), "wasmtime compile {}", component.display());
    done.insert(component.to_owned(), out.clone());
    out
}

fn env_flags(command: &mut Command, env: &[(String, String)]) {
    for (name, value) in env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
}

/// `wasmtime serve` of a `wasi:http/proxy` component on a free loopback port, with exactly
/// `env` as the component's environment. Stopped when dropped.
pub struct CliServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl CliServer {
    pub fn start(component: &Path, env: &[(String, String)]) -> CliServer {
        let compiled = precompiled(component);
        // A port that was free a moment ago: wasmtime serve does not say which one it bound
        // when given port 0.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = compiled.with_file_name(format!("serve-{}.log", addr.port()));
        let mut command = Command::new(wasmtime());
        // -S cli: the composition imports wasi:cli/environment (and the stdio and exit Rust's
        // std links in), which the bare proxy world lacks.
        command
            .args(["serve", "--allow-precompiled", "-S", "cli", "--addr"])
            .arg(addr.to_string());
        env_flags(&mut command, env);
        let child = command
            .arg(&compiled)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start wasmtime serve");
        let mut server = CliServer { child, addr, log };
        server.wait_listening();
        server
    }

    fn wait_listening(&mut self) {
        let started = Instant::now();
        loop {
            if TcpStream::connect(self.addr).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wasmtime serve exited ({status}): {}", self.log_text());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "wasmtime serve is not listening on {} after {START_LIMIT:?}: {}",
                self.addr,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for CliServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `wasmtime run` of a `wasi:cli` command with the `-S` options `wasi` (`["http", "cli"]`),
/// exactly `env` as its environment, `args` after the component, and `stdin` on its standard
/// input.
pub fn run(
    component: &Path,
    wasi: &[&str],
    env: &[(String, String)],
    args: &[&str],
    stdin: &[u8],
) -> Output {
    let compiled = precompiled(component);
    let mut command = Command::new(wasmtime());
    command.args(["run", "--allow-precompiled"]);
    for option in wasi {
        command.args(["-S", option]);
    }
    env_flags(&mut command, env);
    let mut child = command
        .arg(&compiled)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wasmtime run");
    // A command that exits without reading its input is not an error here.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().expect("wait for wasmtime run")
}
