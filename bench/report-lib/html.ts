/**
 * The report page: one self-contained HTML file (inline CSS, inline SVG, no script, no font or
 * style sheet from elsewhere), made from the raw results and their summaries.
 */
import { fmt, LATENCY_PERCENTILES } from '../lib/stats.js';
import { barChart, coldStartChart, latencyChart, rssChart, type Series } from './charts.js';
import { methodHtml, STYLE } from './html-text.js';
import type { ReportResults } from './results.js';
import type { TargetSummary } from './summary.js';
import { colorAt, esc, legend } from './svg.js';

const row = (cells: readonly string[]): string => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;

function table(head: readonly string[], rows: readonly string[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** A row for a target that has no figures: its name, then why, across the other columns. */
const missingRow = (s: TargetSummary, columns: number): string =>
  `<tr class="missing"><td>${esc(s.label)}</td><td colspan="${columns - 1}">${esc(s.note ?? s.status)}</td></tr>`;

const name = (s: TargetSummary): string => `${esc(s.label)}${s.pinned ? '' : ' <span class="flag">unpinned</span>'}`;

function glance(summaries: readonly TargetSummary[]): string {
  const head = ['target', 'req/s', '÷ gateway', '÷ undici', 'CPU µs/req', 'CPU ÷ gateway', 'p50 / p99 / p99.9 ms', 'RSS idle → under load (peak) MB', 'cold start p50 ms', 'errors'];
  const p = (q: number): number => LATENCY_PERCENTILES.indexOf(q);
  return table(head, summaries.map((s) => (s.status !== 'measured' ? missingRow(s, head.length) : row([
    name(s), fmt(s.reqPerSec), fmt(s.vsGateway.req, 2), fmt(s.vsUndici.req, 2), fmt(s.cpuUsPerReq, 1), fmt(s.vsGateway.cpu, 2),
    `${fmt(s.latencyMs[p(0.5)], 2)} / ${fmt(s.latencyMs[p(0.99)], 2)} / ${fmt(s.latencyMs[p(0.999)], 2)}`,
    `${fmt(s.idleRssMb)} → ${fmt(s.rssUnderLoad.median)} (${fmt(s.rssUnderLoad.peak)})`, fmt(s.coldStart.p50), String(s.errors),
  ]))));
}

function throughput(summaries: readonly TargetSummary[], series: ReadonlyMap<string, Series>): string {
  const bars = (value: (s: TargetSummary) => number, ratio: (s: TargetSummary) => number) => summaries.map((s) => ({
    id: s.id, label: s.label, color: series.get(s.id)!.color, value: value(s),
    ...(s.status === 'measured' ? { annotation: `÷ gateway ${fmt(ratio(s), 2)}` } : { missing: s.status }),
  }));
  const head = ['target', 'req/s ÷ gateway (each round)', 'CPU ÷ gateway', 'req/s ÷ undici', 'CPU ÷ undici'];
  const rows = summaries.map((s) => (s.status !== 'measured' ? missingRow(s, head.length) : row([
    name(s), `${fmt(s.vsGateway.req, 2)} (${s.vsGateway.reqPerRound.map((r) => fmt(r, 2)).join(', ')})`,
    fmt(s.vsGateway.cpu, 2), fmt(s.vsUndici.req, 2), fmt(s.vsUndici.cpu, 2),
  ])));
  return `<h2 id="throughput">Throughput</h2>
<p>Requests per second (median of the rounds), and the CPU time the target's process(es) spent per request: the figure that moves least when the machine is busy. Ratios are medians of per-round ratios.</p>
<h3>Requests per second</h3>
${barChart('Requests per second', 'req/s', bars((s) => s.reqPerSec, (s) => s.vsGateway.req))}
<h3>CPU µs per request of the process(es) under test</h3>
${barChart('CPU time per request of the process(es) under test', 'µs/req', bars((s) => s.cpuUsPerReq, (s) => s.vsGateway.cpu), 1)}
${table(head, rows)}`;
}

function latency(summaries: readonly TargetSummary[], series: ReadonlyMap<string, Series>): string {
  const measured = summaries.filter((s) => s.status === 'measured');
  const head = ['target', ...LATENCY_PERCENTILES.map((p) => (p >= 1 ? 'max' : `p${Number((p * 100).toPrecision(3))}`))];
  const rows = summaries.map((s) => (s.status !== 'measured' ? missingRow(s, head.length) : row([name(s), ...s.latencyMs.map((v) => fmt(v, 2))])));
  return `<h2 id="latency">Tail latency</h2>
<p>Latency of every 2xx response at a fixed number of connections, ms; each percentile is the median over the rounds of that round's percentile.</p>
${latencyChart(measured.map((s) => ({ ...series.get(s.id)!, latencyMs: s.latencyMs })))}
${legend(measured.map((s) => series.get(s.id)!))}
${table(head, rows)}`;
}

function memory(results: ReportResults, summaries: readonly TargetSummary[], series: ReadonlyMap<string, Series>): string {
  const measured = summaries.filter((s) => s.status === 'measured');
  const roundsStart = results.rss.find((s) => s.phase === 'rounds')?.t;
  const marks = roundsStart === undefined ? [] : [{ t: roundsStart, label: 'rounds start' }];
  const head = ['target', 'idle after start', 'under load, median', 'under load, peak', 'at the end'];
  const last = results.rss.at(-1);
  const rows = summaries.map((s) => (s.status !== 'measured' ? missingRow(s, head.length) : row([
    name(s), fmt(s.idleRssMb, 1), fmt(s.rssUnderLoad.median, 1), fmt(s.rssUnderLoad.peak, 1), fmt(last?.mb[s.id] ?? NaN, 1),
  ])));
  return `<h2 id="memory">Memory</h2>
<p>Resident memory (VmRSS, MB; for <code>workers: 2</code> the primary and its workers together), sampled every ${results.settings.rssIntervalMs} ms from the processes' one-time warm-up to the end of the rounds. "Under load" counts the samples taken while the load generator sent to that target.</p>
${rssChart(results.rss, measured.map((s) => series.get(s.id)!), marks)}
${legend(measured.map((s) => series.get(s.id)!))}
${table(head.map((h, i) => (i === 0 ? h : `${h}, MB`)), rows)}`;
}

function coldStart(summaries: readonly TargetSummary[], results: ReportResults, series: ReadonlyMap<string, Series>): string {
  const head = ['target', 'n', 'min', 'p50', 'p90', 'max', 'first request alone, p50', 'first start of the run'];
  const rows = summaries.map((s) => (s.status !== 'measured' ? missingRow(s, head.length) : row([
    name(s), String(s.coldStart.n), fmt(s.coldStart.min), fmt(s.coldStart.p50), fmt(s.coldStart.p90), fmt(s.coldStart.max), fmt(s.firstRequest.p50, 1), fmt(s.firstStartMs),
  ])));
  const dots = summaries.map((s) => ({
    ...series.get(s.id)!, samples: results.targets.find((t) => t.id === s.id)!.coldStarts.map((c) => c.ms), p50: s.coldStart.p50,
    ...(s.status === 'measured' ? {} : { missing: s.status }),
  }));
  const fn = summaries.find((s) => s.id === 'gw-function' && s.status === 'measured');
  const plain = summaries.find((s) => s.id === 'gw-none');
  const fnText = fn === undefined ? '' : `<p>The edge function's own share: its first request after a start took ${fmt(fn.firstRequest.p50, 1)} ms at the median (the no-filter gateway's: ${fmt(plain?.firstRequest.p50 ?? NaN, 1)} ms), and the run's first start, when jco transpiled the component, took ${fmt(fn.firstStartMs)} ms against ${fmt(fn.coldStart.p50)} ms with the transpiled files cached.</p>`;
  return `<h2 id="cold-start">Cold start</h2>
<p>A fresh process spawned until it proxied its first 200 (requests refused until it listens are retried every 2 ms), then stopped; ${results.settings.coldStarts} times per target, the targets taking turns. Times in ms; the bar in each row is the median.</p>
${coldStartChart(dots)}
${table(head, rows)}
${fnText}`;
}

function machine(results: ReportResults): string {
  const m = results.machine;
  const items: Array<[string, string]> = [
    ['date', `${results.startedAt} → ${results.finishedAt} (${fmt(results.durationS)} s)`],
    ['CPU', `${m.cpuModel} × ${m.cores}`], ['memory', `${fmt(m.memoryGb, 1)} GB`], ['OS', `${m.os}, kernel ${m.kernel}`],
    ['Node / V8', `${m.node} / ${m.v8}`], ['undici / http-proxy-3 / autocannon', `${m.undici} / ${m.httpProxy3} / ${m.autocannon}`],
    ['nginx', m.nginx ?? 'not installed'], ['HAProxy', m.haproxy ?? 'not installed'], ['commit', m.commit],
    ['pinned', m.pinned ? 'yes: processes under test on core 0, upstream and load generator on core 1' : 'no (fewer than 2 cores or no taskset): figures are noisier'],
    ['load average (1 min)', `${fmt(results.loadAverage.start, 2)} at the start, ${fmt(results.loadAverage.end, 2)} at the end`],
  ];
  const rounds = Array.from({ length: results.settings.rounds }, (_, round) => {
    const loads = results.targets.flatMap((t) => t.runs.filter((r) => r.round === round).map((r) => r.load));
    return row([String(round + 1), loads.length === 0 ? '—' : `${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}`]);
  });
  return `<h2 id="machine">Machine and software</h2>
<table class="facts"><tbody>${items.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>
<h3>Load average per round</h3>
${table(['round', '1-minute load average over its runs'], rounds)}`;
}

export function renderReport(results: ReportResults, summaries: readonly TargetSummary[]): string {
  const series = new Map<string, Series>(results.targets.map((t, i) => [t.id, { id: t.id, label: t.label, color: colorAt(i) }]));
  const notes = summaries.filter((s) => s.note !== undefined).map((s) => `<li><b>${esc(s.label)}</b>: ${esc(s.note!)}</li>`);
  const m = results.machine;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-gateway benchmark report, ${esc(results.startedAt.slice(0, 10))}</title>
<style>${STYLE}</style></head>
<body><main>
<h1>edge-gateway: benchmark report</h1>
<p class="sub">${esc(results.startedAt)} · ${esc(`${m.cpuModel} × ${m.cores}, ${fmt(m.memoryGb, 1)} GB, ${m.os}`)} · Node ${esc(m.node)} · commit ${esc(m.commit)} · ${fmt(results.durationS)} s · ${results.settings.rounds} rounds${results.settings.quick ? ' (quick run)' : ''}</p>
<nav><a href="#throughput">Throughput</a> · <a href="#latency">Tail latency</a> · <a href="#memory">Memory</a> · <a href="#cold-start">Cold start</a> · <a href="#machine">Machine</a> · <a href="#method">Method</a></nav>
<h2>At a glance</h2>
${glance(summaries)}
${notes.length === 0 ? '' : `<ul class="notes">${notes.join('')}</ul>`}
${throughput(summaries, series)}
${latency(summaries, series)}
${memory(results, summaries, series)}
${coldStart(summaries, results, series)}
${machine(results)}
${methodHtml(results.settings)}
</main></body></html>
`;
}
