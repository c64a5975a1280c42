/** proxy_on_log, for a filter whose HTTP or root context overrides onLog. */
import { streams } from "../registry";
import { rootOf } from "./dispatch";

export function proxy_on_log(contextId: u32): void {
  if (streams.has(contextId)) streams.get(contextId).onLog();
  else rootOf(contextId, "proxy_on_log").onLog();
}
