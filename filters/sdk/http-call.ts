/**
 * HTTP callouts (reference §3.8, §4.5) and the callout status (`proxy_get_status`). A call is
 * owned by the plugin's root; its answer arrives as `proxy_on_http_call_response(root, token, …)`
 * and the SDK hands it to the context that dispatched it (see `Context.dispatchHttpCall`). While
 * that callback runs, the response is readable through the functions below.
 */
import { proxy_get_status, proxy_http_call } from "./imports";
import { RET_LEN, RET_PTR, RET_U32, bufferLen, bufferPtr, clearReturn, discardReturned, stage, staged0, staged0Len, takeString } from "./memory";
import { serializePairs } from "./pairs";
import { getBufferBytes, ALL } from "./buffers";
import { getHeaderMapPairs, getHeaderMapValue } from "./maps";
import { BufferType, Header, MapType, Result, Status } from "./types";

/**
 * Sends an HTTP request to the cluster `upstream`. `headers` must include `:method`, `:path` and
 * `:authority`; `timeoutMs` 0 means no timeout. Returns the call's token, or the host's refusal:
 * `BadArgument` (unknown cluster, missing pseudo-header) or `InternalFailure`.
 *
 * This is the raw hostcall: the answer reaches a context only if the token was registered with
 * the dispatcher, which `Context.dispatchHttpCall` does. Prefer that.
 */
export function httpCall(upstream: string, headers: Header[], body: ArrayBuffer | null, trailers: Header[], timeoutMs: u32): Result<u32> {
  const h = serializePairs(headers);
  const t = serializePairs(trailers);
  stage(upstream);
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_http_call(staged0, staged0Len, bufferPtr(h), bufferLen(h), bufferPtr(body), bufferLen(body),
    bufferPtr(t), bufferLen(t), timeoutMs, RET_U32);
  return new Result<u32>(status, load<u32>(RET_U32));
}

/** Headers of the http-call response being delivered (`:status` included); empty after a failed call. */
export function getHttpCallResponseHeaders(): Header[] {
  return getHeaderMapPairs(MapType.HttpCallResponseHeaders);
}

/** One header of the http-call response being delivered, or null. */
export function getHttpCallResponseHeader(name: string): string | null {
  return getHeaderMapValue(MapType.HttpCallResponseHeaders, name);
}

/** Body bytes of the http-call response being delivered (buffer 4). */
export function getHttpCallResponseBody(start: u32 = 0, maxSize: u32 = ALL): ArrayBuffer | null {
  return getBufferBytes(BufferType.HttpCallResponseBody, start, maxSize);
}

/** Trailers of the http-call response being delivered. */
export function getHttpCallResponseTrailers(): Header[] {
  return getHeaderMapPairs(MapType.HttpCallResponseTrailers);
}

/** The status of the last callout, read from the root (`proxy_get_status`). */
export class CalloutStatus {
  constructor(public status: Status, public code: u32, public message: string) {}
}

/**
 * After a failed http call (0 headers) Envoy reports code 11 with "reset"; in `onGrpcClose` /
 * `onGrpcCallResponse` it is the gRPC status and message. Not set for successful http calls:
 * read `:status` from the response headers instead.
 */
export function getStatus(): CalloutStatus {
  store<u32>(RET_U32, 0);
  clearReturn();
  const status = <Status>proxy_get_status(RET_U32, RET_PTR, RET_LEN);
  if (status != Status.Ok) {
    discardReturned();
    return new CalloutStatus(status, 0, "");
  }
  const code = load<u32>(RET_U32);
  return new CalloutStatus(status, code, takeString());
}
