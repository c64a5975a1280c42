/**
 * The body and trailer callbacks of both directions, for a filter that reads or edits bodies or
 * trailers. Without them the host passes bodies through without calling the guest at all.
 */
import { Action } from "../types";
import { streamOf } from "./dispatch";

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_request_body").onRequestBody(<usize>bodySize, endOfStream != 0);
}

export function proxy_on_request_trailers(contextId: u32, numTrailers: u32): Action {
  return streamOf(contextId, "proxy_on_request_trailers").onRequestTrailers(numTrailers);
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_response_body").onResponseBody(<usize>bodySize, endOfStream != 0);
}

export function proxy_on_response_trailers(contextId: u32, numTrailers: u32): Action {
  return streamOf(contextId, "proxy_on_response_trailers").onResponseTrailers(numTrailers);
}
