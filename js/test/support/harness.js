// The test S3 server and the fault proxy in front of it, as the Rust suites have them: the
// workspace's `edge-harness` binary (tests/bin/edge_harness.rs) started as a child process.
// It serves the server named by S3RS_TEST_* (Garage, moto, ...) or, without them, starts the
// embedded s3s-fs server; it ends when this process closes its stdin (or dies).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const workspace = fileURLToPath(new URL("../../../", import.meta.url));

/** The harness binary: S3RS_EDGE_HARNESS, else cargo's debug build in the workspace. */
function binary() {
  if (process.env.S3RS_EDGE_HARNESS) return process.env.S3RS_EDGE_HARNESS;
  const target = process.env.CARGO_TARGET_DIR ?? `${workspace}target`;
  return `${target}/debug/edge-harness`;
}

/**
 * Starts the harness; resolves once it is ready.
 * @returns {Promise<Harness>}
 */
export async function startHarness() {
  const child = spawn(binary(), ["--until-stdin-closes"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const failed = once(child, "exit").then(([code]) => {
    throw new Error(`edge-harness exited (${code}) before it was ready (build it: cargo build -p s3-result-store-tests --bin edge-harness)`);
  });
  const lines = createInterface({ input: child.stdout });
  const first = once(lines, "line").then(([line]) => line);
  const info = JSON.parse(await Promise.race([first, failed]));
  return new Harness(child, info);
}

export class Harness {
  /** @type {import("node:child_process").ChildProcess} */
  #child;

  constructor(child, info) {
    this.#child = child;
    /** Server name, endpoint, region, accessKeyId, secretAccessKey, bucket, verifiesSignatures,
     * conditionalWrites, proxy (the fault proxy's URL) and control (its control port). */
    this.info = info;
  }

  /** Queues a fault, e.g. `{ fault: "stall-body", after: 1000, count: 2 }`. */
  async push(fault) {
    await this.#call("POST", "/faults", JSON.stringify(fault));
  }

  async clear() {
    await this.#call("POST", "/clear");
  }

  /** The proxy's counts and held connections. */
  async stats() {
    return (await this.#call("GET", "/stats")).json();
  }

  /** The object under `key` as boto3 reads it, or undefined. */
  async object(key) {
    const response = await this.#call("GET", `/object?key=${encodeURIComponent(key)}`, undefined, [200, 404]);
    return response.status === 404 ? undefined : new Uint8Array(await response.arrayBuffer());
  }

  /** Stores `value` under `key` with boto3. */
  async putObject(key, value) {
    await this.#call("PUT", `/object?key=${encodeURIComponent(key)}`, value);
  }

  /** The keys under `prefix`, as boto3 lists them. */
  async keys(prefix) {
    return (await this.#call("GET", `/keys?prefix=${encodeURIComponent(prefix)}`)).json();
  }

  /** Real Celery's S3 backend (tests/support/celery_interop.py): `command` with `input`. */
  async celery(command, input, { basePath, globalKeyprefix } = {}) {
    let query = `basePath=${encodeURIComponent(basePath)}`;
    if (globalKeyprefix) query += `&globalKeyprefix=${encodeURIComponent(globalKeyprefix)}`;
    return (await this.#call("POST", `/celery/${command}?${query}`, JSON.stringify(input))).json();
  }

  /** The server's config for the store, with `basePath` and any `overrides`. */
  config(basePath, overrides = {}) {
    const i = this.info;
    return {
      endpointUrl: i.endpoint,
      region: i.region,
      accessKeyId: i.accessKeyId,
      secretAccessKey: i.secretAccessKey,
      bucketName: i.bucket,
      basePath,
      addressingStyle: "auto",
      ...overrides,
    };
  }

  /** Says by name that this server cannot run a test, as the Rust suites do. */
  unsupported(test, why) {
    process.stderr.write(`NOT SUPPORTED by ${this.info.server}: ${test}: ${why}\n`);
  }

  async close() {
    this.#child.stdin.end();
    if (this.#child.exitCode === null) await once(this.#child, "exit");
  }

  async #call(method, path, body, ok = [200, 204]) {
    const response = await fetch(`${this.info.control}${path}`, { method, body });
    if (!ok.includes(response.status)) {
      throw new Error(`edge-harness ${method} ${path}: ${response.status} ${await response.text()}`);
    }
    return response;
  }
}

let counter = 0;
/** A key prefix no other test (or earlier run) uses, as the Rust suites' unique_prefix. */
export function uniquePrefix(test) {
  counter += 1;
  return `s3rs-test/${Date.now().toString(16)}-${process.pid}-${counter}/${test}/`;
}
