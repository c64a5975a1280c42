/**
 * The life of a plugin's root context in its VM (reference §4.3, §1.4): start-up
 * (on_context_create → on_vm_start → validate_configuration → on_configure), then on_done, and
 * on_delete either at once or, when on_done returned false, after the guest calls proxy_done
 * (cpp-host keeps such roots in pending_done_). WasmVm's createRoot/shutdownRoot/rootDone are the
 * public entry points; these functions do the work on the VM they are given.
 */
import { CALL_FAILED, type RootContext } from './context.js';
import { Status } from './enums.js';
import { Deferred } from './phase.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { WasmVm } from './vm.js';

/**
 * Registers `root` and runs its start-up callbacks. Throws a GatewayError naming the plugin, its
 * root id and the module when one of them traps or returns false; the root is then unregistered.
 */
export function startRoot(vm: WasmVm, root: RootContext): RootContext {
  vm.contexts.add(root);
  root.alive = true;
  // Root start-up runs under startCpuMs (budget.ts), as on_vm_start may parse a large configuration.
  vm.budget.startup = true;
  try {
    runStartup(vm, root);
  } finally {
    vm.budget.startup = false;
  }
  return root;
}

function runStartup(vm: WasmVm, root: RootContext): void {
  const { onContextCreate, onVmStart, onValidateConfiguration, onConfigure } = vm.callbacks;
  const configLength = root.plugin.configuration.length;
  if (onContextCreate !== null) {
    // on_context_create returns nothing: only a trap fails it.
    const created = vm.call(root, onContextCreate, root.id, 0) === CALL_FAILED ? CALL_FAILED : 1;
    step(vm, root, created, 'GW_ERR_ABI_START', 'proxy_on_context_create');
  }
  if (onVmStart !== null) step(vm, root, vm.call(root, onVmStart, root.id, vm.vmConfiguration.length), 'GW_ERR_ABI_VM_START', 'proxy_on_vm_start');
  root.configuring = true;
  try {
    if (onValidateConfiguration !== null) {
      step(vm, root, vm.call(root, onValidateConfiguration, root.id, configLength), 'GW_ERR_ABI_CONFIGURE', 'proxy_validate_configuration');
    }
    if (onConfigure !== null) step(vm, root, vm.call(root, onConfigure, root.id, configLength), 'GW_ERR_ABI_CONFIGURE', 'proxy_on_configure');
  } finally {
    root.configuring = false;
  }
}

/** One start-up callback's result: a trap (CALL_FAILED) or false (0) ends the start-up with an error. */
function step(vm: WasmVm, root: RootContext, result: number, code: ErrorCode, what: string): void {
  // NB: a guest returning -1 (0xffffffff, true) returns CALL_FAILED's value: only a failed VM trapped.
  const f = result === CALL_FAILED ? vm.failure : null;
  if (f === null && result !== 0) return;
  vm.contexts.delete(root);
  root.alive = false;
  const plugin = root.plugin;
  const at = `plugin ${plugin.name} (root id "${plugin.rootId}", module ${vm.name}): ${what}`;
  if (f !== null) {
    throw new GatewayError(f.code, `${at} failed: ${f.message}` + (f.guestMessage ? ` (guest said: ${f.guestMessage})` : ''));
  }
  throw new GatewayError(code, `${at} returned false` + (vm.lastCritical ? ` (guest said: ${vm.lastCritical})` : ''));
}

/** Ends the root: on_done, then on_delete now, or once the guest calls proxy_done() if on_done said false. */
export function shutdownRoot(vm: WasmVm, root: RootContext): void {
  if (!root.alive || root.pendingDone) return;
  // The tick timer keeps running while the root waits for proxy_done (cpp-host moves the root to
  // pending_done_ and still ticks it): on_tick is where guests poll and then call proxy_done.
  // deleteRoot stops it.
  const onDone = vm.callbacks.onDone;
  const done = onDone === null || vm.failure !== null ? 1 : vm.call(root, onDone, root.id);
  if (done === 0) root.pendingDone = true;
  else deleteRoot(vm, root);
}

/** `proxy_done()` from the guest: the root waiting for it is deleted after the call returns. */
export function rootDone(vm: WasmVm, root: RootContext): number {
  if (!root.pendingDone) return Status.NOT_FOUND;
  vm.defer(Deferred.DELETE_ROOT, root);
  return Status.OK;
}

/** on_delete, then the root is gone: its timer, its id, its outstanding callouts and its queue listeners. */
export function deleteRoot(vm: WasmVm, root: RootContext): void {
  if (!root.alive) return;
  const onDelete = vm.callbacks.onDelete;
  if (onDelete !== null && vm.failure === null) vm.call(root, onDelete, root.id);
  // A timer set after on_done (to poll before proxy_done) must not outlive the root.
  root.tick?.cancel();
  root.tick = null;
  root.alive = false;
  root.pendingDone = false;
  vm.contexts.delete(root);
  for (const [token, call] of vm.calls) if (call.root === root) vm.calls.delete(token);
  for (const unsubscribe of root.queues.values()) unsubscribe();
  root.queues.clear();
}
