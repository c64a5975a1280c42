/**
 * Watch mode for a file module (`{ file, watch: true }`): a changed file is delivered on its own,
 * once, and only whole.
 *
 * How a change travels:
 * 1. fs.watch on the file's directory, not on the file: a deploy that writes a temporary file and
 *    renames it over the module replaces the inode, and a watch on the old inode would go deaf.
 *    Events for other names in the directory are ignored (a null name, which some platforms
 *    report, counts as ours).
 * 2. Debounce: nothing happens until events stop for `debounceMs` (a copy is many writes).
 * 3. Settle: two stats `settleMs` apart must agree on size and mtime before the bytes are read; a
 *    writer pausing longer than the debounce (a slow network copy) is still caught writing.
 * 4. The bytes must be a valid module (WebAssembly.validate) and their length the settled size;
 *    anything else is reported through onSkip and the watch waits for the next change.
 * 5. Bytes whose SHA-256 equals the last delivered (or `initialSha256`) are not delivered again.
 *
 * Checks run one at a time, so an older read can never be delivered after a newer one.
 * Timers are unref'd and the watcher is not persistent: a watch never keeps the process alive.
 * `close()` stops everything; no callback comes after it, even from a check in flight.
 * NB: onChange and onSkip must not throw; an exception from onChange is reported through onSkip.
 * Not handled: a module file that is a symlink whose target is swapped elsewhere (the Kubernetes
 * ConfigMap `..data` swap); the event then names `..data`, not the file.
 */

import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { GatewayError } from '../errors.js';
import { readModuleFile } from './file-source.js';
import { sameSha256, sha256Hex } from './sha256.js';

export interface FileWatchOptions {
  /** Quiet time after the last event before the file is looked at. Default 200 ms. */
  readonly debounceMs?: number;
  /** Time between the two stats that must agree before the file is read. Default 100 ms. */
  readonly settleMs?: number;
  /**
   * Whether the bytes are whole: by default a valid core module (WebAssembly.validate); a
   * function's component is told by its preamble and its length instead (the engine cannot
   * validate a component).
   */
  readonly whole?: (bytes: Uint8Array) => boolean;
}

export interface ModuleFileWatch {
  /** Stops watching; idempotent. No callback is made after it returns. */
  close(): void;
}

const DEFAULT_DEBOUNCE_MS = 200;
const DEFAULT_SETTLE_MS = 100;

/**
 * Watches `file` and calls `onChange(bytes, sha256)` for each new complete module it holds.
 * Throws GW_ERR_MODULE_READ when the directory cannot be watched (missing, unreadable).
 */
export function watchModuleFile(
  file: string,
  initialSha256: string | null,
  onChange: (bytes: Uint8Array, sha256: string) => void,
  onSkip: (reason: string) => void,
  options?: FileWatchOptions,
): ModuleFileWatch {
  const debounceMs = options?.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const settleMs = options?.settleMs ?? DEFAULT_SETTLE_MS;
  const { dir, base } = splitPath(file);
  let lastSha256 = initialSha256;
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let settle: NodeJS.Timeout | undefined;
  let checking = false;
  let checkAgain = false;

  const skip = (reason: string): void => {
    if (!closed) onSkip(reason);
  };

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(runCheck, debounceMs).unref();
  };

  // One check at a time; a debounce that fires during a check asks for one more afterwards.
  function runCheck(): void {
    if (closed) return;
    if (checking) {
      checkAgain = true;
      return;
    }
    checking = true;
    check()
      // A read failure already names the file; anything else came from onChange.
      .catch((err: unknown) => skip(err instanceof GatewayError ? err.message : `module file ${file}: onChange threw: ${String(err)}`))
      .finally(() => {
        checking = false;
        if (checkAgain) {
          checkAgain = false;
          runCheck();
        }
      });
  }

  async function check(): Promise<void> {
    const first = await statOrSkip();
    if (first === null) return;
    await new Promise<void>((resolve) => {
      settle = setTimeout(resolve, settleMs).unref();
    });
    if (closed) return;
    const second = await statOrSkip();
    if (second === null) return;
    // Still being written: the writes raise events, but look again in case they were missed.
    if (first.size !== second.size || first.mtimeNs !== second.mtimeNs) return schedule();
    const bytes = await readModuleFile(file);
    if (closed) return;
    if (BigInt(bytes.byteLength) !== second.size) return schedule();
    if (!(options?.whole ?? isValidModule)(bytes)) {
      return skip(`module file ${file} is not a valid module (${bytes.byteLength} bytes, perhaps half written); waiting for the next change`);
    }
    const sha256 = sha256Hex(bytes);
    if (lastSha256 !== null && sameSha256(lastSha256, sha256)) return;
    lastSha256 = sha256;
    onChange(bytes, sha256);
  }

  // A missing file (deleted, or between an unlink and a rename) is reported and waited out.
  async function statOrSkip(): Promise<{ size: bigint; mtimeNs: bigint } | null> {
    try {
      const s = await stat(file, { bigint: true });
      return closed ? null : { size: s.size, mtimeNs: s.mtimeNs };
    } catch (err) {
      skip(`cannot stat module file ${file}: ${(err as Error).message}; waiting for the next change`);
      return null;
    }
  }

  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name === null || name === base) schedule();
    });
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_READ', `cannot watch module file ${file}: ${(err as Error).message}`, { cause: err });
  }

  const close = (): void => {
    if (closed) return;
    closed = true;
    clearTimeout(debounce);
    clearTimeout(settle);
    watcher.close();
  };
  // The directory went away or became unreadable: the watch is dead, say so once.
  watcher.on('error', (err) => {
    skip(`the watch of module file ${file} stopped: ${err.message}`);
    close();
  });
  return { close };
}

/** Directory and base name, without node:path (modules/ may not import it; see architecture.test). */
function splitPath(file: string): { dir: string; base: string } {
  const cut = Math.max(file.lastIndexOf('/'), process.platform === 'win32' ? file.lastIndexOf('\\') : -1);
  if (cut < 0) return { dir: '.', base: file };
  // A root ('/m.wasm', 'C:\\m.wasm') keeps its separator: '' and 'C:' are not that directory.
  const root = cut === 0 || file[cut - 1] === ':';
  return { dir: file.slice(0, root ? cut + 1 : cut), base: file.slice(cut + 1) };
}

function isValidModule(bytes: Uint8Array): boolean {
  return WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>);
}
