/**
 * Transpiles one component with jco (a worker thread of component-loader.ts): jco's bindgen runs
 * as WebAssembly for one to three seconds, which must not stall the thread that serves requests.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { transpileBytes } from '@bytecodealliance/jco-transpile';

try {
  const result = await transpileBytes(workerData as Uint8Array, {
    name: 'component',
    // The host hands every import at instantiation (wasi-imports.ts): the bindings import nothing.
    instantiation: { tag: 'sync' },
    emitTypescriptDeclarations: false,
  } as Parameters<typeof transpileBytes>[1]);
  parentPort!.postMessage({ ok: true, files: result.files, imports: result.imports });
} catch (err) {
  parentPort!.postMessage({ ok: false, message: (err as Error).message ?? String(err) });
}
