// The per-host benchmark's Node.js leg (benches/src/hosts.rs runs it): N sets of a value under
// N keys, then N gets, then N deletes, through the package, each timed on its own. Prints
// {"set": {"mean_us", "median_us", "p90_us"}, "get": ..., "delete": ...}.
import { ResultStore } from "../src/index.js";

const env = (name) => {
  const value = process.env[`S3RS_BENCH_${name}`];
  if (value === undefined) throw new Error(`S3RS_BENCH_${name} is not set`);
  return value;
};
const rounds = Number(env("ROUNDS"));
const size = Number(env("SIZE"));
const store = ResultStore.open({
  endpointUrl: env("ENDPOINT"),
  region: env("REGION"),
  accessKeyId: env("ACCESS_KEY_ID"),
  secretAccessKey: env("SECRET_ACCESS_KEY"),
  bucketName: env("BUCKET"),
  basePath: env("BASE_PATH"),
  addressingStyle: "path",
});
const value = Uint8Array.from({ length: size }, (_, i) => i % 251);
const keys = Array.from({ length: rounds }, (_, i) => `k${i}`);

function summary(times) {
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.round((times.length - 1) * q)];
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return { mean_us: mean * 1000, median_us: at(0.5) * 1000, p90_us: at(0.9) * 1000 };
}

const result = {};
for (const op of ["set", "get", "delete"]) {
  const times = [];
  for (const key of keys) {
    const started = performance.now();
    if (op === "set") store.set(key, value);
    else if (op === "get") {
      const got = store.get(key);
      if (got?.length !== size) throw new Error(`get ${key}: another value`);
    } else store.delete(key);
    times.push(performance.now() - started);
  }
  result[op] = summary(times);
}
console.log(JSON.stringify(result));
