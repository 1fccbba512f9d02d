// wasi:keyvalue (both drafts) through the Node package: the bucket the environment names,
// checked with an independent client (boto3, through the harness).
import { after, test } from "node:test";
import assert from "node:assert/strict";

import { startHarness, uniquePrefix } from "./support/harness.js";

// wasi:keyvalue takes the endpoint and credentials from the environment, as any AWS client;
// the WASI shim reads process.env when it is first imported, so the package is imported once
// the harness has said where the server is.
const harness = await startHarness();
const i = harness.info;
Object.assign(process.env, {
  AWS_ENDPOINT_URL_S3: i.endpoint,
  AWS_REGION: i.region,
  AWS_ACCESS_KEY_ID: i.accessKeyId,
  AWS_SECRET_ACCESS_KEY: i.secretAccessKey,
});
const { keyvalue, StoreError } = await import("../src/index.js");
after(() => harness.close());

const text = (s) => new TextEncoder().encode(s);

for (const draft of ["draft2", "draft"]) {
  const { store, batch, atomics } = keyvalue[draft];

  test(`${draft}: get, set, delete, exists and list-keys`, async () => {
    const prefix = uniquePrefix(`node-kv-${draft}`);
    const bucket = store.open(`${harness.info.bucket}/${prefix}`);
    bucket.set("greeting", text("hello"));
    assert.deepEqual(await harness.object(`${prefix}greeting`), text("hello"));
    await harness.putObject(`${prefix}from-boto3`, text("written elsewhere"));
    assert.deepEqual(bucket.get("from-boto3"), text("written elsewhere"));
    assert.equal(bucket.exists("greeting"), true);
    const listed = bucket.listKeys(undefined);
    assert.deepEqual(listed.keys.sort(), ["from-boto3", "greeting"]);
    assert.equal(listed.cursor, undefined);
    bucket.delete("greeting");
    assert.equal(bucket.exists("greeting"), false);
    assert.equal(bucket.get("greeting"), undefined);
    assert.equal(await harness.object(`${prefix}greeting`), undefined);
  });

  test(`${draft}: batches`, async () => {
    const prefix = uniquePrefix(`node-kv-batch-${draft}`);
    const bucket = store.open(`${harness.info.bucket}/${prefix}`);
    batch.setMany(bucket, [["a", text("1")], ["b", text("2")]]);
    assert.deepEqual(await harness.keys(prefix), [`${prefix}a`, `${prefix}b`]);
    assert.deepEqual(batch.getMany(bucket, ["a", "missing", "b"]), [["a", text("1")], undefined, ["b", text("2")]]);
    batch.deleteMany(bucket, ["a", "b"]);
    assert.deepEqual(await harness.keys(prefix), []);
  });

  test(`${draft}: counters`, async () => {
    const prefix = uniquePrefix(`node-kv-incr-${draft}`);
    const bucket = store.open(`${harness.info.bucket}/${prefix}`);
    // draft2 counts in s64, draft in u64: bigints either way.
    if (!harness.info.conditionalWrites) {
      assert.throws(() => atomics.increment(bucket, "n", 1n), (e) => {
        assert.ok(e instanceof StoreError, `${e?.stack ?? e}`);
        assert.equal(e.error.tag, "other");
        assert.match(e.error.val, /not supported by the server/);
        return true;
      });
      harness.unsupported(`node: ${draft} increment`, "the server ignores If-Match / If-None-Match");
      return;
    }
    assert.equal(atomics.increment(bucket, "n", 1n), 1n);
    assert.equal(atomics.increment(bucket, "n", 41n), 42n);
    assert.deepEqual(await harness.object(`${prefix}n`), text("42"));
  });

  test(`${draft}: an unknown bucket is no-such-store`, () => {
    const bucket = store.open("s3rs-no-such-bucket-node-kv");
    assert.throws(() => bucket.get("k"), (e) => {
      assert.ok(e instanceof StoreError, `${e?.stack ?? e}`);
      assert.equal(e.error.tag, "no-such-store");
      return true;
    });
  });
}
