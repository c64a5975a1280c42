/**
 * The whole state of a function instance, kept right after start-up and put back after each
 * request: its linear memories and its mutable globals (component-loader.ts exports every one of
 * them, modules/wasm/export-globals.ts). Put back, the instance is as a new one would be, without
 * the cost of making one: a componentize-js component takes ~36 ms to instantiate (its 12 MB
 * snapshot copied by the engine, jco's bindings run) and ~1.5 ms to restore, and nothing a
 * request left in guest memory reaches the next one (pages it grew are zeroed).
 *
 * What is not restored lives on the host side of jco's bindings: the handle tables of resources
 * the host gave the guest. The guest drops what it holds before its handler returns; a request
 * that did not end cleanly gets a new instance instead (function-worker.ts).
 */
import { GLOBAL_EXPORT_PREFIX } from '../modules/wasm/export-globals.js';

export class InstanceSnapshot {
  private memories: WebAssembly.Memory[] = [];
  private globals: WebAssembly.Global[] = [];
  private images: Uint8Array[] = [];
  private values: unknown[] = [];

  /** jco's instantiateCore: instantiates as it would, and remembers the instance's state. */
  readonly instantiateCore = (module: WebAssembly.Module, imports?: WebAssembly.Imports): WebAssembly.Instance => {
    const instance = new WebAssembly.Instance(module, imports);
    for (const [name, value] of Object.entries(instance.exports)) {
      if (value instanceof WebAssembly.Memory && !this.memories.includes(value)) this.memories.push(value);
      else if (value instanceof WebAssembly.Global && name.startsWith(GLOBAL_EXPORT_PREFIX)) this.globals.push(value);
    }
    return instance;
  };

  /** Forgets the last instance (a new one is being made). */
  clear(): void {
    this.memories = [];
    this.globals = [];
    this.images = [];
    this.values = [];
  }

  /** Keeps the state the instance has now: right after start-up. */
  capture(): void {
    this.images = this.memories.map((m) => new Uint8Array(m.buffer.slice(0)));
    this.values = this.globals.map((g) => g.value);
  }

  /** Puts the instance back to the captured state. */
  restore(): void {
    this.memories.forEach((memory, i) => {
      const image = this.images[i]!;
      const view = new Uint8Array(memory.buffer);
      view.set(image);
      // A memory cannot shrink: what the request grew is zeroed, so none of it reaches the next.
      if (view.length > image.length) view.fill(0, image.length);
    });
    this.globals.forEach((g, i) => { g.value = this.values[i]; });
  }
}
