/**
 * Foreign functions (reference §3.14): host extensions called by name with opaque bytes. They are
 * host-specific (Envoy: `compress`, `clear_route_cache`, `declare_property`…); a filter that uses
 * one only runs on hosts that register it.
 */
import { proxy_call_foreign_function } from "./imports";
import { RET_LEN, RET_PTR, bufferLen, bufferPtr, clearReturn, discardReturned, stage, staged0, staged0Len, takeBytes } from "./memory";
import { Result, Status } from "./types";

/** Calls the host function `name`; its result bytes, or `NotFound` for an unknown name. */
export function callForeignFunction(name: string, args: ArrayBuffer | null): Result<ArrayBuffer | null> {
  stage(name);
  clearReturn();
  const status = <Status>proxy_call_foreign_function(staged0, staged0Len, bufferPtr(args), bufferLen(args), RET_PTR, RET_LEN);
  if (status != Status.Ok) {
    discardReturned();
    return new Result<ArrayBuffer | null>(status, null);
  }
  return new Result<ArrayBuffer | null>(status, takeBytes());
}
