/**
 * The gateway configuration of the per-filter bench (bench/proxy-filters.ts): one listener and
 * admin on the given ports, the upstream cluster (and `authz` for ext-authz, the same upstream),
 * and the filters on the main route in the order given (none for the baseline).
 */
import { join } from 'node:path';
import type { FilterCase } from './filter-cases.js';
import { ROOT } from './processes.js';

/** Requests under it take a route without filters to the same upstream (the same-process pairs of bench/proxy-filters.ts). */
export const PLAIN_PATH = '/plain';

/** `plain`: also the route under PLAIN_PATH, without filters. */
export function gatewayConfig(port: number, admin: number, upstream: number, cases: readonly FilterCase[], plain = false): object {
  const plugins = cases.map((c) => ({
    name: c.name, module: join(ROOT, `filters/dist/${c.name}.wasm`), ...(c.rootId === '' ? {} : { rootId: c.rootId }), configuration: c.config,
  }));
  const clusters = [{ name: 'upstream', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 }];
  if (cases.some((c) => c.authz === true)) clusters.push({ name: 'authz', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 });
  return {
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'bench', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin },
    log: { level: 'error' },
    clusters,
    plugins,
    routes: [
      ...(plain ? [{ name: 'plain', match: { pathPrefix: PLAIN_PATH }, cluster: 'upstream' }] : []),
      { name: 'api', match: { pathPrefix: '/' }, cluster: 'upstream', filters: plugins.map((p) => p.name) },
    ],
  };
}
