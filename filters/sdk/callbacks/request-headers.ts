/** proxy_on_request_headers, for a filter whose HTTP context overrides onRequestHeaders. */
import { Action } from "../types";
import { streamOf } from "./dispatch";

export function proxy_on_request_headers(contextId: u32, numHeaders: u32, endOfStream: u32): Action {
  return streamOf(contextId, "proxy_on_request_headers").onRequestHeaders(numHeaders, endOfStream != 0);
}
