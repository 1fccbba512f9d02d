# workerd's configuration for the Worker's tests (`npm test`: `workerd test config.capnp`, run
# by scripts/test against each test server through the edge harness, tests/bin/edge_harness.rs,
# whose addresses come in from the environment). The module list is what wrangler would
# bundle: the Worker (src/), jco's output and the WASI shim's browser build (gen/, made by
# build.mjs, which checks that the core modules below are the ones jco wrote).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .testWorker),
    # Outbound fetch to the loopback test servers: workerd's default outbound allows public
    # addresses only.
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
);

const testWorker :Workerd.Worker = (
  modules = [
    (name = "test/worker.test.js", esModule = embed "test/worker.test.js"),
    (name = "src/worker.js", esModule = embed "src/worker.js"),
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
  # JSPI (WebAssembly.Suspending / promising) is on by default from this date on.
  compatibilityDate = "2026-11-01",
  globalOutbound = "internet",
  bindings = [
    (name = "S3RS_EDGE_SERVER", fromEnvironment = "S3RS_EDGE_SERVER"),
    (name = "S3RS_EDGE_ENDPOINT", fromEnvironment = "S3RS_EDGE_ENDPOINT"),
    (name = "S3RS_EDGE_REGION", fromEnvironment = "S3RS_EDGE_REGION"),
    (name = "S3RS_EDGE_ACCESS_KEY_ID", fromEnvironment = "S3RS_EDGE_ACCESS_KEY_ID"),
    (name = "S3RS_EDGE_SECRET_ACCESS_KEY", fromEnvironment = "S3RS_EDGE_SECRET_ACCESS_KEY"),
    (name = "S3RS_EDGE_BUCKET", fromEnvironment = "S3RS_EDGE_BUCKET"),
    (name = "S3RS_EDGE_VERIFIES_SIGNATURES", fromEnvironment = "S3RS_EDGE_VERIFIES_SIGNATURES"),
    (name = "S3RS_EDGE_PROXY", fromEnvironment = "S3RS_EDGE_PROXY"),
    (name = "S3RS_EDGE_CONTROL", fromEnvironment = "S3RS_EDGE_CONTROL"),
    (name = "S3RS_EDGE_ONLY", fromEnvironment = "S3RS_EDGE_ONLY"),
  ],
);
