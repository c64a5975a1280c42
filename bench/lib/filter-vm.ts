/**
 * One shipped filter in a bare WasmVm, as the per-filter benches run it (bench/filters.ts for
 * time, bench/budget-instructions.ts for instruction counts): configured, checked once, and
 * handed back as a function that runs one request. One request = vm.createStream(root, host) +
 * onRequestHeaders(n, true) + onResponseHeaders(m, true) + finish(), with fresh header maps.
 *
 * `budgeted` prepares the module as the module store does (modules/wasm/instrument.ts: budget
 * checks at function entries and loop heads, the capped memory, the VM's deadline per call).
 */
import { existsSync, readFileSync } from 'node:fs';
import { Direction, LogLevel, type MetricType } from '../../gateway/abi/enums.js';
import { HeaderMap } from '../../gateway/abi/header-map.js';
import type { StreamMap } from '../../gateway/abi/map-types.js';
import { propInt, propString } from '../../gateway/abi/properties.js';
import type {
  AbiLogger, Callouts, HttpCallRequest, HttpCallResponse, LocalResponse, MetricCell, MetricsSink, Scheduler,
} from '../../gateway/abi/ports.js';
import type { VmLimits } from '../../gateway/abi/budget.js';
import { WasmVm, type VmPorts } from '../../gateway/abi/vm.js';
import { instrumentModule } from '../../gateway/modules/wasm/instrument.js';
import { MemorySharedData } from '../../gateway/shared-state/memory.js';
import { unmet, type FilterCase } from './filter-cases.js';
import { BenchStream, requestHeaders } from './stream.js';

const DIST = new URL('../../filters/dist/', import.meta.url);
/** Logs nothing (a logger that kept lines would be measured too); warnings and worse are counted. */
let complaints = 0;
/** Warnings and worse logged by the filters so far. */
export const complaintCount = (): number => complaints;
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
  override headerMap(map: StreamMap): HeaderMap | null {
    if (map.trailers) return null;
    return map.direction === Direction.REQUEST ? this.requestHeaders : this.responseHeaders;
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
/** Callouts ext-authz made so far. */
export const calloutCount = (): number => calloutsMade;
const callouts: Callouts = {
  httpCall(_req: HttpCallRequest, done: (res: HttpCallResponse | null) => void) {
    calloutsMade++;
    done({ headers: [':status', '200', 'x-auth-user', 'jane'], body: new Uint8Array(0), trailers: [] });
    return 0; // Status.OK
  },
};

export function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark sanity check failed: ${what}`);
}

/** One VM of the filter, configured, checked once; returns the per-request function. */
/** `limits`: the VM's budgets (default the gateway's); a run under valgrind needs far longer ones. */
export function prepareFilter(c: FilterCase, budgeted: boolean, limits?: VmLimits): { vm: WasmVm; oneRequest: () => void; last: () => FilterStream } {
  const file = new URL(`${c.name}.wasm`, DIST);
  if (!existsSync(file)) throw new Error(`${file.pathname} is missing: run npm run build:filters`);
  const scheduler = new ManualScheduler();
  const ports: VmPorts = { logger, metrics, sharedData: new MemorySharedData(), callouts, scheduler };
  const bytes = new Uint8Array(readFileSync(file));
  const prepared = budgeted ? instrumentModule(bytes, { memoryMb: 128 }) : null; // as the module store does
  const module = new WebAssembly.Module(prepared?.bytes ?? bytes);
  const vm = new WasmVm(module, { name: `${c.name}.wasm`, ports, sandbox: prepared?.plan, limits });
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

