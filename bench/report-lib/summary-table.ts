/** The summary as a markdown table: what bench/report.ts prints at the end, and what bench/README.md quotes. */
import { fmt, LATENCY_PERCENTILES } from '../lib/stats.js';
import type { TargetSummary } from './summary.js';

const P99 = LATENCY_PERCENTILES.indexOf(0.99);
const P999 = LATENCY_PERCENTILES.indexOf(0.999);

const cell = (text: string): string => text.replace(/\|/g, '\\|');

export function markdownTable(rows: readonly TargetSummary[]): string {
  const head = [
    '| target | req/s | ÷ gateway | ÷ undici | CPU µs/req | CPU ÷ gateway | p50 / p99 / p99.9 ms | RSS idle → under load (peak) MB | cold start p50 (min–max) ms | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const lines = rows.map((r) => {
    if (r.status !== 'measured') return `| ${cell(r.label)} | ${cell(r.status)} | | | | | | | | |`;
    const lat = `${fmt(r.latencyMs[0], 2)} / ${fmt(r.latencyMs[P99], 2)} / ${fmt(r.latencyMs[P999], 2)}`;
    const rss = `${fmt(r.idleRssMb)} → ${fmt(r.rssUnderLoad.median)} (${fmt(r.rssUnderLoad.peak)})`;
    const cold = `${fmt(r.coldStart.p50)} (${fmt(r.coldStart.min)}–${fmt(r.coldStart.max)})`;
    return `| ${cell(r.label)}${r.pinned ? '' : ' ¹'} | ${fmt(r.reqPerSec)} | ${fmt(r.vsGateway.req, 2)} | ${fmt(r.vsUndici.req, 2)} | ${fmt(r.cpuUsPerReq, 1)}`
      + ` | ${fmt(r.vsGateway.cpu, 2)} | ${lat} | ${rss} | ${cold} | ${r.errors} |`;
  });
  const footnote = rows.some((r) => !r.pinned && r.status === 'measured') ? ['', '¹ not pinned: runs on both cores, beside the upstream and the load generator'] : [];
  return [...head, ...lines, ...footnote].join('\n');
}
