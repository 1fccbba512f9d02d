// The store through the Node package: get, set, delete and their batches against the test
// server, checked with an independent client (boto3, through the harness); and its errors.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { ResultStore, StoreError } from "../src/index.js";
import { startHarness, uniquePrefix } from "./support/harness.js";

/** @type {import("./support/harness.js").Harness} */
let harness;
before(async () => {
  harness = await startHarness();
});
after(() => harness.close());

/** The store's error variant thrown by `fn`, asserting it is one (never a trap). */
function storeError(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof StoreError, `expected the store's typed error, got ${e?.stack ?? e}`);
    return e.error;
  }
  assert.fail("expected an error");
}

test("set, get and delete as an independent client sees them", async () => {
  const prefix = uniquePrefix("node-roundtrip");
  const store = ResultStore.open(harness.config(prefix));
  const value = new TextEncoder().encode('{"status": "SUCCESS", "result": "caf\u00e9"}');
  store.set("celery-task-meta-1", value);
  assert.deepEqual(await harness.object(`${prefix}celery-task-meta-1`), value);
  assert.deepEqual(store.get("celery-task-meta-1"), value);

  // Written by boto3, read by the component: every byte value.
  const binary = Uint8Array.from({ length: 70_000 }, (_, i) => i % 256);
  await harness.putObject(`${prefix}binary`, binary);
  assert.deepEqual(store.get("binary"), binary);

  store.delete("celery-task-meta-1");
  assert.equal(await harness.object(`${prefix}celery-task-meta-1`), undefined);
  assert.equal(store.get("celery-task-meta-1"), undefined);
  // Deleting what is not there succeeds.
  store.delete("celery-task-meta-1");
  assert.deepEqual(await harness.keys(prefix), [`${prefix}binary`]);
});

test("an empty value and an unknown key are told apart", () => {
  const store = ResultStore.open(harness.config(uniquePrefix("node-empty")));
  store.set("empty", new Uint8Array());
  assert.deepEqual(store.get("empty"), new Uint8Array());
  assert.equal(store.get("never-stored"), undefined);
});

test("batches: one result per key, in order", async () => {
  const prefix = uniquePrefix("node-batch");
  const store = ResultStore.open(harness.config(prefix));
  const entries = Array.from({ length: 40 }, (_, i) => [`k${i}`, new TextEncoder().encode(`v${i}`)]);
  const stored = store.setMany(entries);
  assert.equal(stored.length, 40);
  assert.ok(stored.every((r) => r.tag === "ok"), JSON.stringify(stored.find((r) => r.tag !== "ok")));
  assert.equal((await harness.keys(prefix)).length, 40);

  const got = store.getMany(["k3", "missing", "k39"]);
  assert.deepEqual(got, [
    { tag: "ok", val: new TextEncoder().encode("v3") },
    { tag: "ok", val: undefined },
    { tag: "ok", val: new TextEncoder().encode("v39") },
  ]);
  // A key S3 cannot hold fails alone, in its place.
  const mixed = store.deleteMany(["k0", "", "k1"]);
  assert.deepEqual(mixed.map((r) => r.tag), ["ok", "err", "ok"]);
  assert.equal(mixed[1].val.tag, "invalid-key");
  assert.equal((await harness.keys(prefix)).length, 38);
});

test("configuration errors are typed and send nothing", () => {
  const config = harness.config(uniquePrefix("node-config"));
  assert.equal(storeError(() => ResultStore.open({ ...config, bucketName: undefined })).tag, "missing-bucket-name");
  const invalid = storeError(() => ResultStore.open({ ...config, endpointUrl: "ftp://example.com" }));
  assert.equal(invalid.tag, "invalid-config");
  const store = ResultStore.open(config);
  assert.equal(storeError(() => store.get("")).tag, "invalid-key");
});

test("S3 and network errors are typed", async () => {
  const prefix = uniquePrefix("node-errors");
  const missing = ResultStore.open(harness.config(prefix, { bucketName: "s3rs-no-such-bucket-node" }));
  const noBucket = storeError(() => missing.get("k"));
  assert.equal(noBucket.tag, "no-such-bucket");
  assert.equal(noBucket.val, "s3rs-no-such-bucket-node");

  const refused = ResultStore.open(harness.config(prefix, { endpointUrl: "http://127.0.0.1:1", maxAttempts: 2 }));
  const transport = storeError(() => refused.get("k"));
  assert.equal(transport.tag, "transport");
  assert.match(transport.val, /refused/);
  assert.match(transport.val, /2 attempts/);

  if (harness.info.verifiesSignatures) {
    const denied = storeError(() =>
      ResultStore.open(harness.config(prefix, { secretAccessKey: "not-the-secret" })).get("k"),
    );
    assert.equal(denied.tag, "access-denied");
    assert.equal(denied.val.status, 403);
    assert.ok(!JSON.stringify(denied).includes("not-the-secret"));
  } else {
    harness.unsupported("node: wrong credentials -> access-denied", "the server accepts any signature");
  }
});
