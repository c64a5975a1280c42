/**
 * Cross-reference checks the schema cannot express: names unique per kind, every reference
 * resolving, regexes compiling, one path matcher per route, module files present.
 */
import { existsSync } from 'node:fs';
import type { GatewayConfig } from './schema.js';

function duplicates(items: readonly { name: string }[], kind: string, out: string[]): Set<string> {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.name)) out.push(`${kind}[${i}].name: duplicate name "${item.name}"`);
    seen.add(item.name);
  });
  return seen;
}

function checkRegex(source: string, field: string, out: string[]): void {
  try {
    new RegExp(source);
  } catch (err) {
    out.push(`${field}: invalid regular expression: ${(err as Error).message}`);
  }
}

export function crossCheck(config: GatewayConfig): string[] {
  const out: string[] = [];
  duplicates(config.listeners, 'listeners', out);
  const clusters = duplicates(config.clusters, 'clusters', out);
  const plugins = duplicates(config.plugins, 'plugins', out);
  duplicates(config.routes, 'routes', out);

  const ports = new Map<string, number>();
  config.listeners.forEach((l, i) => {
    const key = `${l.address}:${l.port}`;
    if (l.port !== 0 && ports.has(key)) out.push(`listeners[${i}].port: ${key} is already used by listeners[${ports.get(key)}]`);
    ports.set(key, i);
  });

  config.plugins.forEach((p, i) => {
    const file = typeof p.module === 'string' ? p.module : p.module.file;
    if (!existsSync(file)) out.push(`plugins[${i}].module: file not found: ${file}`);
  });

  config.services.forEach((s, i) => {
    if (!plugins.has(s)) out.push(`services[${i}]: unknown plugin "${s}"`);
  });

  config.routes.forEach((r, i) => {
    const at = `routes[${i}]`;
    if (!clusters.has(r.cluster)) out.push(`${at}.cluster: unknown cluster "${r.cluster}"`);
    r.filters.forEach((f, j) => {
      if (!plugins.has(f)) out.push(`${at}.filters[${j}]: unknown plugin "${f}"`);
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
