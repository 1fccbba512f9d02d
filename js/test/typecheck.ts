// Compiled by `npm run typecheck` (tsc), never run: the package's typings as an application
// uses them.
import { keyvalue, ResultStore, StoreError, TaskStore } from "../src/index.js";
import type { Config, StoreErrorCode, TaskMeta } from "../src/index.js";

export const seen: unknown[] = [];

const config: Config = { bucketName: "results", basePath: "celery/", addressingStyle: "auto" };
const store = ResultStore.open(config);
store.set("k", new Uint8Array([1, 2, 3]));
const value: Uint8Array | undefined = store.get("k");
store.delete("k");
for (const result of store.getMany(["a", "b"])) {
  if (result.tag === "err") {
    const code: StoreErrorCode = result.val;
    seen.push(code.tag);
  }
}

try {
  store.get("k");
} catch (e) {
  if (e instanceof StoreError && e.error.tag === "timeout") {
    const phase: string = e.error.val;
    seen.push(phase);
  }
}

const tasks = TaskStore.open(config, "myapp");
const meta: TaskMeta = tasks.getMeta("6f1c2a4e");
if (meta.state.tag === "custom") seen.push(meta.state.val, value);
const document: string = tasks.getDocument("6f1c2a4e");

const bucket = keyvalue.draft2.store.open("results/kv");
bucket.set("greeting", new Uint8Array([104, 105]));
const page = bucket.listKeys(undefined);
const next: string | undefined = page.cursor;
const counter: bigint = keyvalue.draft2.atomics.increment(bucket, "visits", 1n);
const cas = keyvalue.draft2.atomics.Cas.new(bucket, "greeting");
keyvalue.draft2.atomics.swap(cas, new Uint8Array());
const many = keyvalue.draft2.batch.getMany(bucket, ["greeting"]);

const old = keyvalue.draft.store.open("results/kv");
const oldCursor: bigint | undefined = old.listKeys(undefined).cursor;
const total: bigint = keyvalue.draft.atomics.increment(old, "visits", 1n);
seen.push(document, next, counter, many, oldCursor, total);
