/** proxy_on_response_headers, for a filter whose HTTP context overrides onResponseHeaders. */
import { Action } from "../types";
import { streamOf } from "./dispatch";

export function proxy_on_response_headers(contextId: u32, numHeaders: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_response_headers").onResponseHeaders(numHeaders, endOfStream != 0);
}
