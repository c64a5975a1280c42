/**
 * ABI micro-benchmarks: what one hostcall, one filtered request, one VM and one compile cost, and
 * what the data plane does to one request's headers whatever its filters (row 5).
 *
 *   npx tsx bench/abi-micro.ts [--json out.json]        (npm run bench:abi)
 *   BENCH_TIME_SCALE=0.3 npx tsx bench/abi-micro.ts     (quicker, noisier)
 *
 * Prints a table of median and p99 per operation with PASS/FAIL against the targets (median ≤
 * target). bench/README.md explains each row and records measured figures.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import type { GuestFn } from '../gateway/abi/callbacks.js';
import { LogLevel } from '../gateway/abi/enums.js';
import { HeaderMap } from '../gateway/abi/header-map.js';
import { requestHeaderMap, responseHeaderMap, withoutPseudo } from '../gateway/proxy/headers.js';
import { CLIENT_HEADERS } from './lib/client-headers.js';
import type { AbiLogger } from '../gateway/abi/ports.js';
import { WasmVm } from '../gateway/abi/vm.js';
import { BASELINE_GUEST, HEADER_FILTER_GUEST, HOSTCALL_GUEST, largeModuleWat } from './lib/guests.js';
import { measureAsync, measureSync, table, verdict, type Row } from './lib/report.js';
import { BenchStream, requestHeaders } from './lib/stream.js';
import { watToBytes, withNonceSection } from './lib/wat.js';

const N = 1000;
const LARGE_TARGET_BYTES = 150_000;
const plugin = { name: 'bench', rootId: '', configuration: new Uint8Array(0) };
/** Logs nothing: a logger that kept lines would grow and be measured too. */
const logger: AbiLogger = { level: () => LogLevel.INFO, log() {} };

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark sanity check failed: ${what}`);
}

const cpus = os.cpus();
console.log('edge-gateway ABI micro-benchmarks');
console.log(`node ${process.version} (V8 ${process.versions.v8}) · ${os.platform()}-${os.arch()}`
  + ` · ${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length} · ${new Date().toISOString()}`);
console.log(`V8 wasm: lazy compilation ${v8Flag('wasm-lazy-compilation')}, dynamic tiering ${v8Flag('wasm-dynamic-tiering')}\n`);

function v8Flag(name: string): string {
  // Node 20 compiles wasm functions lazily on first call; the compile row depends on it.
  return process.execArgv.includes(`--no-${name}`) ? 'off' : 'on (default)';
}

const rows: Row[] = [];

// ---- 1. trivial hostcall round trip ----------------------------------------------------------
// One vm.call() runs a guest loop of N hostcalls, so the per-call figure is the wasm→JS
// transition plus the host's guard and hostcall body, with vm.call()'s save/restore amortised
// over N. The baseline loop calls an empty JS function of the same (i32)->i32 signature (and
// declared arity, which keeps V8 on its fast path) from the same kind of loop: the difference is
// what our host adds, the ratio says how close to the floor it is.
{
  const hostcallModule = new WebAssembly.Module(watToBytes(HOSTCALL_GUEST));
  const vm = new WasmVm(hostcallModule, { name: 'hostcall.wasm', ports: { logger } });
  const root = vm.createRoot(plugin);
  const loopLogLevel = vm.instance.exports.loop_log_level as GuestFn;
  const loopTime = vm.instance.exports.loop_time as GuestFn;
  check(vm.call(root, loopLogLevel, N) === 0 && vm.mem.u32(16) === LogLevel.INFO, 'proxy_get_log_level loop');
  check(vm.call(root, loopTime, N) === 0, 'proxy_get_current_time_nanoseconds loop');

  const baseline = new WebAssembly.Instance(new WebAssembly.Module(watToBytes(BASELINE_GUEST)), {
    bench: { noop: (_status: number) => 0 },
  });
  const loopNoop = baseline.exports.loop_noop as GuestFn;
  check(loopNoop(N) === 0, 'baseline loop');

  // A sample is one guest call (~N × per-call); p99 is that of the per-sample mean of N calls.
  const opts = { timeMs: 1500, warmupMs: 300, perSample: N };
  const noop = measureSync('empty import', () => loopNoop(N), opts);
  const level = measureSync('proxy_get_log_level', () => vm.call(root, loopLogLevel, N), opts);
  const time = measureSync('proxy_get_current_time_nanoseconds', () => vm.call(root, loopTime, N), opts);
  // The same hostcall with a constant clock port: what is left is the host's own work (guard,
  // bounds check, u64 store), the rest of the row above is the clock read itself.
  const fixed = new WasmVm(hostcallModule, {
    name: 'hostcall.wasm', ports: { logger, clock: { wallNs: () => 1_700_000_000_000_000_000n, monotonicNs: () => 0n } },
  });
  const fixedRoot = fixed.createRoot(plugin);
  const fixedLoop = fixed.instance.exports.loop_time as GuestFn;
  check(fixed.call(fixedRoot, fixedLoop, 1) === 0 && fixed.mem.current().readBigUInt64LE(16) === 1_700_000_000_000_000_000n, 'constant clock');
  const hostOnly = measureSync('proxy_get_current_time_nanoseconds, constant clock', () => fixed.call(fixedRoot, fixedLoop, N), opts);
  rows.push(
    { id: '1', operation: `hostcall proxy_get_log_level (per call, N=${N} per vm.call)`, unit: 'ns', ...level, target: 300 },
    { id: '1', operation: 'hostcall proxy_get_current_time_nanoseconds (per call)', unit: 'ns', ...time, target: 300 },
    { id: '1', operation: '  same, constant clock port (host work without the clock read)', unit: 'ns', ...hostOnly, target: null },
    { id: '1', operation: 'baseline: empty JS import (i32)->i32 called from wasm', unit: 'ns', ...noop, target: null },
    { id: '1', operation: 'ratio proxy_get_log_level / empty import', unit: 'ns', median: level.median / noop.median,
      p99: null, target: null, samples: null, display: `${(level.median / noop.median).toFixed(1)}×` },
  );
}

// ---- 2. on_request_headers of a header filter, whole per-request cost ------------------------
// What the data plane pays per request and per filter: a stream context (the guest learns of it
// through on_context_create), on_request_headers with one get (value copied in through the
// guest allocator) and one add, then finish() = on_log + on_done + on_delete. A fresh HeaderMap
// and StreamHost are built inside the timed region because the data plane builds them per request
// too (cloning 30 strings is a few tens of ns). One sample is one request, so p99 is per request
// (it includes the minor GCs that per-request garbage causes).
{
  const module = new WebAssembly.Module(watToBytes(HEADER_FILTER_GUEST));
  const vm = new WasmVm(module, { name: 'header-filter.wasm', ports: { logger } });
  const root = vm.createRoot(plugin);
  const template = HeaderMap.from(requestHeaders()).pairs;
  const path = HeaderMap.from(requestHeaders()).get(':path');
  let action = 0;
  const oneRequest = (): HeaderMap => {
    const headers = new HeaderMap(template.slice());
    const stream = vm.createStream(root, new BenchStream(headers));
    action = stream.onRequestHeaders(15, true);
    stream.finish();
    return headers;
  };
  const first = oneRequest();
  check(action === 0 && first.count === 16 && first.get('x-path') === path && !vm.failed, 'header filter adds x-path');
  const pagesBefore = vm.mem.size;

  const req = measureSync('on_request_headers', oneRequest, { timeMs: 4000, warmupMs: 500 });
  check(!vm.failed && vm.contexts.size === 1 && vm.mem.size === pagesBefore, 'no leaked contexts or guest memory');
  // The clock is read once per sample and its cost lands in every per-request figure; on VMs
  // without a fast vDSO clock that is 50-300 ns, so the floor is shown next to the figure.
  const floor = measureSync('empty sample', () => undefined, { timeMs: 200, warmupMs: 50 });
  rows.push(
    { id: '2', operation: 'createStream + on_request_headers (15 headers) + finish', unit: 'µs', ...req, target: 5000 },
    { id: '2', operation: 'clock floor: empty sample (included in the row above)', unit: 'µs', ...floor, target: null },
  );
}

// ---- 3 + 4. a ~150 KB module ------------------------------------------------------------------
// Six SDK-like body shapes (hash and copy loops, br_table dispatch, i64 mixing, call_indirect,
// f64) with a name section, 14 imports, a table, 6 KB of data. The function count is scaled until
// the binary is within 0.5 % of 150 000 bytes.
let largeFunctions = 0;
function buildLarge(): Uint8Array<ArrayBuffer> {
  let count = 1257; // converges in one build on the current generator
  let bytes = watToBytes(largeModuleWat(count), 'large.wat');
  for (let i = 0; i < 4 && Math.abs(bytes.length - LARGE_TARGET_BYTES) > LARGE_TARGET_BYTES * 0.005; i++) {
    count = Math.round(count * LARGE_TARGET_BYTES / bytes.length);
    bytes = watToBytes(largeModuleWat(count), 'large.wat');
  }
  largeFunctions = count;
  return bytes;
}
const { bytes: largeBytes, nonceAt } = withNonceSection(buildLarge());
const largeModule = new WebAssembly.Module(largeBytes);

// ---- 3. VM instantiation from a cached compiled module ---------------------------------------
// What starting a plugin costs once its module is compiled and cached (vm-pool): a new Instance
// (an imports object of ~90 guarded functions, a fresh 17-page memory, data segments, table),
// _initialize, then createRoot = on_context_create + on_vm_start + on_configure. Warm-up has run
// the lazily compiled start-up functions once, as the first plugin of a module does.
{
  const filterBytes = watToBytes(HEADER_FILTER_GUEST);
  const filterModule = new WebAssembly.Module(filterBytes);
  const start = (module: WebAssembly.Module) => () => new WasmVm(module, { name: 'bench.wasm', ports: { logger } }).createRoot(plugin);
  check(start(largeModule)().alive, 'large module starts');
  const opts = { timeMs: 2000, warmupMs: 300 };
  const small = measureSync('instantiate header filter', start(filterModule), opts);
  const large = measureSync('instantiate large', start(largeModule), opts);
  rows.push(
    { id: '3', operation: `new WasmVm + createRoot: header filter (${filterBytes.length} B)`, unit: 'µs', ...small, target: 1e6, targetLabel: '≤ 1 ms' },
    { id: '3', operation: `new WasmVm + createRoot: large module (${largeBytes.length} B)`, unit: 'µs', ...large, target: 1e6, targetLabel: '≤ 1 ms' },
  );
}

// ---- 4. compiling a ~150 KB module ------------------------------------------------------------
// WebAssembly.compile on the bytes, as the module store does on a cache miss. V8 keeps a
// process-wide cache of native modules keyed by the wire bytes, so each sample changes the 8-byte
// nonce in a trailing custom section: every compile is a real one (decode + validate; function
// bodies are compiled lazily on first call under Node 20's defaults).
{
  let nonce = 0;
  const view = new DataView(largeBytes.buffer);
  const compile = () => {
    view.setFloat64(nonceAt, ++nonce, true);
    return WebAssembly.compile(largeBytes);
  };
  const cold = await measureAsync('compile', compile, { timeMs: 4000, warmupMs: 500, minIterations: 100 });
  // Informational: the same compile with every body compiled up front by Liftoff, i.e. the
  // lazy compiles that the first calls pay later, or what --no-wasm-lazy-compilation costs.
  // Changing a V8 flag at run time is unsupported in general; it is the last thing this run does.
  v8.setFlagsFromString('--no-wasm-lazy-compilation');
  const eager = await measureAsync('compile eager', compile, { timeMs: 2500, warmupMs: 300, minIterations: 30 });
  rows.push(
    { id: '4', operation: `WebAssembly.compile, ${largeBytes.length} B, ${largeFunctions} functions, uncached`, unit: 'ms', ...cold, target: null },
    { id: '4', operation: 'same, eager: every body compiled (no lazy compilation)', unit: 'ms', ...eager, target: null },
  );
}

// ---- 5. the data plane's header maps of one request, both ways ---------------------------------
// What the gateway does to headers per request whatever its filters (the maps are built once
// per phase and shared by the chain, not per filter): the client's headers (the proxy benches'
// 13 browser headers) into the request map with the proxy headers, back out as undici's flat
// list; the upstream's parsed headers (8) into the response map, back out for writeHead. The
// filter rows above (and bench/filters.ts) start from built maps, so this is what the proxy
// benches pay on top of them per request, for no filter and for five alike.
{
  const raw: string[] = ['Host', 'api.example.com'];
  for (const [name, value] of Object.entries(CLIENT_HEADERS)) raw.push(name, value);
  const lower: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) lower[raw[i].toLowerCase()] = raw[i + 1];
  const req = { method: 'GET', url: '/orders?page=2', rawHeaders: raw, headers: lower, socket: { remoteAddress: '203.0.113.7' } };
  const upstream: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8', 'content-length': '1024', date: 'Tue, 21 May 2024 10:00:00 GMT',
    server: 'nginx', 'x-powered-by': 'Express', 'cache-control': 'private, max-age=0', connection: 'keep-alive', 'keep-alive': 'timeout=5',
  };
  let out = 0;
  const both = (): void => {
    const request = requestHeaderMap(req as unknown as Parameters<typeof requestHeaderMap>[0], 'http');
    const flat = withoutPseudo(request.pairs);
    const response = responseHeaderMap(200, upstream);
    out = flat.length + withoutPseudo(response.pairs).length;
  };
  both();
  check(out === 2 * (Object.keys(CLIENT_HEADERS).length + 4) + 2 * 6, `header maps both ways: ${out} names and values`);
  const m = measureSync('header maps', both, { timeMs: 2000, warmupMs: 300 });
  rows.push({ id: '5', operation: `data plane: request map (${Object.keys(CLIENT_HEADERS).length} client headers) + response map (8), each built and flattened once`, unit: 'µs', ...m, target: 2000 });
}

console.log(table(rows));
const failed = rows.filter((r) => verdict(r) === 'FAIL');
console.log(failed.length === 0 ? '\nall targets met' : `\n${failed.length} target(s) missed: ${failed.map((r) => r.operation).join('; ')}`);

const jsonAt = process.argv.indexOf('--json');
if (jsonAt !== -1 && process.argv[jsonAt + 1]) {
  writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ node: process.version, cpu: cpus[0]?.model, date: new Date().toISOString(), rows }, null, 2));
}
