/**
 * Per-filter cost through the gateway: one row per shipped filter, each alone on the route, the
 * shipped chain of five, and a control, against the same gateway with no filter; beside each
 * filter, its µs per request in the ABI host alone (bench/filters.ts, run after the load runs),
 * so that the data plane's own cost per filter is the difference.
 *
 *   npm run bench:filters                             # = npx tsx bench/proxy-filters.ts, 12 rounds, ~10 min
 *   BENCH_ROUNDS=20 npx tsx bench/proxy-filters.ts --json out.json  # steadier; JSON of every run
 *   BENCH_ONLY=headers,jwt npx tsx bench/proxy-filters.ts           # some filters (and no filter, control)
 *   BENCH_ROUNDS=2 BENCH_DURATION=2 npx tsx bench/proxy-filters.ts  # quick and noisy
 *   BENCH_BASELINE=../before npx tsx bench/proxy-filters.ts         # also each row from that build, as base-<row>
 *   BENCH_PAIRED=0 npx tsx bench/proxy-filters.ts                   # without the same-process pairs (below)
 *
 * Same-process pairs: each filtered gateway also has a route without filters (`/plain`), measured
 * as the row `<filter>/plain` in the same rounds. A filter's cost is then also read within one
 * process, filtered route against plain route, round by round. Two processes of the same build
 * differ by up to ~25% in CPU per request (JIT and code placement: the control row shows it), which
 * a difference between processes carries whole; within one process it cancels.
 *
 * Processes, pinning, warm-up and rounds as in bench/lib/processes.ts; the tables and the control
 * as in bench/lib/compare.ts. Each filter runs with its README configuration
 * (bench/lib/filter-cases.ts) on a browser-like request that also carries what the filter needs to
 * let it through, and each scenario is checked before it is measured: the upstream and the client
 * must see the headers that prove the filter did its work. The baseline `none` gets the same
 * request headers (the bench's own; a filter's own headers are a few bytes more).
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FILTER_CASES, SHIPPED_CHAIN, unmet, type FilterCase } from './lib/filter-cases.js';
import { PLAIN_PATH, gatewayConfig } from './lib/filter-gateway.js';
import { controlVerdict, pick, printAgainstBaseline, printRows, printTargets, rows, type Row, type Target } from './lib/compare.js';
import {
  ROOT, baselineTwins, benchOptions, cleanUp, ensureFilters, idleRssMb, printSetup, runRounds, startGateway, startServer,
  tempFile, type ScenarioDef, type Started,
} from './lib/processes.js';
import { CLIENT_HEADERS } from './lib/client-headers.js';
import { fmt } from './lib/stats.js';

const OPTIONS = benchOptions();


/**
 * Throws unless the gateway forwards `GET /` and the filter did its work on `GET /check`. With
 * `metrics` false the filters' metrics are not looked for: a baseline build (BENCH_BASELINE) may
 * export them under other names.
 */
async function check(id: string, under: Started, cases: readonly FilterCase[], headers: Record<string, string>, metrics = true): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${under.port}/check`, { headers });
  const seen = await res.json() as Record<string, string>;
  const problems = cases.flatMap((c) => unmet(c, (name) => seen[name], (name) => res.headers.get(name) ?? undefined));
  if (res.status !== 200) problems.push(`status ${res.status}`);
  if (seen['user-agent'] !== CLIENT_HEADERS['user-agent']) problems.push('user-agent not forwarded');
  const body = await fetch(`http://127.0.0.1:${under.port}/`, { headers }).then((r) => r.text());
  if (!body.startsWith('{"ok":true')) problems.push(`GET / answered ${body.slice(0, 40)}`);
  for (const c of cases) {
    if (c.metric === undefined || !metrics) continue;
    // on_log runs after the reply: give the metric a moment to be recorded.
    let text = '';
    for (let i = 0; i < 50 && !text.includes(c.metric); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20));
      text = await fetch(`http://127.0.0.1:${under.admin}/metrics`).then((r) => r.text());
    }
    if (!text.includes(c.metric)) problems.push(`/metrics has no ${c.metric}`);
  }
  if (problems.length > 0) throw new Error(`scenario ${id}: ${problems.join('; ')}`);
}

/** Throws unless the gateway forwards `GET /plain` (the route without filters) to the upstream's 1 KB answer. */
async function checkPlain(id: string, under: Started, headers: Record<string, string>): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${under.port}${PLAIN_PATH}`, { headers });
  const body = await res.text();
  if (res.status !== 200 || !body.startsWith('{"ok":true')) throw new Error(`scenario ${id}: GET ${PLAIN_PATH} answered ${res.status} ${body.slice(0, 40)}`);
}

/** bench/filters.ts in a process of its own, after the load runs: the ABI host's µs per request. */
function abiCosts(names: string[]): Promise<Map<string, number>> {
  const out = tempFile('abi.json', '');
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/filters.ts'), '--json', out], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BENCH_ONLY: names.join(',') },
  });
  return new Promise((resolve, reject) => {
    proc.once('close', (code) => {
      if (code !== 0) return reject(new Error(`bench/filters.ts exited with ${code}`));
      const rows = JSON.parse(readFileSync(out, 'utf8')) as Array<{ name: string; median: number }>;
      resolve(new Map(rows.map((r) => [r.name, r.median])));
    });
  });
}

async function main(): Promise<void> {
  const cases = FILTER_CASES.filter((c) => OPTIONS.only === undefined || OPTIONS.only.includes(c.name));
  const chain = SHIPPED_CHAIN.map((name) => FILTER_CASES.find((c) => c.name === name)!);
  const withChain = OPTIONS.only === undefined || OPTIONS.only.includes('chain');
  ensureFilters([...cases, ...chain].map((c) => c.name));
  const up = await startServer('upstream');
  const paired = process.env.BENCH_PAIRED !== '0';
  /** A filtered scenario's gateway, started once for the scenario and its `/plain` twin. */
  const gateways = new Map<string, Promise<Started>>();
  const scenario = (id: string, label: string, filters: readonly FilterCase[], root?: string): ScenarioDef => {
    const headers = Object.assign({}, CLIENT_HEADERS, ...filters.map((c) => c.request)) as Record<string, string>;
    const plain = paired && filters.length > 0;
    const start = (): Promise<Started> => {
      if (!gateways.has(id)) gateways.set(id, startGateway(id, (port, admin) => gatewayConfig(port, admin, up.port, filters, plain), true, root));
      return gateways.get(id)!;
    };
    return { id, label, headers, start, check: (under) => check(id, under, filters, headers, root === undefined) };
  };
  /** The same process as `def`, on its route without filters. */
  const plainTwin = (def: ScenarioDef): ScenarioDef => ({
    id: `${def.id}/plain`, label: `${def.label}: its process, route without filters`, headers: def.headers, path: PLAIN_PATH,
    start: def.start, check: (under) => checkPlain(`${def.id}/plain`, under, def.headers),
  });
  const filtersOf = new Map<string, readonly FilterCase[]>([['none', []], ['chain', chain], ...cases.map((c) => [c.name, [c]] as const)]);
  const defs = [
    scenario('none', 'no filter', []),
    scenario('control', 'control: no filter, a second process', []),
    ...cases.filter((c) => c.name !== 'chain').map((c) => scenario(c.name, c.name, [c])),
    ...(withChain ? [scenario('chain', `chain of 5 (${SHIPPED_CHAIN.join(', ')})`, chain)] : []),
  ];
  // BENCH_BASELINE: every row but the control again, from the baseline's build.
  defs.push(...baselineTwins(defs, (d, root) => (d.id === 'control' ? null
    : scenario(`base-${d.id}`, `baseline: ${d.label}`, filtersOf.get(d.id)!, root)), OPTIONS));
  const filtered = paired ? defs.filter((d) => (filtersOf.get(d.id.replace(/^base-/, '')) ?? []).length > 0) : [];
  // Each twin right after its row: the machine's speed drifts within seconds, and the rounds
  // rotate the order, so a pair measured back to back shares its moment.
  for (const d of filtered) defs.splice(defs.indexOf(d) + 1, 0, plainTwin(d));

  printSetup(OPTIONS);
  const runs = await runRounds(defs, up, OPTIONS);
  console.log('measuring the ABI host alone (bench/filters.ts)…');
  const abi = await abiCosts(cases.map((c) => c.name));

  const table = rows(runs, defs, 'none');
  printRows(table, 'none');
  printAgainstBaseline(runs, defs);
  const verdict = controlVerdict(table, 'control');
  console.log(`\n${verdict.line}`);

  console.log('\n| filter | Δ CPU µs/req through the gateway | ABI host µs/req (guest + host alone) | data plane µs/req beyond it |');
  console.log('|---|---:|---:|---:|');
  const beyond = (r: Row): number => r.cpuDelta - (abi.get(r.id) ?? NaN);
  for (const r of table) {
    if (!abi.has(r.id)) continue;
    console.log(`| ${r.label} | ${fmt(r.cpuDelta, 1)} | ${fmt(abi.get(r.id)!, 2)} | ${fmt(beyond(r), 1)} |`);
  }
  const dataPlane = table.filter((r) => abi.has(r.id) && r.id !== 'stamp').map(beyond);
  // Same-process pairs: each filtered row against its own process's plain route.
  const inProcess = filtered.map((d) => rows(runs, [d], `${d.id}/plain`)[0]);
  if (inProcess.length > 0) {
    console.log('\n| filter | within one process: Δ CPU µs/req, filtered − plain route (per round) | req/s ÷ plain route (per round) | ABI host µs/req | data plane beyond it |');
    console.log('|---|---|---|---:|---:|');
    for (const r of inProcess) {
      const abiUs = abi.get(r.id);
      console.log(`| ${r.label} | ${fmt(r.cpuDelta, 1)} (${r.cpuDeltas.map((d) => fmt(d, 1)).join(', ')}) | ${fmt(r.reqRatio, 2)} (${r.reqRatios.map((x) => fmt(x, 2)).join(', ')}) `
        + `| ${abiUs === undefined ? '' : fmt(abiUs, 2)} | ${abiUs === undefined ? '' : fmt(r.cpuDelta - abiUs, 1)} |`);
    }
  }
  const paired1 = (id: string, of: (r: Row) => number): number => { const r = inProcess.find((x) => x.id === id); return r === undefined ? NaN : of(r); };
  const targets: Target[] = [
    { name: 'headers ÷ no filter, req/s', value: (t) => pick(t, 'headers', (r) => r.reqRatio), kind: 'min', target: 0.92 },
    { name: 'headers, Δ CPU µs per request', value: (t) => pick(t, 'headers', (r) => r.cpuDelta), kind: 'max', target: 6, digits: 1 },
    { name: 'chain of 5 ÷ no filter, req/s', value: (t) => pick(t, 'chain', (r) => r.reqRatio), kind: 'min', target: 0.75 },
    { name: 'data plane per filter beyond the ABI host, µs (largest)', value: () => (dataPlane.length === 0 ? NaN : Math.max(...dataPlane)), kind: 'max', target: 2, digits: 1 },
    ...(inProcess.length === 0 ? [] : [
      { name: 'within one process: headers ÷ plain route, req/s', value: () => paired1('headers', (r) => r.reqRatio), kind: 'min', target: 0.92 },
      { name: 'within one process: headers, Δ CPU µs per request', value: () => paired1('headers', (r) => r.cpuDelta), kind: 'max', target: 6, digits: 1 },
      { name: 'within one process: chain of 5 ÷ plain route, req/s', value: () => paired1('chain', (r) => r.reqRatio), kind: 'min', target: 0.75 },
    ] satisfies Target[]),
    { name: 'idle RSS of the gateway with the chain of 5, MB', value: () => idleRssMb.get('chain') ?? NaN, kind: 'max', target: 70, digits: 1 },
  ];
  console.log(`\nidle RSS after start-up and the scenario check (lowest RSS over 30 s idle), MB: ${[...idleRssMb].map(([id, mb]) => `${id} ${mb.toFixed(1)}`).join(', ')}`);
  printTargets(table, targets);
  if (!verdict.ok) console.log('\n(the control says this run is too noisy to judge the targets)');
  if (OPTIONS.jsonOut !== undefined) writeFileSync(OPTIONS.jsonOut, JSON.stringify({ node: process.version, ...OPTIONS, runs, abi: Object.fromEntries(abi) }, null, 2));
}

try {
  await main();
} finally {
  cleanUp();
}
