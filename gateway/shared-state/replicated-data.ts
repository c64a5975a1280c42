/**
 * Shared data replicated from an authority, behind the synchronous ABI (design invariant 5): Redis
 * for the nodes of a fleet (redis-link.ts), the primary process for the workers of one box
 * (hub.ts, ipc-link.ts). Written for Redis below; the primary plays Redis's part the same way.
 *
 * Consistency model:
 * - **Reads** answer from this node's copy (a MemorySharedData, with its quota and LRU eviction),
 *   never from Redis: a read costs what it costs with the memory backend.
 * - **Writes** apply to the node's copy at once, with the memory backend's exact CAS (within one
 *   node, CAS is exact as before), and go to Redis in the background (redis-link.ts): a script
 *   gives each accepted write the vm_id's next version and publishes it to every node. While a
 *   node's last writes are in flight, its next ones gather, one per key (its last value; `flush`).
 * - **Across nodes, the first write to reach Redis wins.** A write with cas 0 always goes through
 *   (last writer wins, in Redis's order). A write with a CAS goes through only when no other node
 *   wrote the key since the version this node had when its guest read it; otherwise Redis refuses
 *   it and answers the winner, which replaces the write in this node's copy. The losing guest got
 *   OK (the ABI answers at once) and sees the winner's value, with a new CAS, on its next read, so
 *   a CAS loop converges (its next CAS write fails locally and it reads again).
 * - **Other nodes' writes** arrive on the update channel and apply when their version is newer
 *   than what the node holds. While this node has writes of the key in flight, a newer version
 *   waits until they are answered, then the highest version wins: every node ends with the value
 *   of the key's last version in Redis.
 * - **Start and reconnect**: a vm_id is loaded from Redis when this node first uses it and again
 *   each time the connection is ready (after a restart of Redis or of the network). Until then the
 *   node serves its own copy; writes made meanwhile wait in the link's bounded queue and are sent
 *   in order when Redis is back (redis-link.ts says what is dropped when it is full).
 * - **What is lost**: a write dropped from a full queue stays in the node's copy only, until a
 *   newer version replaces it. Redis keeps every key written (no quota there: give Redis a
 *   maxmemory); a node's copy keeps its quota, so a key it evicted reads as missing on that node
 *   until it is written again.
 * Keys are byte-exact latin1, values binary (redis-layout.ts). Anything under the prefix that is
 * not ours (a foreign value, a truncated message) is logged and ignored.
 */
import { Status } from '../abi/enums.js';
import type { SharedDataRefusal, SharedDataStore, SharedEntry } from '../abi/ports.js';
import { MemorySharedData, type SharedDataStats } from './memory.js';
import { parseVersion, type Update } from './redis-layout.js';
import type { ReplicaLink, WriteAnswer } from './replica.js';

/** Replication state of one key on this node. */
interface KeySync {
  /** Version in Redis of the value this node holds (0: none known). */
  version: number;
  /** This node's writes of the key that Redis has not answered (the queued one included). */
  pending: number;
  /** A write not sent yet: later writes of the key fold into it until it goes (`flush`). */
  queued: { value: Uint8Array; base: string } | null;
  /** The newest other version seen while writes were pending: applied once they are answered. */
  newer: { version: number; value: Uint8Array } | null;
}

/** One vm_id this node uses. */
interface VmSync {
  readonly keys: Map<string, KeySync>;
}

export interface RedisDataOptions {
  readonly maxBytesPerVm: number;
  /** Something under the prefix was not ours, or a load failed: logged by the caller. */
  readonly warn: (message: string) => void;
}

export class ReplicatedSharedData implements SharedDataStore {
  readonly local: MemorySharedData;
  private readonly vms = new Map<string, VmSync>();
  /** Keys with a write queued for the next flush. */
  private unsent: Array<[string, VmSync, string, KeySync]> = [];
  /** Writes of the last flush not answered yet: the next flush waits for them (see `flush`). */
  private inFlight = 0;

  constructor(private readonly link: ReplicaLink, private readonly options: RedisDataOptions) {
    this.local = new MemorySharedData({ maxBytesPerVm: options.maxBytesPerVm });
  }

  get(vmId: string, key: string): SharedEntry | undefined {
    this.use(vmId);
    return this.local.get(vmId, key);
  }

  set(vmId: string, key: string, value: Uint8Array, cas: number): typeof Status.OK | typeof Status.CAS_MISMATCH | typeof Status.BAD_ARGUMENT {
    const vm = this.use(vmId);
    const status = this.local.set(vmId, key, value, cas);
    if (status !== Status.OK) return status;
    const sync = syncOf(vm, key);
    // The store's own copy (a later write replaces it, never changes it): no second copy.
    const stored = this.local.peek(vmId, key)!.value;
    if (sync.queued !== null) {
      // Folded into the write not sent yet: the other nodes only ever see its last value. Its
      // base stays the first's (the later ones followed this node's own write), and it goes
      // unconditionally when any of them did.
      sync.queued.value = stored;
      if (cas === 0) sync.queued.base = '';
      return Status.OK;
    }
    sync.queued = { value: stored, base: cas === 0 ? '' : String(sync.version) };
    sync.pending++;
    this.unsent.push([vmId, vm, key, sync]);
    // Nothing in flight: it goes now, before the response that follows it, so a client's next
    // request to another node meets it there. While the authority is away nothing answers: the
    // writes go on to the link, whose queue is bounded (redis-link.ts), rather than gather here.
    if (this.inFlight === 0 || !this.link.connected) this.flush();
    return Status.OK;
  }

  /**
   * Sends the writes queued since the last flush, one per key (its last value), once the last
   * flush is answered: at most one flush in flight, as Nagle's algorithm has one segment. At a
   * low rate each write goes at once, so requests that alternate between nodes see each other's
   * writes (the tests of exactness); under load the writes of a round trip to the authority fold
   * into one. A rate limit writes its entry on every request: with one write a request the Redis
   * backend cost 1.8× the memory backend's CPU per request, with one per turn of the event loop
   * 1.23×. NB: a timer (1 ms) instead let requests alternating between nodes pass the rate limit.
   */
  private flush(): void {
    const unsent = this.unsent;
    this.unsent = [];
    this.inFlight += unsent.length;
    for (const [vmId, vm, key, sync] of unsent) {
      const q = sync.queued!;
      sync.queued = null;
      void this.link.write(vmId, key, q.value, q.base).then((answer) => {
        if (--this.inFlight === 0 && this.unsent.length > 0) this.flush();
        this.answered(vmId, vm, key, sync, answer);
      });
    }
  }

  refused(vmId: string, reason: SharedDataRefusal): void {
    this.local.refused(vmId, reason);
  }

  /** The vm_id's last VM is gone: its copy is freed here; Redis keeps it for the other nodes. */
  release(vmId: string): void {
    this.vms.delete(vmId);
    this.local.release(vmId);
  }

  stats(): SharedDataStats[] {
    return this.local.stats();
  }

  /**
   * Connected (again): every vm_id this node uses is loaded again, and Redis is the authority
   * again. Versions known from before are forgotten: a Redis that restarted empty counts from 1
   * again, and its versions must win over the old ones.
   */
  reload(): void {
    for (const [vmId, vm] of this.vms) {
      // A newer version held back for pending writes came from the old Redis too.
      for (const sync of vm.keys.values()) {
        sync.version = 0;
        sync.newer = null;
      }
      void this.load(vmId, vm);
    }
  }

  /** A write published by some node. */
  received(update: Update): void {
    if (update.node === this.link.node) return; // its answer says what became of it (a link may not filter)
    const vm = this.vms.get(update.vmId);
    if (vm === undefined) return; // loaded when this node first uses the vm_id
    this.offer(update.vmId, syncOf(vm, update.key), update.key, update.version, update.value);
  }

  clear(): void {
    this.vms.clear();
    this.local.clear();
  }

  private use(vmId: string): VmSync {
    let vm = this.vms.get(vmId);
    if (vm === undefined) {
      this.vms.set(vmId, (vm = { keys: new Map() }));
      if (this.link.connected) void this.load(vmId, vm);
    }
    return vm;
  }

  private async load(vmId: string, vm: VmSync): Promise<void> {
    let entries: Map<string, [string, Uint8Array]>;
    try {
      entries = await this.link.load(vmId);
    } catch (err) {
      // The next ready loads it again.
      this.options.warn(`loading vm_id ${JSON.stringify(vmId)} failed: ${(err as Error).message}`);
      return;
    }
    if (this.vms.get(vmId) !== vm) return; // released meanwhile
    for (const [key, [versionText, value]] of entries) {
      const stored = parseVersion(versionText);
      if (stored === null) {
        this.options.warn(`vm_id ${JSON.stringify(vmId)}: key ${JSON.stringify(key)} has no version ("${versionText.slice(0, 40)}"): ignored`);
        continue;
      }
      this.offer(vmId, syncOf(vm, key), key, stored.version, new Uint8Array(value));
    }
  }

  /** Another version of the key: applied when newer, or kept until this node's writes are answered. */
  private offer(vmId: string, sync: KeySync, key: string, version: number, value: Uint8Array): void {
    if (sync.pending > 0) {
      if (version > (sync.newer?.version ?? 0)) sync.newer = { version, value };
      return;
    }
    if (version <= sync.version) return;
    this.apply(vmId, sync, key, version, value);
  }

  private answered(vmId: string, vm: VmSync, key: string, sync: KeySync, answer: WriteAnswer | null): void {
    if (this.vms.get(vmId) !== vm) return;
    sync.pending--;
    if (answer !== null) {
      if (answer.accepted) sync.version = Math.max(sync.version, answer.version);
      else if (answer.version > (sync.newer?.version ?? 0)) sync.newer = { version: answer.version, value: answer.value };
    }
    if (sync.pending > 0) return;
    const newer = sync.newer;
    sync.newer = null;
    if (newer !== null && newer.version > sync.version) this.apply(vmId, sync, key, newer.version, newer.value);
    // A key this node no longer holds (evicted) needs no state once nothing is in flight.
    else if (this.local.peek(vmId, key) === undefined) vm.keys.delete(key);
  }

  private apply(vmId: string, sync: KeySync, key: string, version: number, value: Uint8Array): void {
    sync.version = version;
    this.local.set(vmId, key, value, 0);
  }
}

function syncOf(vm: VmSync, key: string): KeySync {
  let sync = vm.keys.get(key);
  if (sync === undefined) vm.keys.set(key, (sync = { version: 0, pending: 0, queued: null, newer: null }));
  return sync;
}
