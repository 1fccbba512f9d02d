// Builds what the Worker runs, into gen/ (not committed):
//   - the store component (the store-only build, target/store-only/..., from
//     scripts/build-components; or S3RS_COMPONENT) transpiled by jco for JSPI: its blocking WASI
//     imports (poll, stream reads) suspend the Wasm stack, and the store's methods are async
//     exports. `open` stays synchronous: jco's `--async-exports '*'` writes `await` into the
//     non-async static `open`, which workerd refuses (SyntaxError);
//   - the WASI shim's browser build (@bytecodealliance/preview2-shim, dist/browser), copied so
//     that every import in the Worker is relative, as workerd's module list and wrangler's
//     bundler both resolve them;
//   - the corrected http-error-code of the Node package (js/src/http-error-code.js).
// Checks that config.capnp and bench.capnp list exactly the core modules jco wrote (Workers cannot compile
// Wasm from bytes: each core module is declared to the runtime).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const target = process.env.CARGO_TARGET_DIR ?? `${here}../../target`;
const component =
  process.env.S3RS_COMPONENT || `${target}/store-only/wasm32-wasip2/release/s3_result_store.wasm`;
const gen = `${here}gen`;

const asyncMethods = ["get", "set", "delete", "get-many", "set-many", "delete-many"].map(
  (m) => `[method]result-store.${m}`,
);
rmSync(gen, { recursive: true, force: true });
execFileSync(
  `${here}node_modules/.bin/jco`,
  [
    "transpile", component,
    "--out-dir", gen,
    "--name", "s3-result-store",
    "--async-mode", "jspi",
    "--async-wasi-imports",
    "--instantiation", "async",
    "--no-typescript",
    "--quiet",
    "--async-exports", ...asyncMethods,
  ],
  { stdio: "inherit" },
);

const shim = `${here}node_modules/@bytecodealliance/preview2-shim/dist/browser`;
mkdirSync(`${gen}/shim`);
for (const file of readdirSync(shim).filter((f) => f.endsWith(".js"))) {
  cpSync(`${shim}/${file}`, `${gen}/shim/${file}`);
}
cpSync(`${here}../../js/src/http-error-code.js`, `${gen}/http-error-code.js`);

const written = readdirSync(gen).filter((f) => f.endsWith(".wasm")).sort();
for (const config of ["config.capnp", "bench.capnp"]) {
  const declared = [...readFileSync(`${here}${config}`, "utf8").matchAll(/embed "gen\/([^"]+\.wasm)"/g)]
    .map((m) => m[1])
    .sort();
  if (JSON.stringify(written) !== JSON.stringify(declared)) {
    throw new Error(`jco wrote the core modules ${written.join(", ")} but ${config} declares ${declared.join(", ")}: update it (and src/store.js)`);
  }
}
