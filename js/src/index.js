// The s3-result-store component for Node.js: the store, Celery's result backend and
// wasi:keyvalue at both drafts, each under a name of its own, with typed errors.
//
// jco's own entry point (dist/s3-result-store.js) exports the store's interface and both
// wasi:keyvalue drafts' under the same short names (`store`, `batch`, `atomics`), so its
// typings do not compile and `store` is the result store while `batch` is the 0.2.0-draft one;
// the full interface names it also exports are unambiguous and used here.
//
// Errors: a call whose WIT result is an error throws `StoreError`, whose `error` is the WIT
// variant ({tag: "timeout", val: "..."}) and whose message says it in words. Anything else
// thrown (a WebAssembly.RuntimeError) is a trap: a bug.
import * as component from "../dist/s3-result-store.js";

export class StoreError extends Error {
  constructor(error) {
    super(describe(error));
    this.name = "StoreError";
    /** The WIT error variant. */
    this.error = error;
  }
}

function describe(error) {
  const { tag, val } = error ?? {};
  if (val === undefined) return String(tag);
  if (typeof val === "object" && "status" in val) {
    return `${tag}: HTTP ${val.status} ${val.code}: ${val.message}`;
  }
  return `${tag}: ${val}`;
}

/** Runs `call`, turning jco's ComponentError (a WIT error result) into a StoreError. */
function typed(call) {
  try {
    return call();
  } catch (e) {
    if (e instanceof Error && e.constructor.name === "ComponentError" && Object.hasOwn(e, "payload")) {
      throw new StoreError(e.payload);
    }
    throw e;
  }
}

function typedFunction(f) {
  return function (...args) {
    return typed(() => f.apply(this, args));
  };
}

/** Makes every method (and static function) of a generated resource class throw StoreError. */
function typedClass(cls) {
  for (const target of [cls, cls.prototype]) {
    for (const name of Object.getOwnPropertyNames(target)) {
      const descriptor = Object.getOwnPropertyDescriptor(target, name);
      if (name !== "constructor" && typeof descriptor.value === "function") {
        Object.defineProperty(target, name, { ...descriptor, value: typedFunction(descriptor.value) });
      }
    }
  }
  return cls;
}

/** An interface's exports with typed errors: its resource classes and its functions. */
function typedInterface(exports) {
  return Object.fromEntries(
    Object.entries(exports).map(([name, value]) => [
      name,
      typeof value === "function" && /^[A-Z]/.test(name) ? typedClass(value) : typedFunction(value),
    ]),
  );
}

export const { ResultStore } = typedInterface(component["result-store:s3/store@0.1.0"]);
export const { TaskStore } = typedInterface(component["result-store:s3/tasks@0.1.0"]);

/** wasi:keyvalue: `draft2` is 0.2.0-draft2 (Spin's), `draft` is 0.2.0-draft (wasmtime's). */
export const keyvalue = Object.freeze({
  draft2: Object.freeze({
    store: typedInterface(component["wasi:keyvalue/store@0.2.0-draft2"]),
    batch: typedInterface(component["wasi:keyvalue/batch@0.2.0-draft2"]),
    atomics: typedInterface(component["wasi:keyvalue/atomics@0.2.0-draft2"]),
  }),
  draft: Object.freeze({
    store: typedInterface(component["wasi:keyvalue/store@0.2.0-draft"]),
    batch: typedInterface(component["wasi:keyvalue/batch@0.2.0-draft"]),
    atomics: typedInterface(component["wasi:keyvalue/atomics@0.2.0-draft"]),
  }),
});
