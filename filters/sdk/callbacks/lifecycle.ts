/**
 * The exports every filter needs: the ABI 0.2.1 marker, the allocator, and the contexts' life
 * (create, start, configure, done, delete). A filter re-exports this file and the callback files
 * of what it handles (filters/README.md, "Callbacks"); `../exports` re-exports them all.
 */
// Importing the abort handler keeps it in every module, so `--use abort=filters/sdk/abort/proxyAbort` resolves.
import { proxyAbort } from "../abort";
import { proxy_get_property } from "../imports";
import { RET_LEN, RET_PTR, clearReturn, discardReturned, stage, staged0, staged0Len, takeString } from "../memory";
import { factoryFor, forgetCallouts, registeredRootIds, roots, streams } from "../registry";
import { Status } from "../types";
import { anyOf, rootOf } from "./dispatch";

export { proxy_on_memory_allocate } from "../memory";

/** ABI version marker (reference §1.1); never called. */
export function proxy_abi_version_0_2_1(): void {}

/** The plugin's root id: the property `plugin_root_id` ("" when the host has none). */
function pluginRootId(): string {
  stage("plugin_root_id");
  clearReturn();
  if (proxy_get_property(staged0, staged0Len, RET_PTR, RET_LEN) != Status.Ok) {
    discardReturned();
    return "";
  }
  return takeString();
}

export function proxy_on_context_create(contextId: u32, parentId: u32): void {
  if (parentId == 0) {
    const rootId = pluginRootId();
    const factory = factoryFor(rootId);
    if (factory === null) {
      abort("no root context registered for root id \"" + rootId + "\" (registered: " + registeredRootIds() + ")");
      return;
    }
    const root = factory(contextId);
    root.rootId = rootId;
    roots.set(contextId, root);
  } else {
    const root = rootOf(parentId, "proxy_on_context_create");
    streams.set(contextId, root.createHttpContext(contextId));
  }
}

export function proxy_on_vm_start(rootId: u32, vmConfigurationSize: u32): bool {
  return rootOf(rootId, "proxy_on_vm_start").onVmStart(<usize>vmConfigurationSize);
}

export function proxy_on_configure(rootId: u32, pluginConfigurationSize: u32): bool {
  return rootOf(rootId, "proxy_on_configure").onConfigure(<usize>pluginConfigurationSize);
}

export function proxy_on_done(contextId: u32): bool {
  return anyOf(contextId, "proxy_on_done").onDone();
}

export function proxy_on_delete(contextId: u32): void {
  const ctx = anyOf(contextId, "proxy_on_delete");
  ctx.onDelete();
  if (!streams.delete(contextId)) roots.delete(contextId);
  forgetCallouts(contextId);
}
