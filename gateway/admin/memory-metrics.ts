/**
 * The memory-limit metrics: shared data per vm_id against its quota (bytes, entries, evictions,
 * refusals), shared queues per vm_id (bytes held, items dropped), the Redis backend's link, and VM recycling by plugin. The store and the VM pool keep the counts; these read them
 * on each scrape, so nothing is counted on the request path.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricsSources } from './metrics.js';

const BY_PLUGINS = 'by the plugins the VM hosts (comma-separated when plugins share a VM)';

export function memoryMetrics(sources: MetricsSources, registers: Registry[]): void {
  const shared = (): ReturnType<NonNullable<MetricsSources['sharedData']>> => sources.sharedData?.() ?? [];
  const queues = (): ReturnType<NonNullable<MetricsSources['sharedQueues']>> => sources.sharedQueues?.() ?? [];
  const recycles = (): ReturnType<NonNullable<MetricsSources['recycles']>> => sources.recycles?.() ?? [];
  new Gauge({
    name: 'edge_gateway_shared_data_bytes', labelNames: ['vm_id'], registers,
    help: 'Shared data held per vm_id as counted against sharedState.maxBytesPerVm (keys + values + 384 bytes per entry)',
    collect() {
      this.reset();
      for (const s of shared()) if (s.entries > 0) this.set({ vm_id: s.vmId }, s.bytes);
    },
  });
  new Gauge({
    name: 'edge_gateway_shared_data_entries', help: 'Shared-data keys held per vm_id (deleted keys, held with an empty value, included)',
    labelNames: ['vm_id'], registers,
    collect() {
      this.reset();
      for (const s of shared()) if (s.entries > 0) this.set({ vm_id: s.vmId }, s.entries);
    },
  });
  new Counter({
    name: 'edge_gateway_shared_data_evictions_total', labelNames: ['vm_id'], registers,
    help: 'Shared-data entries evicted (least recently used first) to make room for a write over the vm_id\'s quota',
    collect() {
      this.reset();
      for (const s of shared()) if (s.evictions > 0) this.inc({ vm_id: s.vmId }, s.evictions);
    },
  });
  new Counter({
    name: 'edge_gateway_shared_data_refusals_total', labelNames: ['vm_id', 'reason'], registers,
    help: 'Shared-data writes refused with BAD_ARGUMENT, by vm_id and reason (key_size, value_size, quota: larger than the whole quota)',
    collect() {
      this.reset();
      for (const s of shared()) for (const [reason, n] of Object.entries(s.refusals)) if (n > 0) this.inc({ vm_id: s.vmId, reason }, n);
    },
  });
  new Gauge({
    name: 'edge_gateway_shared_queue_bytes', labelNames: ['vm_id'], registers,
    help: 'Bytes held by the shared queues of a vm_id, as counted against sharedState.maxBytesPerVm (items + 64 bytes each)',
    collect() {
      this.reset();
      for (const q of queues()) if (q.items > 0) this.set({ vm_id: q.vmId }, q.bytes);
    },
  });
  new Counter({
    name: 'edge_gateway_shared_queue_dropped_total', labelNames: ['vm_id'], registers,
    help: 'Shared-queue items dropped because the vm_id\'s queues were full: the oldest of the queue enqueued to, or the new item when that queue could not make room',
    collect() {
      this.reset();
      for (const q of queues()) if (q.dropped > 0) this.inc({ vm_id: q.vmId }, q.dropped);
    },
  });
  const link = (): ReturnType<NonNullable<MetricsSources['replication']>> => sources.replication?.() ?? null;
  new Gauge({
    name: 'edge_gateway_shared_state_connected', registers,
    help: 'Redis backend: 1 while connected to Redis (writes replicate), 0 while it is away (this node serves its own copy); absent with the memory backend',
    collect() {
      this.reset();
      const l = link();
      if (l !== null) this.set(l.connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'edge_gateway_shared_state_waiting_writes', registers,
    help: 'Redis backend: shared-data writes waiting for Redis (sent or to be sent when it is back)',
    collect() {
      this.reset();
      const l = link();
      if (l !== null) this.set(l.waiting);
    },
  });
  new Counter({
    name: 'edge_gateway_shared_state_dropped_writes_total', registers,
    help: 'Redis backend: writes dropped, oldest first, because too many waited for Redis (they stay in this node\'s copy only), or refused by Redis for a foreign value',
    collect() {
      this.reset();
      const l = link();
      if (l !== null && l.dropped > 0) this.inc(l.dropped);
    },
  });
  new Counter({
    name: 'edge_gateway_wasm_vm_recycles_total', labelNames: ['plugin'], registers,
    help: `VMs replaced by a fresh one because their memory passed limits.recycleMemoryMb, ${BY_PLUGINS}`,
    collect() {
      this.reset();
      for (const r of recycles()) if (r.recycles > 0) this.inc({ plugin: r.plugins }, r.recycles);
    },
  });
  new Counter({
    name: 'edge_gateway_wasm_vm_recycle_failures_total', labelNames: ['plugin'], registers,
    help: `Recycles abandoned because the fresh VM failed to start or was already over the threshold (the old VM kept serving), ${BY_PLUGINS}`,
    collect() {
      this.reset();
      for (const r of recycles()) if (r.failures > 0) this.inc({ plugin: r.plugins }, r.failures);
    },
  });
}
