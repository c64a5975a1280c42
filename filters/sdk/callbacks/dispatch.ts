/**
 * How a callback finds its context: by id in the registry, as the Rust SDK's dispatcher does.
 * Ids the host never announced (or already deleted) abort with a message: a host bug, as in the
 * Rust, Go and AssemblyScript SDKs (reference §6.11). Not a callback file: nothing here becomes
 * a Wasm export.
 */
import { HttpContext, RootContext, Context } from "../context";
import { proxy_set_effective_context } from "../imports";
import { calloutOwner, roots, streams } from "../registry";

export function rootOf(id: u32, callback: string): RootContext {
  if (!roots.has(id)) abort(callback + ": unknown root context " + id.toString());
  return roots.get(id);
}

export function streamOf(id: u32, callback: string): HttpContext {
  if (!streams.has(id)) abort(callback + ": unknown http context " + id.toString());
  return streams.get(id);
}

export function anyOf(id: u32, callback: string): Context {
  if (streams.has(id)) return streams.get(id);
  return rootOf(id, callback);
}

/**
 * The context that dispatched `token`, made effective when it is an HTTP context, or null when it
 * is gone (or the token is unknown): the answer is then dropped.
 */
export function calloutTarget(rootId: u32, token: u32, finished: bool, callback: string): Context | null {
  rootOf(rootId, callback);
  const owner = calloutOwner(token, finished);
  if (owner == 0) return null;
  if (streams.has(owner)) {
    proxy_set_effective_context(owner);
    return streams.get(owner);
  }
  return roots.has(owner) ? roots.get(owner) : null;
}
