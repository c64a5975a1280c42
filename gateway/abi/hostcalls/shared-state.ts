/**
 * Shared data and shared queues (reference §3.10, §3.11, §6.1). Both are scoped by vm_id and live
 * behind ports, so the same calls reach process memory or Redis. Queue notifications go to the
 * registering root on a later turn, never re-entering the guest that enqueued. Shared-data keys and
 * values are bounded (limits.ts): a longer key is never found, and a write over a limit, or larger
 * than the vm_id's whole quota, is BAD_ARGUMENT (the status cpp-host gives an argument it refuses).
 */
import type { RootContext } from '../context.js';
import { Status } from '../enums.js';
import { MAX_SHARED_DATA_KEY_BYTES, MAX_SHARED_DATA_VALUE_BYTES } from '../limits.js';
import { returnBytes } from '../returns.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

export function sharedStateHostcalls(vm: WasmVm): HostcallTable {
  const onQueueReady = (root: RootContext) => (queueId: number) => {
    vm.scheduler.defer(() => vm.callRoot(root, vm.callbacks.onQueueReady, root.id, queueId));
  };

  return {
    proxy_get_shared_data(keyPtr: number, keyLen: number, ptrPtr: number, sizePtr: number, casPtr: number): number {
      const store = vm.ports.sharedData;
      if (store === undefined) return Status.UNIMPLEMENTED;
      // Nothing can be stored under a longer key: not found, without reading it.
      if (keyLen >>> 0 > MAX_SHARED_DATA_KEY_BYTES) return Status.NOT_FOUND;
      const key = vm.mem.latin1(keyPtr, keyLen);
      const entry = store.get(vm.vmId, key);
      if (entry === undefined) return Status.NOT_FOUND; // and nothing is written
      vm.mem.check(casPtr, 4);
      returnBytes(vm, ptrPtr, sizePtr, entry.value);
      vm.mem.setU32(casPtr, entry.cas);
      return Status.OK;
    },

    /** `cas` is a value, not a pointer (spec erratum A.6); 0 writes unconditionally. */
    proxy_set_shared_data(keyPtr: number, keyLen: number, valPtr: number, valLen: number, cas: number): number {
      const store = vm.ports.sharedData;
      if (store === undefined) return Status.UNIMPLEMENTED;
      // Size limits (limits.ts) are checked before guest memory is read or copied.
      const refusal = keyLen >>> 0 > MAX_SHARED_DATA_KEY_BYTES ? 'key_size' : valLen >>> 0 > MAX_SHARED_DATA_VALUE_BYTES ? 'value_size' : null;
      if (refusal !== null) {
        store.refused?.(vm.vmId, refusal);
        return Status.BAD_ARGUMENT;
      }
      const key = vm.mem.latin1(keyPtr, keyLen);
      const value = vm.mem.copy(valPtr, valLen);
      return store.set(vm.vmId, key, value, cas >>> 0);
    },

    proxy_register_shared_queue(namePtr: number, nameLen: number, idPtr: number): number {
      const name = vm.mem.utf8(namePtr, nameLen);
      vm.mem.check(idPtr, 4);
      const store = vm.ports.sharedQueues;
      const root = vm.target()?.root;
      if (store === undefined) return Status.UNIMPLEMENTED;
      if (root === undefined) return Status.INTERNAL_FAILURE;
      const registration = store.register(vm.vmId, name, onQueueReady(root));
      root.queues.set(registration.id, registration.unsubscribe);
      vm.mem.setU32(idPtr, registration.id);
      return Status.OK;
    },

    proxy_resolve_shared_queue(vmIdPtr: number, vmIdLen: number, namePtr: number, nameLen: number, idPtr: number): number {
      const vmId = vm.mem.utf8(vmIdPtr, vmIdLen);
      const name = vm.mem.utf8(namePtr, nameLen);
      vm.mem.check(idPtr, 4);
      const store = vm.ports.sharedQueues;
      if (store === undefined) return Status.UNIMPLEMENTED;
      const id = store.resolve(vmId === '' ? vm.vmId : vmId, name);
      if (id === undefined) return Status.NOT_FOUND;
      vm.mem.setU32(idPtr, id);
      return Status.OK;
    },

    proxy_enqueue_shared_queue(queueId: number, dataPtr: number, dataLen: number): number {
      const data = vm.mem.copy(dataPtr, dataLen);
      const store = vm.ports.sharedQueues;
      if (store === undefined) return Status.UNIMPLEMENTED;
      return store.enqueue(queueId >>> 0, data);
    },

    proxy_dequeue_shared_queue(queueId: number, ptrPtr: number, sizePtr: number): number {
      vm.mem.check(ptrPtr, 4);
      vm.mem.check(sizePtr, 4);
      const store = vm.ports.sharedQueues;
      if (store === undefined) return Status.UNIMPLEMENTED;
      const item = store.dequeue(queueId >>> 0);
      if (typeof item === 'number') return item;
      returnBytes(vm, ptrPtr, sizePtr, item);
      return Status.OK;
    },
  };
}
