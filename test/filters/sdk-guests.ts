/**
 * The SDK-built modules the filter tests load: filters/dist/headers.wasm and the fixtures of
 * test/filters/fixtures (built by test/global-setup.ts with filters/build.ts), and a VM for one of
 * them with real in-memory ports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WasmVm, type VmPorts } from '../../gateway/abi/vm.js';
import { MemorySharedData, MemorySharedQueues } from '../../gateway/shared-state/memory.js';
import { MemoryMetrics, RecordingLogger } from '../helpers/host.js';

const root = join(import.meta.dirname, '..', '..');

export const GUESTS = {
  headers: join(root, 'filters/dist/headers.wasm'),
  probe: join(root, 'test/filters/fixtures/dist/probe.wasm'),
  callout: join(root, 'test/filters/fixtures/dist/callout.wasm'),
} as const;

export type GuestName = keyof typeof GUESTS;

const modules = new Map<GuestName, { bytes: Buffer; module: WebAssembly.Module }>();

/** The compiled module (read and compiled once per test file). */
export function guest(name: GuestName): { bytes: Buffer; module: WebAssembly.Module } {
  let loaded = modules.get(name);
  if (loaded === undefined) {
    const bytes = readFileSync(GUESTS[name]);
    loaded = { bytes, module: new WebAssembly.Module(bytes) };
    modules.set(name, loaded);
  }
  return loaded;
}

export interface GuestVm {
  vm: WasmVm;
  logger: RecordingLogger;
  metrics: MemoryMetrics;
  sharedData: MemorySharedData;
  sharedQueues: MemorySharedQueues;
}

/** A VM of `name` with a recording logger, in-memory metrics and shared state; `ports` adds or overrides. */
export function bootGuest(name: GuestName, ports: Partial<VmPorts> = {}, vmId = 'sdk-test'): GuestVm {
  const logger = new RecordingLogger();
  const metrics = new MemoryMetrics();
  const sharedData = new MemorySharedData();
  const sharedQueues = new MemorySharedQueues();
  const vm = new WasmVm(guest(name).module, {
    name: `${name}.wasm`,
    vmId,
    ports: { logger, metrics, sharedData, sharedQueues, ...ports },
  });
  return { vm, logger, metrics, sharedData, sharedQueues };
}

/** Guest log lines at info level and above, as [level, message]. */
export function notices(logger: RecordingLogger): Array<[number, string]> {
  return logger.lines.filter((l) => l.level >= 2).map((l) => [l.level, l.message]);
}

/** UTF-8 text as the latin1 byte string header maps hold. */
export const bytesOf = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
