/**
 * Real (not mocked) host-side pieces for ABI tests: a logger that keeps what it is told, a stream
 * host backed by real HeaderMaps and BodyBuffers that records the actions the VM applies, an
 * in-memory metrics sink, and `startVm` wiring them to a WAT guest.
 */
import { BodyBuffer } from '../../gateway/abi/body-buffer.js';
import { Direction, LogLevel, Status, type BufferType, type StreamType } from '../../gateway/abi/enums.js';
import { HeaderMap } from '../../gateway/abi/header-map.js';
import type { StreamMap } from '../../gateway/abi/map-types.js';
import type { AbiLogger, LocalResponse, MetricCell, MetricsSink, PluginOrigin, StreamHost } from '../../gateway/abi/ports.js';
import { WasmVm, type VmOptions, type VmPorts } from '../../gateway/abi/vm.js';
import { MemorySharedData, MemorySharedQueues } from '../../gateway/shared-state/memory.js';
import { compileWat, watToBytes } from './wat.js';
import { instrumentModule } from '../../gateway/modules/wasm/instrument.js';
import { DEFAULT_VM_LIMITS } from '../../gateway/abi/limits.js';

export interface LogLine {
  level: number;
  message: string;
  origin: PluginOrigin | null;
}

export class RecordingLogger implements AbiLogger {
  readonly lines: LogLine[] = [];
  constructor(public threshold: LogLevel = LogLevel.TRACE) {}
  level(): LogLevel {
    return this.threshold;
  }
  log(level: LogLevel, message: string, origin: PluginOrigin | null): void {
    this.lines.push({ level, message, origin });
  }
  messages(): string[] {
    return this.lines.map((l) => l.message);
  }
}

export class MemoryMetrics implements MetricsSink {
  readonly cells = new Map<string, { type: number; value: number; samples: number[] }>();
  define(type: number, name: string): MetricCell {
    let cell = this.cells.get(name);
    if (cell === undefined) this.cells.set(name, (cell = { type, value: 0, samples: [] }));
    const c = cell;
    return {
      add: (d) => { c.value += d; },
      set: (v) => { c.value = v; },
      observe: (v) => { c.samples.push(v); },
      value: () => c.value,
    };
  }
}

/**
 * A stream as the data plane would present it, recording every action applied to it. Like the
 * flow it is handed resolved stream maps (abi/map-types.ts) and answers by direction and part,
 * never by the guest's map type number.
 */
export class TestStream implements StreamHost {
  /** Request headers, request trailers, response headers, response trailers (see `slot`). */
  maps: (HeaderMap | null)[] = [new HeaderMap(), null, null, null];
  bodies: (BodyBuffer | null)[] = [null, null, null, null];
  /** Per entry of `maps`: whether a write may reach it now. */
  readonly writable = [true, true, true, true];
  readonly properties = new Map<string, Uint8Array>();
  readonly actions: string[] = [];
  localResponse: LocalResponse | null = null;

  constructor(requestHeaders: Array<[string, string]> = []) {
    this.maps[0] = HeaderMap.from(requestHeaders);
  }
  /** Where `map` lives in `maps`: [request, response] × [headers, trailers]. */
  static slot(map: StreamMap): number {
    return (map.direction === Direction.REQUEST ? 0 : 2) + (map.trailers ? 1 : 0);
  }
  headerMap(map: StreamMap, write: boolean): HeaderMap | null {
    const slot = TestStream.slot(map);
    if (write && !this.writable[slot]) return null;
    return this.maps[slot];
  }
  body(type: BufferType): BodyBuffer | null {
    return this.bodies[type] ?? null;
  }
  property(path: readonly string[]): Uint8Array | undefined {
    return this.properties.get(path.join('.'));
  }
  setProperty(path: readonly string[], value: Uint8Array): Status {
    this.properties.set(path.join('.'), value);
    return Status.OK;
  }
  continueStream(type: StreamType): void {
    this.actions.push(`continue:${type}`);
  }
  closeStream(type: StreamType): void {
    this.actions.push(`close:${type}`);
  }
  sendLocalResponse(response: LocalResponse): void {
    this.actions.push(`local:${response.status}`);
    this.localResponse = response;
  }
}

export interface TestVm {
  vm: WasmVm;
  logger: RecordingLogger;
  metrics: MemoryMetrics;
  sharedData: MemorySharedData;
  sharedQueues: MemorySharedQueues;
}

/** Starts a VM from WAT with real in-memory ports; `ports` overrides or adds any of them. */
export function startVm(wat: string, options: Partial<Omit<VmOptions, 'ports'>> & { ports?: Partial<VmPorts>; sandboxed?: boolean; features?: Record<string, boolean> } = {}): TestVm {
  const logger = new RecordingLogger();
  const metrics = new MemoryMetrics();
  const sharedData = new MemorySharedData();
  const sharedQueues = new MemorySharedQueues();
  // sandboxed: the module goes through the instrumenter as the module store does it.
  const prepared = options.sandboxed ? instrumentModule(watToBytes(wat, 'guest.wat', options.features), { memoryMb: options.limits?.memoryMb ?? DEFAULT_VM_LIMITS.memoryMb }) : null;
  const module = prepared ? new WebAssembly.Module(prepared.bytes as Uint8Array<ArrayBuffer>) : compileWat(wat);
  const vm = new WasmVm(module, {
    sandbox: prepared?.plan,
    limits: options.limits,
    name: options.name ?? 'test.wasm',
    vmId: options.vmId,
    vmConfiguration: options.vmConfiguration,
    environment: options.environment,
    imports: options.imports,
    allowedHostcalls: options.allowedHostcalls,
    ports: { logger, metrics, sharedData, sharedQueues, ...options.ports },
  });
  return { vm, logger, metrics, sharedData, sharedQueues };
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Polls `cond` on later event-loop turns (bounded), for deferred deliveries. */
export async function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
