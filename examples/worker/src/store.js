// One instance of the store component per call of openStore, on the WASI shim's browser build
// (gen/, made by build.mjs). An instance must not be shared by concurrent requests under
// workerd: jco's per-instance lock then resolves a promise from another request's context,
// workerd cancels every request involved ("the Worker's code had hung") and the instance stays
// broken. Instantiating takes about 1-5 ms.
import { instantiate } from "../gen/s3-result-store.js";
import core from "../gen/s3-result-store.core.wasm";
import core2 from "../gen/s3-result-store.core2.wasm";
import core3 from "../gen/s3-result-store.core3.wasm";
import { httpErrorCode } from "../gen/http-error-code.js";
import * as cli from "../gen/shim/cli.js";
import * as clocks from "../gen/shim/clocks.js";
import * as http from "../gen/shim/http.js";
import * as io from "../gen/shim/io.js";
import * as random from "../gen/shim/random.js";

// Workers cannot compile Wasm from bytes: the core modules come precompiled, as imports.
const cores = {
  "s3-result-store.core.wasm": core,
  "s3-result-store.core2.wasm": core2,
  "s3-result-store.core3.wasm": core3,
};

const wasi = {
  "wasi:cli/environment": cli.environment,
  "wasi:cli/exit": cli.exit,
  "wasi:cli/stderr": cli.stderr,
  "wasi:cli/stdin": cli.stdin,
  "wasi:cli/stdout": cli.stdout,
  "wasi:cli/terminal-input": cli.terminalInput,
  "wasi:cli/terminal-output": cli.terminalOutput,
  "wasi:cli/terminal-stderr": cli.terminalStderr,
  "wasi:cli/terminal-stdin": cli.terminalStdin,
  "wasi:cli/terminal-stdout": cli.terminalStdout,
  "wasi:clocks/monotonic-clock": clocks.monotonicClock,
  "wasi:clocks/wall-clock": clocks.wallClock,
  "wasi:http/outgoing-handler": http.outgoingHandler,
  // The shim's http-error-code traps on a body that fails part-way (gen/http-error-code.js).
  "wasi:http/types": { ...http.types, httpErrorCode },
  "wasi:io/error": io.error,
  "wasi:io/poll": io.poll,
  "wasi:io/streams": io.streams,
  "wasi:random/insecure": random.insecure,
  "wasi:random/insecure-seed": random.insecureSeed,
};

/**
 * A fresh instance's store, opened with `config` (the store's WIT config record). `open`
 * validates and sends nothing; it throws jco's ComponentError (`payload`: the store's error).
 * The store's methods return promises.
 */
export async function openStore(config) {
  const component = await instantiate((name) => cores[name], wasi);
  return component["result-store:s3/store@0.1.0"].ResultStore.open(config);
}
