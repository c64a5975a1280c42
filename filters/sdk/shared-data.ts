/**
 * Shared data (reference §3.10, §6.1): a key-value store shared by every VM with the same vm_id
 * (across plugins, workers and, with a replicated backend, gateway nodes). Every successful write
 * gets a new non-zero CAS; pass the CAS you read to make a write conditional.
 */
import { proxy_get_shared_data, proxy_set_shared_data } from "./imports";
import { RET_LEN, RET_PTR, RET_U32, bufferLen, bufferPtr, clearReturn, discardReturned, stage, staged0, staged0Len, takeBytes } from "./memory";
import { Status } from "./types";

/** What `getSharedData` found: `value` is null and `cas` 0 when the key does not exist. */
export class SharedData {
  constructor(public status: Status, public value: ArrayBuffer | null, public cas: u32) {}
  get found(): bool {
    return this.status == Status.Ok;
  }
}

/** Reads `key` and the CAS of the write that produced it. */
export function getSharedData(key: string): SharedData {
  stage(key);
  clearReturn();
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_get_shared_data(staged0, staged0Len, RET_PTR, RET_LEN, RET_U32);
  if (status != Status.Ok) {
    discardReturned();
    return new SharedData(status, null, 0);
  }
  const cas = load<u32>(RET_U32);
  return new SharedData(status, takeBytes(), cas);
}

/**
 * Writes `key`. `cas` 0 writes unconditionally; otherwise the write happens only if the key still
 * has that CAS, else `CasMismatch` (read again and retry). There is no delete: write an empty
 * value.
 */
export function setSharedData(key: string, value: ArrayBuffer | null, cas: u32 = 0): Status {
  stage(key);
  return <Status>proxy_set_shared_data(staged0, staged0Len, bufferPtr(value), bufferLen(value), cas);
}

/** `getSharedData` decoded as UTF-8: the value, or null when the key does not exist. */
export function getSharedDataString(key: string): string | null {
  const data = getSharedData(key);
  return data.value === null ? null : String.UTF8.decode(data.value!);
}
