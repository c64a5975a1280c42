/**
 * The gateway configuration of the per-filter bench (bench/proxy-filters.ts): one listener and
 * admin on the given ports, the upstream cluster (and `authz` for ext-authz, the same upstream),
 * and the filter alone on the one route, or no filter.
 */
import { join } from 'node:path';
import type { FilterCase } from './filter-cases.js';
import { ROOT } from './processes.js';

export function gatewayConfig(port: number, admin: number, upstream: number, c: FilterCase | undefined): object {
  const plugins = c === undefined ? [] : [{
    name: c.name, module: join(ROOT, `filters/dist/${c.name}.wasm`), ...(c.rootId === '' ? {} : { rootId: c.rootId }), configuration: c.config,
  }];
  const clusters = [{ name: 'upstream', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 }];
  if (c?.authz === true) clusters.push({ name: 'authz', endpoints: [`http://127.0.0.1:${upstream}`], maxConnections: 128 });
  return {
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'bench', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin },
    log: { level: 'error' },
    clusters,
    plugins,
    routes: [{ name: 'api', match: { pathPrefix: '/' }, cluster: 'upstream', filters: plugins.map((p) => p.name) }],
  };
}
