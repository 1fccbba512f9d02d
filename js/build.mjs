// Transpiles the built component (target/wasm32-wasip2/release/s3_result_store.wasm, from
// scripts/build-components; or S3RS_COMPONENT) into dist/ with jco: core Wasm and the JS that
// instantiates it on the WASI shim, with the shim's http-error-code replaced by
// src/wasi-http-types.js. The generated typings are not the package's (their top-level .d.ts
// does not compile, and both wasi:keyvalue drafts share one file): src/index.d.ts is.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const target = process.env.CARGO_TARGET_DIR ?? `${here}../target`;
const component = process.env.S3RS_COMPONENT || `${target}/wasm32-wasip2/release/s3_result_store.wasm`;

rmSync(`${here}dist`, { recursive: true, force: true });
execFileSync(
  `${here}node_modules/.bin/jco`,
  [
    "transpile", component,
    "--out-dir", `${here}dist`,
    "--name", "s3-result-store",
    "--map", "wasi:http/types=../src/wasi-http-types.js#types",
    "--quiet",
  ],
  { stdio: "inherit" },
);
