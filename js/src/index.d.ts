// Types of the package's entry point (index.js). The store's and the task backend's come from
// jco's per-interface typings, which are sound; wasi:keyvalue's are written here, since jco
// writes both drafts' typings to one file.
import type { Error as StoreErrorCode } from "../dist/interfaces/result-store-s3-types.js";

export type {
  AddressingStyle,
  Config,
  Error as StoreErrorCode,
  S3Error,
} from "../dist/interfaces/result-store-s3-types.js";
export { ResultStore } from "../dist/interfaces/result-store-s3-store.js";
export type { Result } from "../dist/interfaces/result-store-s3-store.js";
export { TaskStore } from "../dist/interfaces/result-store-s3-tasks.js";
export type { TaskExtended, TaskMeta, TaskState } from "../dist/interfaces/result-store-s3-tasks.js";

/** What a call whose WIT result is an error throws: `error` is the WIT variant. */
export class StoreError<E extends { tag: string } = StoreErrorCode> extends Error {
  readonly error: E;
}

/** wasi:keyvalue/store's error (both drafts). */
export type KeyvalueError =
  | { tag: "no-such-store" }
  | { tag: "access-denied" }
  | { tag: "other"; val: string };

interface BucketOf<Cursor> extends Disposable {
  get(key: string): Uint8Array | undefined;
  set(key: string, value: Uint8Array): void;
  delete(key: string): void;
  exists(key: string): boolean;
  listKeys(cursor: Cursor | undefined): { keys: string[]; cursor?: Cursor };
}

interface BatchOf<B> {
  getMany(bucket: B, keys: string[]): Array<[string, Uint8Array] | undefined>;
  setMany(bucket: B, keyValues: Array<[string, Uint8Array]>): void;
  deleteMany(bucket: B, keys: string[]): void;
}

/** wasi:keyvalue 0.2.0-draft2 (Spin's): string cursors, signed counters, compare-and-swap. */
export namespace Draft2 {
  type Bucket = BucketOf<string>;
  interface Cas extends Disposable {
    current(): Uint8Array | undefined;
  }
  /** swap's error: the store's, or the key as it is now when someone wrote first. */
  type CasError = { tag: "store-error"; val: KeyvalueError } | { tag: "cas-failed"; val: Cas };
}

/** wasi:keyvalue 0.2.0-draft (wasmtime's): numeric cursors, unsigned counters. */
export namespace Draft {
  type Bucket = BucketOf<bigint>;
}

export declare const keyvalue: {
  readonly draft2: {
    readonly store: { open(identifier: string): Draft2.Bucket };
    readonly batch: BatchOf<Draft2.Bucket>;
    readonly atomics: {
      increment(bucket: Draft2.Bucket, key: string, delta: bigint): bigint;
      /** Throws StoreError<Draft2.CasError>. */
      swap(cas: Draft2.Cas, value: Uint8Array): void;
      Cas: { "new"(bucket: Draft2.Bucket, key: string): Draft2.Cas };
    };
  };
  readonly draft: {
    readonly store: { open(identifier: string): Draft.Bucket };
    readonly batch: BatchOf<Draft.Bucket>;
    readonly atomics: { increment(bucket: Draft.Bucket, key: string, delta: bigint): bigint };
  };
};
