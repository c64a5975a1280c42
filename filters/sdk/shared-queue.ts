/**
 * Shared queues (reference §3.11): named FIFO queues per vm_id. The root that registered a queue
 * gets `RootContext.onQueueReady(queueId)` after each enqueue (asynchronously, never inside the
 * enqueuing call). Queue ids are never 0.
 */
import {
  proxy_dequeue_shared_queue, proxy_enqueue_shared_queue, proxy_register_shared_queue, proxy_resolve_shared_queue,
} from "./imports";
import {
  RET_LEN, RET_PTR, RET_U32, bufferLen, bufferPtr, clearReturn, discardReturned, stage, staged0, staged0Len, staged1, staged1Len, takeBytes,
} from "./memory";
import { Result, Status } from "./types";

/** Creates (or re-opens) the queue `name` of this VM id and makes the calling root its listener. */
export function registerSharedQueue(name: string): Result<u32> {
  stage(name);
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_register_shared_queue(staged0, staged0Len, RET_U32);
  return new Result<u32>(status, load<u32>(RET_U32));
}

/** Finds an existing queue; `vmId` "" means this VM's. `NotFound` when nobody registered it. */
export function resolveSharedQueue(vmId: string, name: string): Result<u32> {
  stage(vmId, name);
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_resolve_shared_queue(staged0, staged0Len, staged1, staged1Len, RET_U32);
  return new Result<u32>(status, load<u32>(RET_U32));
}

/** Appends an item; `NotFound` for an unknown queue id. */
export function enqueueSharedQueue(queueId: u32, data: ArrayBuffer | null): Status {
  return <Status>proxy_enqueue_shared_queue(queueId, bufferPtr(data), bufferLen(data));
}

/**
 * Pops the front item: status `Ok` with the item, `Empty` when the queue is empty, `NotFound` for
 * an unknown queue id (value null in both cases).
 */
export function dequeueSharedQueue(queueId: u32): Result<ArrayBuffer | null> {
  clearReturn();
  const status = <Status>proxy_dequeue_shared_queue(queueId, RET_PTR, RET_LEN);
  if (status != Status.Ok) {
    discardReturned();
    return new Result<ArrayBuffer | null>(status, null);
  }
  return new Result<ArrayBuffer | null>(status, takeBytes());
}
