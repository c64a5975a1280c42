/**
 * Modules that change by themselves: a file module with `watch: true` is swapped when the file
 * changes (modules/file-watch.ts: debounced, only whole modules), and a `{ redis: "name:channel" }`
 * module follows its tag in the registry (modules/registry.ts: pub/sub and a one-second poll).
 * Both go through the same swap as the admin API, so a new module is verified, built beside the
 * running one and refused with the old one serving, exactly as there.
 *
 * What is followed is reconciled with each generation put in force: new watches start, those the
 * configuration no longer asks for stop.
 */
import type { Logger } from '../log.js';
import { watchModuleFile, type ModuleFileWatch } from '../modules/file-watch.js';
import { readDetachedSignature } from '../modules/signature.js';
import type { Generation } from '../proxy/generation.js';
import type { ModuleSources } from './module-sources.js';
import type { PluginControl } from './plugin-control.js';

export class ModuleFollow {
  /** By plugin name: the watched file and its watch. */
  private readonly files = new Map<string, { readonly file: string; readonly watch: ModuleFileWatch }>();
  /** The tags followed (ref → plugin names), and how to stop. */
  private tags: { readonly key: string; readonly registry: object; readonly stop: () => void } | null = null;
  private closed = false;

  constructor(private readonly control: PluginControl, private readonly sources: ModuleSources, private readonly logger: Logger) {}

  reconcile(generation: Generation): void {
    if (this.closed) return;
    const wanted = new Map<string, string>();
    const refs = new Map<string, string[]>();
    for (const live of generation.plugins.values()) {
      const module = live.config.module;
      if (typeof module !== 'object') continue;
      if ('file' in module && module.watch === true) wanted.set(live.name, module.file);
      if ('redis' in module && !/^[0-9a-fA-F]{64}$/.test(module.redis)) refs.set(module.redis, [...(refs.get(module.redis) ?? []), live.name]);
    }
    for (const [name, { file, watch }] of this.files) {
      if (wanted.get(name) === file) continue;
      watch.close();
      this.files.delete(name);
    }
    for (const [name, file] of wanted) {
      if (this.files.has(name)) continue;
      const sha = generation.plugins.get(name)!.state.stable.module.sha256;
      const watch = watchModuleFile(file, sha, (bytes) => this.fileChanged(name, file, bytes),
        (reason) => this.logger.warn({ plugin: name, file }, `plugin ${name}: ${file} changed but is not loaded: ${reason}`));
      this.files.set(name, { file, watch });
    }
    this.followTags(refs);
  }

  private fileChanged(name: string, file: string, bytes: Uint8Array): void {
    void readDetachedSignature(file)
      .then((signature) => this.control.swap(name, { bytes, signature, name: file }, 'watch'))
      // Refused: logged and counted by the swap; the running version keeps serving.
      .catch(() => undefined);
  }

  /**
   * Follows `refs` through the registry in force. A registry client that changed (a reload with
   * other modules.registry or cacheDir settings closes the old one, and its watches with it) is
   * watched again even when the tags are the same.
   */
  private followTags(refs: ReadonlyMap<string, readonly string[]>): void {
    const key = JSON.stringify([...refs].sort());
    const registry = refs.size === 0 ? null : this.sources.registry();
    if (this.tags !== null && this.tags.key === key && this.tags.registry === registry) return;
    this.tags?.stop();
    this.tags = null;
    if (registry === null) return;
    const stop = registry.watch([...refs.keys()], (ref, sha256) => {
      for (const name of refs.get(ref) ?? []) {
        this.logger.info({ plugin: name, ref, sha256 }, `plugin ${name}: registry tag ${ref} moved to ${sha256}`);
        // By the tag (whose sha256 is read again: a newer move wins), so /plugins names the tag.
        this.control.swap(name, { source: { redis: ref } }, 'registry').catch(() => undefined);
      }
    });
    this.tags = { key, registry, stop };
  }

  close(): void {
    this.closed = true;
    for (const { watch } of this.files.values()) watch.close();
    this.files.clear();
    this.tags?.stop();
    this.tags = null;
  }
}
