/**
 * The memory cap of a VM (abi/sandbox.ts). A module's own memory carries the cap as its maximum
 * (the instrumenter wrote it); a memory the module imports is created here with `maximum` =
 * limits.memoryMb. Either way `memory.grow` past the cap returns -1 as the spec says, and the
 * guest's allocator reports its own failure (a Rust/Go/AS out-of-memory abort is then a trap like
 * any other). A module that needs more than the cap at start is refused.
 */
import { GatewayError } from '../errors.js';
import { WASM_PAGE_BYTES } from './limits.js';
import type { SandboxPlan } from './sandbox.js';

/** Pages a wasm32 memory can have at most (4 GiB). */
const MAX_PAGES = 65536;

/**
 * The memory to hand the module as its import, or null for a module that was not instrumented.
 * Throws GW_ERR_ABI_MEMORY when the module needs more at start than the cap, or has a memory the
 * host cannot cap.
 */
export function createCappedMemory(plan: SandboxPlan | undefined, memoryMb: number, name: string):
  { module: string; name: string; memory: WebAssembly.Memory } | null {
  if (plan === undefined) return null;
  if (plan.defined !== null) {
    // Capped in the module; this VM's cap must be the one the module was prepared for.
    const { initialPages, capPages } = plan.defined;
    if (capPages !== pagesOf(memoryMb)) {
      throw new GatewayError('GW_ERR_ABI_MEMORY', `module ${name}: prepared for a cap of ${capPages} pages, not limits.memoryMb = ${memoryMb}`);
    }
    if (initialPages > capPages) throw overCap(name, initialPages, memoryMb);
    return null;
  }
  if (plan.memory === null) {
    if (plan.uncapped === null) return null; // no memory at all: the export check reports it
    throw new GatewayError('GW_ERR_ABI_MEMORY', `module ${name}: its memory cannot be capped (${plan.uncapped})`);
  }
  const { initialPages, maximumPages, shared } = plan.memory;
  const capPages = pagesOf(memoryMb);
  if (initialPages > capPages) throw overCap(name, initialPages, memoryMb);
  const maximum = Math.min(maximumPages ?? MAX_PAGES, capPages);
  const memory = new WebAssembly.Memory(shared ? { initial: initialPages, maximum, shared: true } : { initial: initialPages, maximum });
  return { module: plan.memory.module, name: plan.memory.name, memory };
}

function pagesOf(memoryMb: number): number {
  return Math.min(MAX_PAGES, Math.floor((memoryMb * 1024 * 1024) / WASM_PAGE_BYTES));
}

function overCap(name: string, initialPages: number, memoryMb: number): GatewayError {
  return new GatewayError('GW_ERR_ABI_MEMORY', `module ${name}: needs ${initialPages} pages `
    + `(${((initialPages * WASM_PAGE_BYTES) / 1048576).toFixed(1)} MiB) of memory at start, over limits.memoryMb = ${memoryMb}`);
}
