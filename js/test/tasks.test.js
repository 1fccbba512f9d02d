// Celery's result backend through the Node package, checked against real Celery (its S3
// backend over boto3, through the harness) on the same bucket.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { TaskStore } from "../src/index.js";
import { startHarness, uniquePrefix } from "./support/harness.js";

/** @type {import("./support/harness.js").Harness} */
let harness;
before(async () => {
  harness = await startHarness();
});
after(() => harness.close());

function meta(taskId, state, resultJson) {
  return {
    taskId,
    state,
    resultJson,
    traceback: undefined,
    childrenJson: "[]",
    dateDone: undefined,
    groupId: undefined,
    parentId: undefined,
    extended: undefined,
  };
}

test("a result stored from Node is read by Celery", async () => {
  const prefix = uniquePrefix("node-tasks");
  const tasks = TaskStore.open(harness.config(prefix), undefined);
  const stored = tasks.storeResult(meta("node-ok-1", { tag: "success" }, '{"sum": 3, "name": "caf\\u00e9"}'));
  assert.equal(stored.state.tag, "success");
  assert.ok(stored.dateDone, "a ready state gets Celery's date_done");
  tasks.storeResult(meta("node-progress-1", { tag: "custom", val: "PROGRESS" }, '{"current": 3}'));

  const seen = await harness.celery("read", { tasks: ["node-ok-1", "node-progress-1", "node-never"] }, { basePath: prefix });
  assert.equal(seen.tasks[0].state, "SUCCESS");
  assert.deepEqual(seen.tasks[0].result, { sum: 3, name: "caf\u00e9" });
  assert.equal(seen.tasks[1].state, "PROGRESS");
  assert.deepEqual(seen.tasks[1].result, { current: 3 });
  assert.equal(seen.tasks[2].state, "PENDING");

  // Forgotten from Node: Celery sees PENDING.
  tasks.forget("node-ok-1");
  const after = await harness.celery("read", { tasks: ["node-ok-1"] }, { basePath: prefix });
  assert.equal(after.tasks[0].state, "PENDING");
});

test("a result written by Celery is read from Node, byte for byte", async () => {
  const prefix = uniquePrefix("node-celery");
  await harness.celery(
    "write",
    [
      { task_id: "celery-ok", state: "SUCCESS", result: { total: 10, names: ["\u00e9t\u00e9"] } },
      { task_id: "celery-failed", state: "FAILURE", exception: { type: "KeyError", module: "builtins", args: ["missing"] }, traceback: true },
    ],
    { basePath: prefix },
  );
  const tasks = TaskStore.open(harness.config(prefix), undefined);
  const ok = tasks.getMeta("celery-ok");
  assert.equal(ok.state.tag, "success");
  assert.deepEqual(JSON.parse(ok.resultJson), { total: 10, names: ["\u00e9t\u00e9"] });
  const failed = tasks.getMeta("celery-failed");
  assert.equal(failed.state.tag, "failure");
  assert.equal(JSON.parse(failed.resultJson).exc_type, "KeyError");
  assert.match(failed.traceback, /KeyError: 'missing'\n$/);

  // The document as Celery stored it.
  const key = `${prefix}celery-task-meta-celery-ok`;
  const raw = await harness.celery("raw", [key], { basePath: prefix });
  assert.equal(Buffer.from(tasks.getDocument("celery-ok")).toString("hex"), raw[key]);
  assert.equal(
    tasks.getDocument("never-stored"),
    '{"status": "PENDING", "result": null, "traceback": null, "children": [], "date_done": null, "task_id": "never-stored"}',
  );
});

test("groups: saved from Node, restored by Celery and back", async () => {
  const prefix = uniquePrefix("node-groups");
  const tasks = TaskStore.open(harness.config(prefix), undefined);
  tasks.saveGroup("g1", ["a", "b", "c"]);
  assert.deepEqual(tasks.restoreGroup("g1"), ["a", "b", "c"]);
  const seen = await harness.celery("read", { tasks: [], groups: ["g1"] }, { basePath: prefix });
  assert.deepEqual(seen.groups.g1, ["a", "b", "c"]);
  tasks.forgetGroup("g1");
  assert.equal(tasks.restoreGroup("g1"), undefined);
});
