/**
 * What the report measures: the gateway in five set-ups and the proxies a user would pick instead,
 * all in front of the same upstream (bench/lib/servers.ts `upstream`, a 1 KB JSON answer), each
 * with how to start a fresh process of it and how to check it does what its row claims.
 */
import { dirname, join } from 'node:path';
import { CLIENT_HEADERS } from '../lib/client-headers.js';
import { FILTER_CASES, SHIPPED_CHAIN, unmet, type FilterCase } from '../lib/filter-cases.js';
import { gatewayConfig } from '../lib/filter-gateway.js';
import { HAPROXY, haproxyArgs, haproxyConfig } from '../lib/haproxy.js';
import { NGINX, nginxArgs, nginxConfig } from '../lib/nginx.js';
import { ROOT, UNDER_TEST_FLAGS, freePort, tempFile } from '../lib/processes.js';
import type { Launch, Live } from './launch.js';
import { peerLaunch } from './peer-servers.js';
import type { TargetResult } from './results.js';

export interface Target extends Pick<TargetResult, 'id' | 'label' | 'group' | 'pinned' | 'note'> {
  /** Why it cannot run here (a peer that is not installed), or null. */
  missing: string | null;
  /** The path every request asks for. */
  path: string;
  /** At most this many requests of process warm-up. */
  maxWarmup: number;
  launch: () => Promise<Launch>;
  /** Throws, naming the target, unless it answers what its row claims. */
  check: (live: Live) => Promise<void>;
}

const chainCases: FilterCase[] = SHIPPED_CHAIN.map((name) => FILTER_CASES.find((c) => c.name === name)!);
const headersCase = FILTER_CASES.find((c) => c.name === 'headers')!;

/**
 * Every target gets the same request: the browser-like headers plus what the chain needs to let
 * it through (an API key, an allowed origin, a rate-limit key). The others ignore the extra bytes.
 */
export const REQUEST_HEADERS: Readonly<Record<string, string>> =
  Object.assign({}, CLIENT_HEADERS, ...chainCases.map((c) => c.request)) as Record<string, string>;

const HELLO = join(ROOT, 'filters/dist/functions/hello.wasm');

let configs = 0;
/** A built gateway (`node dist/gateway/cli.js start`) on a fresh configuration file. */
function gatewayLaunch(id: string, config: (port: number, admin: number) => object): () => Promise<Launch> {
  return async () => {
    const [port, admin] = [await freePort(), await freePort()];
    const file = tempFile(`${id}-${++configs}.json`, JSON.stringify(config(port, admin)));
    return { command: process.execPath, args: [...UNDER_TEST_FLAGS, 'dist/gateway/cli.js', 'start', '--config', file], port, admin };
  };
}

/** The shipped hello function on /fn/hello, as config/gateway.yaml serves it but without the route's filters. */
function functionConfig(cacheDir: string) {
  return (port: number, admin: number): object => ({
    node: { id: 'bench', cluster: 'bench' },
    listeners: [{ name: 'bench', address: '127.0.0.1', port }],
    admin: { address: '127.0.0.1', port: admin },
    log: { level: 'error' },
    modules: { cacheDir },
    functions: [{ name: 'hello', component: HELLO, instances: 2 }],
    routes: [{ name: 'fn', match: { pathPrefix: '/fn/hello' }, function: 'hello' }],
  });
}

/**
 * The upstream must see the client's headers and each filter's work (filter-cases.ts). Unlike
 * bench/proxy-filters.ts it does not look for observe's counter on /metrics (observe's only
 * visible effect): that name follows the guest-metrics naming, which changes on its own schedule.
 */
async function proxyCheck(id: string, live: Live, cases: readonly FilterCase[]): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${live.port}/check`, { headers: REQUEST_HEADERS });
  const seen = res.status === 200 ? await res.json() as Record<string, string> : {};
  const problems = cases.flatMap((c) => unmet(c, (name) => seen[name], (name) => res.headers.get(name) ?? undefined));
  if (res.status !== 200) problems.push(`GET /check answered ${res.status}`);
  if (seen['user-agent'] !== REQUEST_HEADERS['user-agent']) problems.push('the upstream did not see the client\'s user-agent');
  const body = await fetch(`http://127.0.0.1:${live.port}/`, { headers: REQUEST_HEADERS }).then((r) => r.text());
  if (!body.startsWith('{"ok":true')) problems.push(`GET / answered ${body.slice(0, 40)}`);
  if (problems.length > 0) throw new Error(`target ${id}: ${problems.join('; ')}`);
}

async function functionCheck(live: Live): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${live.port}/fn/hello`, { headers: REQUEST_HEADERS });
  const body = await res.text();
  if (res.status !== 200 || body !== 'hello from /fn/hello\n') throw new Error(`target gw-function: GET /fn/hello answered ${res.status} ${body.slice(0, 60)}`);
}

/** The ordered targets: the no-filter gateway first (the baseline), then the gateway set-ups, then the peers. */
export function reportTargets(upstream: number, functionCacheDir: string, functionWarmup: number): Target[] {
  const target = `http://127.0.0.1:${upstream}`;
  const base = { missing: null, path: '/', maxWarmup: Infinity, pinned: true };
  const gateway = (id: string, label: string, cases: FilterCase[], extra: object = {}): Target => ({
    ...base, id, label, group: 'gateway',
    launch: gatewayLaunch(id, (port, admin) => ({ ...gatewayConfig(port, admin, upstream, cases), ...extra })),
    check: (live) => proxyCheck(id, live, cases),
  });
  const peer = (id: string, label: string, launch: () => Promise<Launch>, missing: string | null = null): Target => ({
    ...base, id, label, group: 'peer', missing, launch, check: (live) => proxyCheck(id, live, []),
  });
  // A native peer: its configuration file (the text given its port, its folder and a unique name), then its arguments.
  const fileLaunch = (name: string, command: string | undefined, text: (port: number, dir: string, unique: string) => string, args: (conf: string) => string[]) =>
    async (): Promise<Launch> => {
      const port = await freePort();
      const unique = `${name}-${++configs}`;
      const conf = tempFile(`${unique}.conf`, '');
      tempFile(`${unique}.conf`, text(port, dirname(conf), unique));
      return { command: command!, args: args(conf), port };
    };
  return [
    gateway('gw-none', 'gateway, no filter', []),
    gateway('gw-headers', 'gateway, 1 filter (headers)', [headersCase]),
    gateway('gw-chain', `gateway, chain of ${chainCases.length} filters`, chainCases),
    {
      ...base, id: 'gw-function', label: 'gateway, edge function (hello)', group: 'gateway', path: '/fn/hello', maxWarmup: functionWarmup,
      note: 'the hello component (2 warm instances) answers /fn/hello itself, with no filter on the route; its cold starts read the files jco transpiled at the first start',
      launch: gatewayLaunch('gw-function', functionConfig(functionCacheDir)),
      check: functionCheck,
    },
    {
      ...gateway('gw-workers2', 'gateway, workers: 2 (no filter)', [], { workers: 2 }),
      pinned: false,
      note: 'a primary and 2 workers (node:cluster) on both cores, which they share with the upstream and the load generator: not pinned, so not comparable core for core; CPU and RSS are the three processes together',
    },
    peer('undici', 'undici proxy (Pool.stream)', async () => peerLaunch('undici', target)),
    peer('http-proxy-3', 'http-proxy-3 (keep-alive agent)', async () => peerLaunch('http-proxy-3-ka', target)),
    peer('nginx', 'nginx (1 worker)', fileLaunch('nginx', NGINX, (port, dir, unique) => nginxConfig(port, upstream, 1, dir, unique), (conf) => nginxArgs(conf, 1)),
      NGINX === undefined ? 'not installed (Debian: apt-get install nginx-light)' : null),
    peer('haproxy', 'HAProxy (1 thread)', fileLaunch('haproxy', HAPROXY, (port) => haproxyConfig(port, upstream), haproxyArgs),
      HAPROXY === undefined ? 'not installed (Debian: apt-get install haproxy)' : null),
  ];
}
