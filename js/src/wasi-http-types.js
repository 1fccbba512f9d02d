// wasi:http/types from the WASI shim with `http-error-code` corrected (http-error-code.js says
// what the shim gets wrong). jco maps this module in for wasi:http/types (build.mjs, --map).
import { types as shimTypes } from "@bytecodealliance/preview2-shim/http";
import { httpErrorCode } from "./http-error-code.js";

export const types = { ...shimTypes, httpErrorCode };
