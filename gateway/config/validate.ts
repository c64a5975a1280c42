/**
 * Cross-reference checks the schema cannot express: names unique per kind, every reference
 * resolving, regexes compiling as RE2 (regex.ts), one path matcher per route, module files present.
 */
import { existsSync } from 'node:fs';
import type { z } from 'zod';
import { compileRegex } from './regex.js';
import {
  clusterSchema, functionSchema, listenerSchema, nameSchema, pluginSchema, routeSchema,
  filterPlugin, type ClusterConfig, type FunctionConfig, type ListenerConfig, type ModuleSourceConfig, type PluginConfig, type RouteConfig,
} from './schema.js';

/**
 * The sections that are cross-checked. A whole GatewayConfig is one; so is what still parses of a
 * document the schema rejected (sectionsOf), so that every problem is reported at once.
 */
export interface Sections {
  /** An item the schema rejected is `undefined` (its own problems come from the schema). */
  readonly listeners: readonly (ListenerConfig | undefined)[];
  readonly clusters: readonly (ClusterConfig | undefined)[];
  readonly plugins: readonly (PluginConfig | undefined)[];
  readonly services: readonly (string | undefined)[];
  readonly routes: readonly (RouteConfig | undefined)[];
  readonly functions?: readonly (FunctionConfig | undefined)[];
  /** Whether modules.registry is set (absent: not known, e.g. a rejected modules section). */
  readonly registry?: boolean;
  /** Names of rejected clusters and plugins: they exist, so references to them are not reported. */
  readonly rejected?: { readonly clusters: ReadonlySet<string>; readonly plugins: ReadonlySet<string>; readonly functions?: ReadonlySet<string> };
}

function itemsOf<T>(raw: unknown, schema: z.ZodType<T>, rejected?: Set<string>): (T | undefined)[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((item: unknown) => {
    const result = schema.safeParse(item);
    if (result.success) return result.data;
    const name = (item as { name?: unknown } | null)?.name;
    if (typeof name === 'string') rejected?.add(name);
    return undefined;
  });
}

/** Item by item, what parses of a document that failed the schema as a whole. */
export function sectionsOf(doc: unknown): Sections {
  const d = (doc !== null && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  const rejected = { clusters: new Set<string>(), plugins: new Set<string>(), functions: new Set<string>() };
  return {
    listeners: itemsOf(d.listeners, listenerSchema),
    clusters: itemsOf(d.clusters, clusterSchema, rejected.clusters),
    plugins: itemsOf(d.plugins, pluginSchema, rejected.plugins),
    services: itemsOf(d.services, nameSchema),
    routes: itemsOf(d.routes, routeSchema),
    functions: itemsOf(d.functions, functionSchema, rejected.functions),
    registry: (d.modules as { registry?: unknown } | undefined)?.registry !== undefined,
    rejected,
  };
}

function duplicates(items: readonly ({ name: string } | undefined)[], kind: string, out: string[]): Set<string> {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (item === undefined) return;
    if (seen.has(item.name)) out.push(`${kind}[${i}].name: duplicate name "${item.name}"`);
    seen.add(item.name);
  });
  return seen;
}

function checkRegex(source: string, field: string, out: string[]): void {
  try {
    compileRegex(source);
  } catch (err) {
    out.push(`${field}: ${(err as Error).message}`);
  }
}

function checkModule(module: ModuleSourceConfig, field: string, registry: boolean | undefined, out: string[]): void {
  const file = typeof module === 'string' ? module : 'file' in module ? module.file : null;
  if (file !== null && !existsSync(file)) out.push(`${field}: GW_ERR_MODULE_READ: file not found: ${file}`);
  if (typeof module === 'object' && 'redis' in module && registry === false) out.push(`${field}.redis: needs modules.registry (the Redis the tag lives in)`);
}

export function crossCheck(config: Sections): string[] {
  const out: string[] = [];
  duplicates(config.listeners, 'listeners', out);
  const clusters = duplicates(config.clusters, 'clusters', out);
  const plugins = duplicates(config.plugins, 'plugins', out);
  duplicates(config.routes, 'routes', out);
  const functions = duplicates(config.functions ?? [], 'functions', out);
  for (const n of config.rejected?.functions ?? []) functions.add(n);
  for (const n of config.rejected?.clusters ?? []) clusters.add(n);
  for (const n of config.rejected?.plugins ?? []) plugins.add(n);

  const ports = new Map<string, number>();
  config.listeners.forEach((l, i) => {
    if (l === undefined) return;
    const key = `${l.address}:${l.port}`;
    if (l.port !== 0 && ports.has(key)) out.push(`listeners[${i}].port: ${key} is already used by listeners[${ports.get(key)}]`);
    ports.set(key, i);
  });

  const services = new Set(config.services);
  config.plugins.forEach((p, i) => {
    if (p === undefined) return;
    checkModule(p.module, `plugins[${i}].module`, config.registry, out);
    if (p.canary === undefined) return;
    checkModule(p.canary.module, `plugins[${i}].canary.module`, config.registry, out);
    if (services.has(p.name)) out.push(`plugins[${i}].canary: plugin "${p.name}" runs as a service, which has no streams to split`);
    const header = p.canary.match?.header;
    if (header !== undefined && header.exact !== undefined && header.regex !== undefined) out.push(`plugins[${i}].canary.match.header: give at most one of exact, regex`);
    if (header?.regex !== undefined) checkRegex(header.regex, `plugins[${i}].canary.match.header.regex`, out);
  });

  config.services.forEach((s, i) => {
    if (s !== undefined && !plugins.has(s)) out.push(`services[${i}]: unknown plugin "${s}"`);
  });

  (config.functions ?? []).forEach((f, i) => {
    if (f === undefined) return;
    checkModule(f.component, `functions[${i}].component`, config.registry, out);
    if (f.canary !== undefined) checkModule(f.canary.component, `functions[${i}].canary.component`, config.registry, out);
    const header = f.canary?.match?.header;
    if (header?.regex !== undefined) checkRegex(header.regex, `functions[${i}].canary.match.header.regex`, out);
    f.allowedHosts.forEach((h, j) => {
      if (!clusters.has(h)) out.push(`functions[${i}].allowedHosts[${j}]: unknown cluster "${h}"`);
    });
  });

  config.routes.forEach((r, i) => {
    if (r === undefined) return;
    const at = `routes[${i}]`;
    if ((r.cluster === undefined) === (r.function === undefined)) out.push(`${at}: give exactly one of cluster, function`);
    if (r.cluster !== undefined && !clusters.has(r.cluster)) out.push(`${at}.cluster: unknown cluster "${r.cluster}"`);
    if (r.function !== undefined && !functions.has(r.function)) out.push(`${at}.function: unknown function "${r.function}"`);
    if (r.function !== undefined && r.retry !== undefined) out.push(`${at}.retry: a function's route has no upstream tries to retry`);
    r.filters.forEach((entry, j) => {
      const f = filterPlugin(entry);
      if (!plugins.has(f)) out.push(`${at}.filters[${j}]${typeof entry === 'string' ? '' : '.plugin'}: unknown plugin "${f}"`);
    });
    const { path, pathPrefix, pathRegex, headers } = r.match;
    if ([path, pathPrefix, pathRegex].filter((m) => m !== undefined).length > 1) {
      out.push(`${at}.match: give at most one of path, pathPrefix, pathRegex`);
    }
    if (pathRegex !== undefined) checkRegex(pathRegex, `${at}.match.pathRegex`, out);
    headers?.forEach((h, j) => {
      const given = [h.exact, h.regex, h.present].filter((m) => m !== undefined).length;
      if (given !== 1) out.push(`${at}.match.headers[${j}]: give exactly one of exact, regex, present`);
      if (h.regex !== undefined) checkRegex(h.regex, `${at}.match.headers[${j}].regex`, out);
    });
  });
  return out;
}
