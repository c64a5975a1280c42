/**
 * Where plugin modules come from, checked the same way whichever way they arrive: a file (with
 * its detached signature `<file>.sig` when present), a URL, a tag or sha256 of the Redis module
 * registry, or bytes handed to the admin API. Every module is pinned by its sha256 where a pin is
 * given, its signature checked against `modules.trustedKeys` (required per plugin or for all),
 * and compiled once into the module store's LRU.
 */
import { readFile } from 'node:fs/promises';
import type { GatewayConfig, ModuleSourceConfig, PluginConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { checkPin, type ModuleStore } from '../modules/module-store.js';
import { readModuleFile } from '../modules/file-source.js';
import { ModuleRegistry } from '../modules/registry.js';
import { sha256Hex } from '../modules/sha256.js';
import { fetchModule } from '../modules/url-source.js';
import { loadTrustedKeys, readDetachedSignature, verifyModuleSignature, type TrustedKey } from '../modules/signature.js';
import type { SourcedModule } from '../proxy/generation.js';

type ModulesConfig = GatewayConfig['modules'];

export class ModuleSources {
  private keys: TrustedKey[];
  private registryKey: string | null = null;
  private registryClient: ModuleRegistry | null = null;

  constructor(private readonly store: ModuleStore, private modules: ModulesConfig) {
    this.keys = loadTrustedKeys(modules.trustedKeys);
  }

  /**
   * A reload's modules section: its keys are read again (a bad key rejects the reload, throwing
   * here before anything changed), and another registry is connected on first use.
   */
  configure(modules: ModulesConfig): void {
    const keys = loadTrustedKeys(modules.trustedKeys);
    this.keys = keys;
    this.modules = modules;
  }

  /** The registry of the configuration in force, or null when none is configured. */
  registry(): ModuleRegistry | null {
    const r = this.modules.registry;
    if (r === undefined) return null;
    const key = JSON.stringify([r, this.modules.cacheDir]);
    if (key !== this.registryKey) {
      void this.registryClient?.close();
      this.registryClient = ModuleRegistry.open({ url: r.url, prefix: r.prefix, cluster: r.cluster, cacheDir: this.modules.cacheDir });
      this.registryKey = key;
    }
    return this.registryClient;
  }

  async load(source: ModuleSourceConfig, plugin: PluginConfig): Promise<SourcedModule> {
    if (typeof source === 'string' || 'file' in source) {
      const file = typeof source === 'string' ? source : source.file;
      const module = await this.store.load(typeof source === 'string' ? { file } : { file, sha256: source.sha256 });
      const signature = typeof source === 'object' && source.signature !== undefined ? await readSignatureFile(source.signature) : await readDetachedSignature(file);
      return this.verified(module, file, signature, plugin);
    }
    if ('url' in source) {
      const module = await this.store.load({ url: source.url, sha256: source.sha256 });
      return this.verified(module, source.url, source.signature ?? null, plugin);
    }
    const registry = this.registry();
    if (registry === null) throw new GatewayError('GW_ERR_MODULE_REGISTRY', `module { redis: "${source.redis}" } needs modules.registry (the Redis the tag lives in)`);
    const found = await registry.resolve(source.redis);
    const name = `redis ${source.redis}${found.from === 'cache' ? ' (from the local cache: the registry is unreachable)' : ''}`;
    const module = await this.store.compile(found.bytes, name);
    return this.verified(module, name, found.signature, plugin);
  }

  /**
   * A function's component from `source`: read (a file with its `.sig`, a URL, a registry tag),
   * pinned and its signature checked as a plugin's module is, but not compiled (functions/ does
   * that with jco). `bytes` given: the admin API's upload, with its signature if one came.
   */
  async component(source: ModuleSourceConfig | { bytes: Uint8Array; signature: string | null; name: string }, requireSignature: boolean | undefined):
    Promise<{ bytes: Uint8Array; label: string; signedBy: string | null }> {
    let bytes: Uint8Array;
    let label: string;
    let signature: string | null;
    if (typeof source === 'object' && 'bytes' in source) {
      ({ bytes, signature, name: label } = source);
    } else if (typeof source === 'string' || 'file' in source) {
      label = typeof source === 'string' ? source : source.file;
      bytes = await readModuleFile(label);
      pin(label, typeof source === 'string' ? undefined : source.sha256, bytes);
      signature = typeof source === 'object' && source.signature !== undefined ? await readSignatureFile(source.signature) : await readDetachedSignature(label);
    } else if ('url' in source) {
      label = source.url;
      bytes = await fetchModule(source.url);
      pin(label, source.sha256, bytes);
      signature = source.signature ?? null;
    } else {
      const registry = this.registry();
      if (registry === null) throw new GatewayError('GW_ERR_MODULE_REGISTRY', `component { redis: "${source.redis}" } needs modules.registry (the Redis the tag lives in)`);
      const found = await registry.resolve(source.redis);
      ({ bytes, signature } = found);
      label = `redis ${source.redis}${found.from === 'cache' ? ' (from the local cache: the registry is unreachable)' : ''}`;
    }
    const signedBy = verifyModuleSignature(label, sha256Hex(bytes), signature, this.keys, requireSignature ?? this.modules.requireSignature);
    return { bytes, label, signedBy };
  }

  /** Bytes from the admin API (or a watched file), with their signature if one came. */
  async fromBytes(bytes: Uint8Array, name: string, signature: string | null, plugin: PluginConfig): Promise<SourcedModule> {
    return this.verified(await this.store.compile(bytes, name), name, signature, plugin);
  }

  /** A module the store holds by its sha256 (one run or pushed before), checked as a new one would be; null when not cached. */
  fromStore(sha256: string, signature: string | null, plugin: PluginConfig): SourcedModule | null {
    const module = this.store.cached(sha256, `sha256 ${sha256.toLowerCase()}`);
    return module === null ? null : this.verified(module, module.name, signature, plugin);
  }

  private verified(module: SourcedModule['module'], source: string, signature: string | null, plugin: PluginConfig): SourcedModule {
    const required = plugin.requireSignature ?? this.modules.requireSignature;
    const signedBy = verifyModuleSignature(source, module.sha256, signature, this.keys, required);
    return { module, source, signedBy };
  }

  async close(): Promise<void> {
    await this.registryClient?.close();
    this.registryClient = null;
    this.registryKey = null;
  }
}

function pin(label: string, expected: string | undefined, bytes: Uint8Array): void {
  if (expected !== undefined) checkPin(label, expected, sha256Hex(bytes));
}

/** A signature file named in the configuration: it must be there. */
async function readSignatureFile(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new GatewayError('GW_ERR_MODULE_READ', `cannot read signature file ${file}: ${(err as Error).message}`, { cause: err });
  }
}
