// `workerd test config.capnp`: the Worker (src/worker.js) asked as Cloudflare would ask it, one
// request at a time, against the test S3 server and the fault proxy of the edge harness
// (tests/bin/edge_harness.rs), whose addresses come in as bindings (config.capnp). Each case
// prints one line; any failure fails the run.
import worker from "../src/worker.js";

// Short timeouts so that stalls end quickly; two attempts per operation.
const TIMEOUTS = {
  S3_CONNECT_TIMEOUT_MS: "1000",
  S3_FIRST_BYTE_TIMEOUT_MS: "500",
  S3_BETWEEN_BYTES_TIMEOUT_MS: "500",
  S3_OPERATION_TIMEOUT_MS: "5000",
  S3_MAX_ATTEMPTS: "2",
};
const BOUND_MS = 5000 + 5000;

function workerEnv(env, basePath, overrides = {}) {
  return {
    S3_ENDPOINT_URL: env.S3RS_EDGE_ENDPOINT,
    S3_REGION: env.S3RS_EDGE_REGION,
    S3_BUCKET: env.S3RS_EDGE_BUCKET,
    AWS_ACCESS_KEY_ID: env.S3RS_EDGE_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: env.S3RS_EDGE_SECRET_ACCESS_KEY,
    S3_BASE_PATH: basePath,
    ...overrides,
  };
}

async function ask(workerEnv, method, key, body) {
  const request = new Request(`http://worker.test/objects/${encodeURIComponent(key)}`, { method, body });
  return worker.fetch(request, workerEnv);
}

/** The harness's control port: faults, and boto3's view of the bucket. */
function control(env) {
  const call = async (method, path, body, ok = [200, 204]) => {
    const response = await fetch(`${env.S3RS_EDGE_CONTROL}${path}`, { method, body });
    if (!ok.includes(response.status)) throw new Error(`harness ${method} ${path}: ${response.status} ${await response.text()}`);
    return response;
  };
  return {
    push: (fault) => call("POST", "/faults", JSON.stringify(fault)),
    clear: () => call("POST", "/clear"),
    stats: async () => (await call("GET", "/stats")).json(),
    object: async (key) => {
      const response = await call("GET", `/object?key=${encodeURIComponent(key)}`, undefined, [200, 404]);
      return response.status === 404 ? undefined : new Uint8Array(await response.arrayBuffer());
    },
    putObject: (key, value) => call("PUT", `/object?key=${encodeURIComponent(key)}`, value),
  };
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function equalBytes(a, b) {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

async function errorOf(response, status, kind) {
  const text = await response.text();
  assert(response.status === status, `expected ${status} ${kind}, got ${response.status}: ${text}`);
  const body = JSON.parse(text);
  assert(body.error === kind, `expected ${kind}, got ${text}`);
  return body;
}

let run = 0;
const prefix = (test) => `s3rs-test/${Date.now().toString(16)}-workerd-${++run}/${test}/`;

const cases = {
  async "set, get and delete round trip, as boto3 sees it"(env, h) {
    const base = prefix("workerd-roundtrip");
    const e = workerEnv(env, base);
    const value = Uint8Array.from({ length: 5000 }, (_, i) => i % 256);
    let response = await ask(e, "PUT", "results/a b", value);
    assert(response.status === 204, `PUT: ${response.status} ${await response.text()}`);
    assert(equalBytes(await h.object(`${base}results/a b`), value), "boto3 does not see the value");
    response = await ask(e, "GET", "results/a b");
    assert(response.status === 200, `GET: ${response.status}`);
    assert(equalBytes(new Uint8Array(await response.arrayBuffer()), value), "GET returned another value");
    response = await ask(e, "DELETE", "results/a b");
    assert(response.status === 204, `DELETE: ${response.status}`);
    assert((await h.object(`${base}results/a b`)) === undefined, "boto3 still sees the value");
  },

  async "an unknown key is 404"(env) {
    const response = await ask(workerEnv(env, prefix("workerd-unknown")), "GET", "never-stored");
    await errorOf(response, 404, "no-such-key");
  },

  async "a wrong secret is 502 access-denied, the secret not in the message"(env) {
    if (env.S3RS_EDGE_VERIFIES_SIGNATURES !== "true") {
      console.log(`NOT SUPPORTED by ${env.S3RS_EDGE_SERVER}: workerd: wrong secret -> access-denied: the server accepts any signature`);
      return;
    }
    const e = workerEnv(env, prefix("workerd-denied"), { AWS_SECRET_ACCESS_KEY: "not-the-secret" });
    const body = await errorOf(await ask(e, "GET", "k"), 502, "access-denied");
    assert(!JSON.stringify(body).includes("not-the-secret"), "the secret is in the message");
  },

  async "a refused endpoint is 502 transport"(env) {
    const e = workerEnv(env, prefix("workerd-refused"), { S3_ENDPOINT_URL: "http://127.0.0.1:1", S3_MAX_ATTEMPTS: "2" });
    const body = await errorOf(await ask(e, "GET", "k"), 502, "transport");
    assert(/2 attempts/.test(body.message), body.message);
  },

  async "a body cut short is 502 transport"(env, h) {
    await faultCase(env, h, { fault: "truncate-body" }, 502, "transport");
  },

  async "a server that never answers is 504 timeout within the bound"(env, h) {
    await faultCase(env, h, { fault: "silent" }, 504, "timeout");
  },

  async "a body that stalls after 1,000 bytes is 504 timeout within the bound"(env, h) {
    await faultCase(env, h, { fault: "stall-body", after: 1000 }, 504, "timeout");
  },
};

/** A GET of a 100 kB value through the proxy, `fault` on every attempt. */
async function faultCase(env, h, fault, status, kind) {
  const base = prefix(`workerd-${fault.fault}`);
  await h.putObject(`${base}big`, Uint8Array.from({ length: 100_000 }, (_, i) => i % 251));
  const e = workerEnv(env, base, { S3_ENDPOINT_URL: env.S3RS_EDGE_PROXY, ...TIMEOUTS });
  await h.clear();
  const heldBefore = (await h.stats()).held.length;
  await h.push({ ...fault, count: 2 });
  // workerd's clock moves only on I/O; the proxy's record of when each connection was closed
  // is the independent measure.
  const started = Date.now();
  const response = await ask(e, "GET", "big");
  const ms = Date.now() - started;
  await h.clear();
  const body = await errorOf(response, status, kind);
  assert(/gave up after 2 attempts/.test(body.message), body.message);
  assert(ms < BOUND_MS, `took ${ms} ms`);
  const held = (await h.stats()).held.slice(heldBefore).map((x) => `${x.kind} ${x.ms} ms${x.closedByClient ? "" : " (still open)"}`);
  console.log(`fault table: workerd, ${fault.fault} -> ${body.error} in ${ms} ms (${body.message}); proxy held: ${held.join(", ") || "none"}`);
}

export default {
  async test(controller, env) {
    const h = control(env);
    let passed = 0;
    const failed = [];
    // S3RS_EDGE_ONLY: run only the cases whose names contain it.
    const only = env.S3RS_EDGE_ONLY || "";
    for (const [name, run] of Object.entries(cases).filter(([name]) => name.includes(only))) {
      try {
        await run(env, h);
        passed += 1;
        console.log(`ok - ${name}`);
      } catch (e) {
        failed.push(name);
        console.log(`not ok - ${name}: ${e.stack ?? e}`);
      }
    }
    console.log(`workerd: ${passed} passed, ${failed.length} failed`);
    if (failed.length > 0) throw new Error(`failed: ${failed.join("; ")}`);
  },
};
