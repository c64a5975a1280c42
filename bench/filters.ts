/**
 * Per-filter cost in the ABI host alone: what one request costs through each shipped filter of
 * filters/dist/, with filters/dist/stamp.wasm (the WAT example) as the reference.
 *
 *   npx tsx bench/filters.ts
 *   BENCH_TIME_SCALE=0.3 npx tsx bench/filters.ts     (quicker, noisier)
 *   BENCH_ONLY=stamp,headers npx tsx bench/filters.ts (some filters only; stamp is always run)
 *   npx tsx bench/filters.ts --json out.json           (also writes the rows as JSON)
 *
 * One sample = one request = vm.createStream(root, host) + onRequestHeaders(n, true) +
 * onResponseHeaders(m, true) + finish() (on_log + on_done + on_delete), on an already configured
 * root. Fresh request and response header maps are built inside the timed region (the data plane
 * builds them per request too). No network, no data plane, no body. bench/README.md
 * ("Per-filter cost (ABI host)") describes the per-filter set-up and records figures.
 *
 * Each filter runs twice side by side, in the same process and interleaved in rounds: as compiled
 * from its bytes (no budget), and as the module store prepares it (modules/wasm/instrument.ts:
 * budget checks at function entries and loop heads, the capped memory import, the VM's deadline
 * per outermost call). The "budget" column is the cost of the sandbox per request.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { LogLevel, type MetricType } from '../gateway/abi/enums.js';
import { HeaderMap } from '../gateway/abi/header-map.js';
import { propInt, propString } from '../gateway/abi/properties.js';
import type {
  AbiLogger, Callouts, HttpCallRequest, HttpCallResponse, LocalResponse, MetricCell, MetricsSink, Scheduler,
} from '../gateway/abi/ports.js';
import { WasmVm, type VmPorts } from '../gateway/abi/vm.js';
import { instrumentModule } from '../gateway/modules/wasm/instrument.js';
import { MemorySharedData } from '../gateway/shared-state/memory.js';
import { FILTER_CASES, unmet } from './lib/filter-cases.js';
import { measureSync } from './lib/report.js';
import { BenchStream, requestHeaders } from './lib/stream.js';

const jsonAt = process.argv.indexOf('--json');
const JSON_OUT = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
const DIST = new URL('../filters/dist/', import.meta.url);
/** Logs nothing (a logger that kept lines would be measured too); warnings and worse are counted. */
let complaints = 0;
const logger: AbiLogger = { level: () => LogLevel.INFO, log(level: number) { if (level >= LogLevel.WARN) complaints++; } };

/** Metric cells that only keep a number: observe's on_log pays for the hostcalls, not for prom-client. */
const metrics: MetricsSink = {
  define(_type: MetricType, _name: string): MetricCell {
    let v = 0;
    return { add: (d) => { v += d; }, set: (x) => { v = x; }, observe: () => { v++; }, value: () => v };
  },
};

/** A typical upstream answer: 8 headers. */
function responseHeaders(): Array<[string, string]> {
  return [
    [':status', '200'],
    ['content-type', 'application/json; charset=utf-8'],
    ['content-length', '2048'],
    ['date', 'Tue, 21 May 2024 10:00:00 GMT'],
    ['server', 'nginx'],
    ['x-powered-by', 'Express'],
    ['cache-control', 'private, max-age=0'],
    ['x-request-id', '6f9b3c1e-2a4d-4f8b-9c7e-1d2e3f4a5b6c'],
  ];
}

/** Stream properties the filters read: the route name, the final status, the client address. */
const PROPS = new Map<string, Uint8Array>([
  ['xds.route_name', propString('api')],
  ['route_name', propString('api')],
  ['response.code', propInt(200)],
  ['source.address', propString('203.0.113.7:54321')],
  ['request.time', propInt(BigInt(Date.now()) * 1_000_000n)],
]);

/** BenchStream (request map 0) plus a response map (2), stream properties and a local-reply count. */
class FilterStream extends BenchStream {
  localReplies = 0;
  constructor(requestHeaders: HeaderMap, readonly responseHeaders: HeaderMap) {
    super(requestHeaders);
  }
  override headerMap(type: number): HeaderMap | null {
    return type === 0 ? this.requestHeaders : type === 2 ? this.responseHeaders : null;
  }
  override property(path?: readonly string[]): Uint8Array | undefined {
    return path === undefined ? undefined : PROPS.get(path.join('.'));
  }
  override sendLocalResponse(_response: LocalResponse): void {
    this.localReplies++;
  }
}

/** A synchronous-on-demand scheduler: deferred work runs when the benchmark flushes it. */
class ManualScheduler implements Scheduler {
  queue: Array<() => void> = [];
  every(): { cancel(): void } { return { cancel() {} }; }
  defer(fn: () => void): void { this.queue.push(fn); }
  flush(): void {
    for (let i = 0; i < this.queue.length; i++) this.queue[i]();
    this.queue.length = 0;
  }
}

/** ext-authz's authorization service: answers 200 with x-auth-user at once (delivered on flush). */
let calloutsMade = 0;
const callouts: Callouts = {
  httpCall(_req: HttpCallRequest, done: (res: HttpCallResponse | null) => void) {
    calloutsMade++;
    done({ headers: [':status', '200', 'x-auth-user', 'jane'], body: new Uint8Array(0), trailers: [] });
    return 0; // Status.OK
  },
};

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark sanity check failed: ${what}`);
}

interface Result { name: string; median: number; p99: number; samples: number; note: string; budgeted: number; budgetedP99: number }

const cpus = os.cpus();
console.log('edge-gateway per-filter cost (ABI host)');
console.log(`node ${process.version} · ${os.platform()}-${os.arch()} · ${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}`
  + ` · load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} · ${new Date().toISOString()}\n`);

const only = process.env.BENCH_ONLY?.split(',').map((name) => name.trim());
const results: Result[] = [];
/** Rounds of plain / budgeted measurements, alternating which goes first, per filter. */
const ROUNDS = 4;

/** One VM of the filter, configured, checked once; returns the per-request function. */
function prepare(c: (typeof FILTER_CASES)[number], budgeted: boolean): { vm: WasmVm; oneRequest: () => void; last: () => FilterStream } {
  const file = new URL(`${c.name}.wasm`, DIST);
  if (!existsSync(file)) throw new Error(`${file.pathname} is missing: run npm run build:filters`);
  const scheduler = new ManualScheduler();
  const ports: VmPorts = { logger, metrics, sharedData: new MemorySharedData(), callouts, scheduler };
  const bytes = new Uint8Array(readFileSync(file));
  const prepared = budgeted ? instrumentModule(bytes, { memoryMb: 128 }) : null; // as the module store does
  const module = new WebAssembly.Module(prepared?.bytes ?? bytes);
  const vm = new WasmVm(module, { name: `${c.name}.wasm`, ports, sandbox: prepared?.plan });
  const configuration = Buffer.from(typeof c.config === 'string' ? c.config : JSON.stringify(c.config));
  const root = vm.createRoot({ name: c.name, rootId: c.rootId, configuration });

  const base = requestHeaders();
  for (const [k, v] of Object.entries(c.request)) {
    const i = base.findIndex(([name]) => name === k);
    if (i >= 0) base[i] = [k, v]; else base.push([k, v]);
  }
  const reqTemplate = HeaderMap.from(base).pairs;
  const resTemplate = HeaderMap.from(responseHeaders()).pairs;
  const nReq = base.length;
  const nRes = responseHeaders().length;

  let reqAction = -1;
  let resAction = -1;
  let last: FilterStream | null = null;
  const oneRequest = (): void => {
    const host = new FilterStream(new HeaderMap(reqTemplate.slice()), new HeaderMap(resTemplate.slice()));
    const stream = vm.createStream(root, host);
    reqAction = stream.onRequestHeaders(nReq, true);
    if (scheduler.queue.length !== 0) scheduler.flush(); // ext-authz: the callout's answer, then resume
    resAction = stream.onResponseHeaders(nRes, true);
    stream.finish();
    last = host;
  };

  const kind = budgeted ? 'budgeted' : 'plain';
  complaints = 0;
  oneRequest();
  const h = last as unknown as FilterStream;
  check(!vm.failed, `${c.name} (${kind}): VM failed: ${vm.failure?.message}`);
  check(reqAction === (c.pauses ? 1 : 0) && resAction === 0, `${c.name} (${kind}): actions ${reqAction}/${resAction}`);
  check(h.localReplies === 0, `${c.name} (${kind}): sent a local reply`);
  check(complaints === 0, `${c.name} (${kind}): logged at warn or worse`);
  const problems = unmet(c, (name) => h.requestHeaders.get(name), (name) => h.responseHeaders.get(name));
  check(problems.length === 0, `${c.name} (${kind}): the filter did not do its work: ${problems.join('; ')}`);
  return { vm, oneRequest, last: () => last as unknown as FilterStream };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const c of FILTER_CASES.filter((c) => only === undefined || c.name === 'stamp' || only.includes(c.name))) {
  const sides = [prepare(c, false), prepare(c, true)];
  const medians: number[][] = [[], []];
  const p99s: number[][] = [[], []];
  let samples = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const k of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const m = measureSync(c.name, sides[k].oneRequest, { timeMs: 2000 / ROUNDS, warmupMs: round === 0 ? 300 : 50 });
      medians[k].push(m.median / 1e3);
      p99s[k].push(m.p99 / 1e3);
      if (k === 0) samples += m.samples;
    }
  }
  for (const side of sides) check(!side.vm.failed && complaints === 0 && side.last().localReplies === 0, `${c.name}: after the run`);
  results.push({ name: c.name, median: median(medians[0]), p99: median(p99s[0]), samples, note: c.note,
    budgeted: median(medians[1]), budgetedP99: median(p99s[1]) });
}
if (results.some((r) => r.name === 'ext-authz')) check(calloutsMade > 0, 'ext-authz made its callout');

const stamp = results.find((r) => r.name === 'stamp')!;
const rows = [['filter', 'median µs', 'p99 µs', 'ratio to stamp', 'samples', 'budget median µs', 'budget p99 µs', 'budget cost'],
  ...results.map((r) => [r.name, r.median.toFixed(2), r.p99.toFixed(2), `${(r.median / stamp.median).toFixed(1)}×`, String(r.samples),
    r.budgeted.toFixed(2), r.budgetedP99.toFixed(2), `${(((r.budgeted - r.median) / r.median) * 100).toFixed(1)}%`])];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const line = (r: string[]): string => `| ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
console.log(line(rows[0]));
console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
for (const r of rows.slice(1)) console.log(line(r));
console.log(`\nload after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('\nset-up per filter:');
for (const r of results) console.log(`  ${r.name}: ${r.note}`);
if (JSON_OUT !== undefined) writeFileSync(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
