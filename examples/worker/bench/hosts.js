// The per-host benchmark's workerd leg (benches/src/hosts.rs runs `workerd test bench.capnp`):
// N sets of a value under N keys, then N gets, then N deletes, through one instance of the
// store (the requests run one after another, never concurrently), each timed on its own.
// Prints one line, `bench: {"set": {"mean_us", "median_us", "p90_us"}, ...}`. workerd's clock
// moves only when I/O completes, in whole milliseconds: the means are the figures to compare.
import { openStore } from "../src/store.js";

function summary(times) {
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.round((times.length - 1) * q)];
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return { mean_us: mean * 1000, median_us: at(0.5) * 1000, p90_us: at(0.9) * 1000 };
}

export default {
  async test(controller, env) {
    const rounds = Number(env.S3RS_BENCH_ROUNDS);
    const size = Number(env.S3RS_BENCH_SIZE);
    const store = await openStore({
      endpointUrl: env.S3RS_BENCH_ENDPOINT,
      region: env.S3RS_BENCH_REGION,
      accessKeyId: env.S3RS_BENCH_ACCESS_KEY_ID,
      secretAccessKey: env.S3RS_BENCH_SECRET_ACCESS_KEY,
      bucketName: env.S3RS_BENCH_BUCKET,
      basePath: env.S3RS_BENCH_BASE_PATH,
      addressingStyle: "path",
    });
    const value = Uint8Array.from({ length: size }, (_, i) => i % 251);
    const keys = Array.from({ length: rounds }, (_, i) => `k${i}`);
    const result = {};
    for (const op of ["set", "get", "delete"]) {
      const times = [];
      for (const key of keys) {
        const started = performance.now();
        if (op === "set") await store.set(key, value);
        else if (op === "get") {
          const got = await store.get(key);
          if (got?.length !== size) throw new Error(`get ${key}: another value`);
        } else await store.delete(key);
        times.push(performance.now() - started);
      }
      result[op] = summary(times);
    }
    console.log(`bench: ${JSON.stringify(result)}`);
  },
};
