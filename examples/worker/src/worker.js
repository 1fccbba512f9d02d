// A Cloudflare Worker on the s3-result-store component: the store's get, set and delete over
// HTTP, for any S3-compatible server.
//
//   GET    /objects/{key}   200 and the value; 404 when there is none
//   PUT    /objects/{key}   204: the request body is stored under the key
//   DELETE /objects/{key}   204 (also when there was none)
//
// Errors are JSON, {"error": "<the store's error case>", "message": "..."}: 400 for a key S3
// cannot hold, 500 for the Worker's own configuration, 502 when S3 or the network failed,
// 503 when S3 still said SlowDown after the store's retries, 504 for a timeout.
//
// The component runs through jco's JSPI transpilation (build.mjs): its blocking WASI calls
// (poll, stream reads) suspend the WebAssembly stack while workerd's fetch and timers run.
// One instance per request: an instance shared by concurrent requests hangs them all under
// workerd (see docs/deploying.md).
import { openStore } from "./store.js";

/** The store's config from the Worker's environment (vars and secrets in wrangler.toml). */
export function configFrom(env) {
  const number = (name) => {
    const text = env[name];
    if (text === undefined || text === "") return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0) throw new ConfigError(`${name} must be a whole number, not ${JSON.stringify(text)}`);
    return value;
  };
  const text = (name) => (env[name] === "" ? undefined : env[name]);
  return {
    endpointUrl: text("S3_ENDPOINT_URL"),
    region: text("S3_REGION"),
    accessKeyId: text("AWS_ACCESS_KEY_ID"),
    secretAccessKey: text("AWS_SECRET_ACCESS_KEY"),
    sessionToken: text("AWS_SESSION_TOKEN"),
    bucketName: text("S3_BUCKET"),
    basePath: text("S3_BASE_PATH"),
    addressingStyle: "auto",
    maxAttempts: number("S3_MAX_ATTEMPTS"),
    operationTimeoutMs: number("S3_OPERATION_TIMEOUT_MS"),
    connectTimeoutMs: number("S3_CONNECT_TIMEOUT_MS"),
    firstByteTimeoutMs: number("S3_FIRST_BYTE_TIMEOUT_MS"),
    betweenBytesTimeoutMs: number("S3_BETWEEN_BYTES_TIMEOUT_MS"),
    maxValueBytes: undefined,
  };
}

class ConfigError extends Error {}

const STATUS = {
  "missing-bucket-name": 500,
  "missing-credentials": 500,
  "invalid-config": 500,
  "invalid-key": 400,
  "value-too-large": 413,
  timeout: 504,
};

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** The store's error (a jco ComponentError carrying the WIT `error` variant) as a response. */
function storeError(e) {
  const error = e?.payload;
  if (typeof error?.tag !== "string") throw e;
  const message = typeof error.val === "string" ? error.val : describe(error);
  let status = STATUS[error.tag] ?? 502;
  if (error.tag === "s3" && (error.val.status === 503 || error.val.status === 429)) status = 503;
  return json(status, { error: error.tag, message });
}

function describe(error) {
  const v = error.val;
  if (v && typeof v === "object" && "status" in v) {
    return `S3 answered HTTP ${v.status} ${v.code}: ${v.message}`;
  }
  return error.tag;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const match = /^\/objects\/(.+)$/.exec(url.pathname);
    if (!match) return json(404, { error: "not-found", message: "try /objects/{key}" });
    let key;
    try {
      key = decodeURIComponent(match[1]);
    } catch {
      return json(400, { error: "bad-request", message: "a malformed %-escape in the key" });
    }
    const method = request.method;
    if (!["GET", "PUT", "DELETE"].includes(method)) {
      return json(405, { error: "method-not-allowed", message: `${method} /objects/{key}` }, { allow: "GET, PUT, DELETE" });
    }
    let config;
    try {
      config = configFrom(env);
    } catch (e) {
      if (e instanceof ConfigError) return json(500, { error: "invalid-config", message: e.message });
      throw e;
    }
    const value = method === "PUT" ? new Uint8Array(await request.arrayBuffer()) : undefined;
    try {
      const store = await openStore(config);
      switch (method) {
        case "GET": {
          const found = await store.get(key);
          if (found === undefined) return json(404, { error: "no-such-key", message: key });
          return new Response(found, { headers: { "content-type": "application/octet-stream" } });
        }
        case "PUT":
          await store.set(key, value);
          return new Response(null, { status: 204 });
        default:
          await store.delete(key);
          return new Response(null, { status: 204 });
      }
    } catch (e) {
      return storeError(e);
    }
  },
};
