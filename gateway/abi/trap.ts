/**
 * How a guest call ends badly, and how we describe it. A trap is any exception that unwinds out
 * of the guest: a WebAssembly.RuntimeError (unreachable, out of bounds, stack overflow), a
 * restricted hostcall, WASI `proc_exit`, or AssemblyScript `abort`.
 */
import { MAX_BACKTRACE_FRAMES } from './limits.js';
import type { ErrorCode } from '../errors.js';

/** Why a VM stopped working: the first trap, with what the guest last said. */
export interface VmFailure {
  readonly code: ErrorCode;
  readonly message: string;
  readonly backtrace: readonly string[];
  /** The guest's last critical log line (a Rust panic message, an AS abort), if any. */
  readonly guestMessage: string | null;
  readonly at: Date;
}


/** Thrown by the host to unwind a guest call: restricted hostcall or AssemblyScript abort. */
export class GuestTrap extends Error {
  constructor(message: string, readonly reason: 'restricted' | 'abort' | 'trap' | 'budget' = 'trap') {
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

/** What a failed guest call looks like in logs and to the failure policy. */
export function describeTrap(err: unknown, guestMessage: string | null): VmFailure {
  let code: ErrorCode = 'GW_ERR_ABI_TRAP';
  let message: string;
  if (err instanceof ProcExit) {
    code = 'GW_ERR_ABI_PROC_EXIT';
    message = `guest called proc_exit(${err.code})`;
  } else if (err instanceof GuestTrap) {
    if (err.reason === 'restricted') code = 'GW_ERR_ABI_RESTRICTED';
    else if (err.reason === 'budget') code = 'GW_ERR_ABI_BUDGET';
    message = err.message;
  } else if (err instanceof RangeError && /call stack/i.test(err.message)) {
    code = 'GW_ERR_ABI_STACK';
    message = `stack overflow: ${err.message}`;
  } else if (err instanceof Error) {
    message = `${err.name === 'RuntimeError' ? 'trap' : err.name}: ${err.message}`;
  } else {
    message = String(err);
  }
  return { code, message, backtrace: wasmBacktrace(err), guestMessage, at: new Date() };
}

/** A failure as one message: what happened, what the guest last said, and where (one frame a line). */
export function failureText(failure: VmFailure): string {
  return failure.message
    + (failure.guestMessage ? ` (guest said: ${failure.guestMessage})` : '')
    + (failure.backtrace.length ? `\n  at ${failure.backtrace.join('\n  at ')}` : '');
}
