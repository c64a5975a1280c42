/**
 * What the dispatcher knows: root-context factories by root id, the live contexts by id, and the
 * outstanding callouts by token (which context dispatched each), as in the Rust SDK's dispatcher.
 */
import { HttpContext, RootContext } from "./context";

/** Builds the root context for a plugin; receives the context id the host chose. */
export type RootContextFactory = (contextId: u32) => RootContext;

const factories = new Map<string, RootContextFactory>();
const factoryIds = new Array<string>();

/**
 * Registers the root context of the plugins whose root id is `rootId` (Envoy `root_id`,
 * edge-gateway `rootId`). Call it from the filter's top level, which runs when the module is
 * instantiated, as the Rust SDK's `main!` / `set_root_context` do:
 *
 *   registerRootContext((id: u32): RootContext => new MyRoot(id), "my_root_id");
 *
 * A module may register several root ids. A plugin whose root id has no registration uses the
 * one registered under "" if any, else the only registration if there is exactly one.
 */
export function registerRootContext(factory: RootContextFactory, rootId: string = ""): void {
  if (!factories.has(rootId)) factoryIds.push(rootId);
  factories.set(rootId, factory);
}

/** The factory for `rootId` under the rules above, or null. */
export function factoryFor(rootId: string): RootContextFactory | null {
  if (factories.has(rootId)) return factories.get(rootId);
  if (factories.has("")) return factories.get("");
  if (factoryIds.length == 1) return factories.get(unchecked(factoryIds[0]));
  return null;
}

/** The registered root ids, quoted, for error messages. */
export function registeredRootIds(): string {
  if (factoryIds.length == 0) return "none";
  let out = "";
  for (let i = 0; i < factoryIds.length; i++) out += (i > 0 ? ", " : "") + '"' + unchecked(factoryIds[i]) + '"';
  return out;
}

export const roots = new Map<u32, RootContext>();
export const streams = new Map<u32, HttpContext>();

/** Callout kinds, for routing the answers. */
export const enum CalloutKind {
  Http = 0,
  GrpcCall = 1,
  GrpcStream = 2,
}

class Callout {
  constructor(public contextId: u32, public kind: CalloutKind) {}
}

const callouts = new Map<u32, Callout>();

/** Remembers that `contextId` dispatched the callout `token`. */
export function trackCallout(token: u32, contextId: u32, kind: CalloutKind): void {
  callouts.set(token, new Callout(contextId, kind));
}

/** The context id that dispatched `token` (0 when unknown); `finished` forgets the token. */
export function calloutOwner(token: u32, finished: bool): u32 {
  if (!callouts.has(token)) return 0;
  const owner = callouts.get(token).contextId;
  if (finished) callouts.delete(token);
  return owner;
}

/** The kind of the outstanding callout `token`; `Http` for an unknown token. */
export function calloutKind(token: u32): CalloutKind {
  return callouts.has(token) ? callouts.get(token).kind : CalloutKind.Http;
}

/** Forgets the callouts of a deleted context: their answers are dropped, as in the Rust SDK. */
export function forgetCallouts(contextId: u32): void {
  if (callouts.size == 0) return;
  const tokens = callouts.keys();
  for (let i = 0; i < tokens.length; i++) {
    const token = unchecked(tokens[i]);
    if (callouts.get(token).contextId == contextId) callouts.delete(token);
  }
}
