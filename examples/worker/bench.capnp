# workerd's configuration for the per-host benchmark's workerd leg (benches/src/hosts.rs runs
# `workerd test bench.capnp` with the S3RS_BENCH_* variables): bench/hosts.js on the same modules
# as the Worker's tests (config.capnp).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .benchWorker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
);

const benchWorker :Workerd.Worker = (
  modules = [
    (name = "bench/hosts.js", esModule = embed "bench/hosts.js"),
    (name = "src/store.js", esModule = embed "src/store.js"),
    (name = "gen/s3-result-store.js", esModule = embed "gen/s3-result-store.js"),
    (name = "gen/s3-result-store.core.wasm", wasm = embed "gen/s3-result-store.core.wasm"),
    (name = "gen/s3-result-store.core2.wasm", wasm = embed "gen/s3-result-store.core2.wasm"),
    (name = "gen/s3-result-store.core3.wasm", wasm = embed "gen/s3-result-store.core3.wasm"),
    (name = "gen/http-error-code.js", esModule = embed "gen/http-error-code.js"),
    (name = "gen/shim/cli.js", esModule = embed "gen/shim/cli.js"),
    (name = "gen/shim/clocks.js", esModule = embed "gen/shim/clocks.js"),
    (name = "gen/shim/common.js", esModule = embed "gen/shim/common.js"),
    (name = "gen/shim/config.js", esModule = embed "gen/shim/config.js"),
    (name = "gen/shim/environment.js", esModule = embed "gen/shim/environment.js"),
    (name = "gen/shim/http.js", esModule = embed "gen/shim/http.js"),
    (name = "gen/shim/in-memory-http.js", esModule = embed "gen/shim/in-memory-http.js"),
    (name = "gen/shim/io.js", esModule = embed "gen/shim/io.js"),
    (name = "gen/shim/random.js", esModule = embed "gen/shim/random.js"),
  ],
  compatibilityDate = "2026-11-01",
  globalOutbound = "internet",
  bindings = [
    (name = "S3RS_BENCH_ENDPOINT", fromEnvironment = "S3RS_BENCH_ENDPOINT"),
    (name = "S3RS_BENCH_REGION", fromEnvironment = "S3RS_BENCH_REGION"),
    (name = "S3RS_BENCH_ACCESS_KEY_ID", fromEnvironment = "S3RS_BENCH_ACCESS_KEY_ID"),
    (name = "S3RS_BENCH_SECRET_ACCESS_KEY", fromEnvironment = "S3RS_BENCH_SECRET_ACCESS_KEY"),
    (name = "S3RS_BENCH_BUCKET", fromEnvironment = "S3RS_BENCH_BUCKET"),
    (name = "S3RS_BENCH_BASE_PATH", fromEnvironment = "S3RS_BENCH_BASE_PATH"),
    (name = "S3RS_BENCH_ROUNDS", fromEnvironment = "S3RS_BENCH_ROUNDS"),
    (name = "S3RS_BENCH_SIZE", fromEnvironment = "S3RS_BENCH_SIZE"),
  ],
);
