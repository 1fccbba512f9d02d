// Faults between the component (under Node, through the package) and the test server,
// injected by the fault proxy the Rust suites use (tests/support/fault_proxy.rs, driven
// through the harness): a body that stalls, a body cut short, a reset, a server that never
// answers. Each ends in the store's typed error within the configured bound: never a trap,
// never a hang. A single fault is absorbed by a retry.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { ResultStore, StoreError } from "../src/index.js";
import { startHarness, uniquePrefix } from "./support/harness.js";

// Short timeouts, so that stalls turn into timeouts quickly; two attempts per operation.
const TIMEOUTS = {
  connectTimeoutMs: 1000,
  firstByteTimeoutMs: 500,
  betweenBytesTimeoutMs: 500,
  operationTimeoutMs: 5000,
  maxAttempts: 2,
};
// Generous: a hang would run into the operation timeout's absence, minutes later.
const BOUND_MS = TIMEOUTS.operationTimeoutMs + 5000;
const VALUE = Uint8Array.from({ length: 100_000 }, (_, i) => i % 251);

/** @type {import("./support/harness.js").Harness} */
let harness;
let store;
before(async () => {
  harness = await startHarness();
  const prefix = uniquePrefix("node-faults");
  await harness.putObject(`${prefix}big`, VALUE);
  store = ResultStore.open({ ...harness.config(prefix), endpointUrl: harness.info.proxy, ...TIMEOUTS });
});
after(() => harness.close());

/** Runs a get of the 100 kB value under `fault` on every attempt; the error and the time. */
async function getUnder(fault) {
  await harness.push({ ...fault, count: TIMEOUTS.maxAttempts });
  const started = performance.now();
  let error;
  try {
    store.get("big");
  } catch (e) {
    error = e;
  }
  const ms = Math.round(performance.now() - started);
  await harness.clear();
  assert.ok(error, `get under ${fault.fault} succeeded`);
  assert.ok(error instanceof StoreError, `get under ${fault.fault}: expected the store's typed error, got ${error?.stack ?? error}`);
  assert.ok(ms < BOUND_MS, `get under ${fault.fault} took ${ms} ms`);
  process.stderr.write(`fault table: node, ${fault.fault} -> ${error.error.tag} in ${ms} ms (${error.message})\n`);
  return error.error;
}

test("a body that stalls after 1,000 bytes is a timeout", async () => {
  const error = await getUnder({ fault: "stall-body", after: 1000 });
  assert.equal(error.tag, "timeout");
  assert.match(error.val, /gave up after 2 attempts/);
});

test("a body cut short is a transport error, never a value or a trap", async () => {
  const error = await getUnder({ fault: "truncate-body" });
  assert.equal(error.tag, "transport");
  assert.match(error.val, /gave up after 2 attempts/);
});

test("a connection reset mid-body is a transport error", async () => {
  const error = await getUnder({ fault: "reset-mid-response" });
  assert.equal(error.tag, "transport");
});

test("a server that never answers is a timeout", async () => {
  const error = await getUnder({ fault: "silent" });
  assert.equal(error.tag, "timeout");
  assert.match(error.val, /gave up after 2 attempts/);
});

test("one fault of each kind is absorbed by a retry", async () => {
  for (const fault of [
    { fault: "stall-body", after: 1000 },
    { fault: "truncate-body" },
    { fault: "reset-mid-response" },
    { fault: "silent" },
    { fault: "corrupt-body" },
    { fault: "slow-down" },
  ]) {
    await harness.push(fault);
    assert.deepEqual(store.get("big"), VALUE, fault.fault);
  }
});
