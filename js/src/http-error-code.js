// A corrected wasi:http/types#http-error-code for jco's WASI shim (@bytecodealliance/preview2-shim
// 0.26.1), with no imports of its own, so that both the Node package (wasi-http-types.js) and
// the Worker example (which copies it; examples/worker/build.mjs) use the one file.
//
// The shim's bug (dist/nodejs/http.js and dist/browser/http.js, `httpErrorCode`): it returns
// the io-error's `payload` whenever there is one. For a response body that fails part-way (the
// server closes or resets the connection, or the between-bytes timer fires) that payload is a
// JS `Error` (Node's `Error: aborted`, `ECONNRESET`; fetch's TypeError), not an `error-code`
// variant, so lowering the result throws `TypeError: invalid variant tag value undefined
// (received Error: aborted) specified for ErrorCode` out of the component's call: a trap
// instead of the store's `transport` error. This version passes real `error-code` variants
// through and maps anything else to the closest `error-code`.

// The cases of wasi:http/types#error-code (WASI 0.2).
const ERROR_CODES = new Set([
  "DNS-timeout", "DNS-error", "destination-not-found", "destination-unavailable",
  "destination-IP-prohibited", "destination-IP-unroutable", "connection-refused",
  "connection-terminated", "connection-timeout", "connection-read-timeout",
  "connection-write-timeout", "connection-limit-reached", "TLS-protocol-error",
  "TLS-certificate-error", "TLS-alert-received", "HTTP-request-denied",
  "HTTP-request-length-required", "HTTP-request-body-size", "HTTP-request-method-invalid",
  "HTTP-request-URI-invalid", "HTTP-request-URI-too-long", "HTTP-request-header-section-size",
  "HTTP-request-header-size", "HTTP-request-trailer-section-size", "HTTP-request-trailer-size",
  "HTTP-response-incomplete", "HTTP-response-header-section-size", "HTTP-response-header-size",
  "HTTP-response-body-size", "HTTP-response-trailer-section-size", "HTTP-response-trailer-size",
  "HTTP-response-transfer-coding", "HTTP-response-content-coding", "HTTP-response-timeout",
  "HTTP-upgrade-failed", "HTTP-protocol-error", "loop-detected", "configuration-error",
  "internal-error",
]);

/** The `error-code` a JS error from Node's http (or fetch) stands for. */
function fromJsError(error) {
  const code = error?.code;
  const message = String(error?.message ?? error);
  if (code === "ECONNRESET" || code === "EPIPE") return { tag: "connection-terminated" };
  if (code === "ETIMEDOUT" || /timed? ?out/i.test(message)) return { tag: "HTTP-response-timeout" };
  if (message === "aborted" || code === "ERR_STREAM_PREMATURE_CLOSE") return { tag: "HTTP-response-incomplete" };
  return { tag: "internal-error", val: message };
}

/**
 * wasi:http/types#http-error-code: the error-code of a stream's io-error, if it has one.
 * @param {{ payload?: unknown }} err
 */
export function httpErrorCode(err) {
  const payload = err?.payload;
  if (payload === undefined || payload === null) return fromJsError(err);
  if (typeof payload.tag === "string" && ERROR_CODES.has(payload.tag)) return payload;
  return fromJsError(payload);
}

