/**
 * The imports of a function instance: every WASI 0.2 interface a wasi:http component may import,
 * and nothing else (a component importing anything more is refused when it loads:
 * component-loader.ts). What each gives:
 *
 *   wasi:http/types, outgoing-handler    the gateway's request and response (wasi-http.ts)
 *   wasi:io/error, poll, streams         over them (wasi-io.ts)
 *   wasi:cli/environment                 only the function's configured `environment`; no arguments
 *   wasi:cli/stdout, stderr              lines to the gateway log; stdin is empty; no terminal
 *   wasi:cli/exit                        ends the request as a failure (the instance is dropped)
 *   wasi:clocks/monotonic-clock          performance.now(); its pollables park the thread
 *   wasi:clocks/wall-clock, wasi:random  @bytecodealliance/preview2-shim
 *   wasi:filesystem                      no preopened directory: no file can be reached
 *
 * Import names are matched without their @version: the bindings ask by the names the component
 * uses, and 0.2.x versions are compatible.
 */
import { random as shimRandom, insecure, insecureSeed } from '@bytecodealliance/preview2-shim/random';
import { wallClock } from '@bytecodealliance/preview2-shim/clocks';
import { BufferSource, InputStream, IoError, OutputStream, Pollable, pollList, type Blocker } from './wasi-io.js';
import type { HttpInterfaces } from './wasi-http.js';
import { unversioned } from './wasi-interfaces.js';

/** What the imports write to and read from. */
export interface ImportHost {
  readonly blocker: Blocker;
  readonly environment: Array<[string, string]>;
  readonly http: HttpInterfaces;
  log(stream: 'stdout' | 'stderr', text: string): void;
}

/** A guest's exit: thrown through the guest, caught by the worker as the end of the request. */
class GuestExit extends Error {
  constructor(readonly status: unknown) {
    super(`the function called wasi:cli/exit (${JSON.stringify(status)})`);
  }
}

/** Lines of a stdio stream, to the log a line at a time (bounded, so a guest cannot flood it). */
function logStream(host: ImportHost, stream: 'stdout' | 'stderr', blocker: Blocker): OutputStream {
  let line = '';
  return new OutputStream({
    write(bytes: Uint8Array): void {
      line += Buffer.from(bytes).toString('utf8');
      let nl: number;
      while ((nl = line.indexOf('\n')) >= 0) {
        host.log(stream, line.slice(0, nl));
        line = line.slice(nl + 1);
      }
      if (line.length > 4096) {
        host.log(stream, line.slice(0, 4096));
        line = '';
      }
    },
    capacity: Number.MAX_SAFE_INTEGER,
  }, blocker);
}

const nowNs = (): bigint => BigInt(Math.round(performance.now() * 1e6));

/** Built once per worker; every instance of the worker links against the same objects. */
export function wasiImports(host: ImportHost, names: readonly string[]): Record<string, unknown> {
  const { blocker, http } = host;
  const timer = (untilNs: bigint): Pollable => {
    const deadline = Number(untilNs) / 1e6;
    return new Pollable(() => performance.now() >= deadline, blocker, deadline);
  };
  class TerminalInput {}
  class TerminalOutput {}
  class Descriptor {}
  class DirectoryEntryStream {}
  const stdout = logStream(host, 'stdout', blocker);
  const stderr = logStream(host, 'stderr', blocker);
  const byName: Record<string, unknown> = {
    'wasi:http/types': http.types,
    'wasi:http/outgoing-handler': http.outgoingHandler,
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll: (list: Pollable[]) => pollList(list, blocker) },
    'wasi:io/streams': { InputStream, OutputStream },
    'wasi:cli/environment': {
      getEnvironment: () => host.environment.map(([k, v]) => [k, v]),
      getArguments: () => [],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status: unknown) => { throw new GuestExit(status); },
      exitWithCode: (code: number) => { throw new GuestExit(code); },
    },
    'wasi:cli/stdin': { getStdin: () => new InputStream(new BufferSource(new Uint8Array(0)), blocker) },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:clocks/monotonic-clock': {
      now: nowNs,
      resolution: () => 1000n,
      subscribeInstant: (when: bigint) => timer(when),
      subscribeDuration: (ns: bigint) => timer(nowNs() + ns),
    },
    'wasi:clocks/wall-clock': wallClock,
    'wasi:random/random': shimRandom,
    'wasi:random/insecure': insecure,
    'wasi:random/insecure-seed': insecureSeed,
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    'wasi:filesystem/preopens': { getDirectories: () => [] },
  };
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const provided = byName[unversioned(name)];
    if (provided === undefined) throw new Error(`the component imports ${name}, which functions do not provide`);
    out[name] = provided;
  }
  return out;
}
