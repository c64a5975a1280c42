/**
 * How a guest call ends badly, and how we describe it. A trap is any exception that unwinds out
 * of the guest: a WebAssembly.RuntimeError (unreachable, out of bounds, stack overflow), a
 * restricted hostcall, WASI `proc_exit`, or AssemblyScript `abort`.
 */
import { MAX_BACKTRACE_FRAMES } from './limits.js';

/** Thrown by the host to unwind a guest call: restricted hostcall or AssemblyScript abort. */
export class GuestTrap extends Error {
  constructor(message: string, readonly reason: 'restricted' | 'abort' | 'trap' = 'trap') {
    super(message);
    this.name = 'GuestTrap';
  }
}

/** Thrown by WASI `proc_exit`: the guest asked to end; the call fails. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
    this.name = 'ProcExit';
  }
}

/** True for anything that must propagate through the guest rather than become a status code. */
export function isTrap(err: unknown): boolean {
  return err instanceof GuestTrap || err instanceof ProcExit || err instanceof WebAssembly.RuntimeError
    || err instanceof RangeError; // "Maximum call stack size exceeded" inside the guest
}

/**
 * The wasm frames of an error's stack, innermost first, as `function (wasm-function[N]:0xOFF)`.
 * V8 names wasm frames from the module's name section when it has one, so SDK-built modules
 * (which keep names by default) get readable backtraces.
 */
export function wasmBacktrace(err: unknown): string[] {
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : '';
  const frames: string[] = [];
  for (const line of stack.split('\n')) {
    if (!line.includes('wasm://') && !line.includes('wasm-function[')) continue;
    frames.push(line.trim().replace(/^at /, '').replace(/wasm:\/\/wasm\/[0-9a-f]+:/, ''));
    if (frames.length === MAX_BACKTRACE_FRAMES) break;
  }
  return frames;
}
