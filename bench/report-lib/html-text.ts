/** The fixed parts of the report page: its style sheet and the Method section. */
import { CLIENT_HEADERS } from '../lib/client-headers.js';
import type { ReportSettings } from './results.js';

/** System fonts only: the page loads nothing from elsewhere. */
export const STYLE = `
body { margin: 0; background: #fff; color: #1d1d1f; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.sub, nav { color: #555; font-size: 13px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, .facts th, .facts td { text-align: left; }
td:not(:first-child) { white-space: nowrap; }
thead th { background: #f4f4f6; }
tr.missing td { color: #777; font-style: italic; text-align: left; }
.flag { font-size: 11px; color: #a15c00; border: 1px solid #e0b070; border-radius: 3px; padding: 0 3px; }
svg.chart { width: 100%; height: auto; display: block; margin: 8px 0; }
svg.chart text { font: 12px system-ui, sans-serif; fill: #333; }
svg.chart .tick { fill: #666; font-size: 11px; }
svg.chart .missing { fill: #888; font-style: italic; }
svg.chart .grid { stroke: #e6e6e6; }
svg.chart .mark { stroke: #999; stroke-dasharray: 4 3; }
svg.chart .line { stroke-width: 2; }
svg.chart .dot { fill-opacity: 0.65; }
svg.chart .median { stroke: #111; stroke-width: 2; }
.legend { font-size: 12px; margin: 0 0 8px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; border-radius: 2px; }
.notes { font-size: 13px; color: #444; }
code { font-size: 13px; }
`;

export function methodHtml(s: ReportSettings): string {
  return `<h2 id="method">Method</h2>
<p>Every target stands in front of the same upstream, a <code>node:http</code> server answering a fixed 1 KB JSON body, and is started once, checked (the upstream must see the client's headers, and for the filters the headers that prove each did its work) and warmed up with ${s.processWarmup.toLocaleString('en-US')} requests (the edge function, which answers a few hundred a second, with ${s.functionWarmup.toLocaleString('en-US')}), because a fresh Node process runs its request path interpreted for its first thousands of requests. The processes under test are pinned to core 0; the upstream, the load generator and this driver run on core 1, so the proxy never shares its core with the load it serves. <code>workers: 2</code> cannot be pinned to one core: its primary and two workers run on both, beside the upstream and the load generator.</p>
<p>Then ${s.rounds} rounds: in each, every target gets ${s.warmupS} s of unmeasured load and ${s.durationS} s measured, in an order rotated by one per round (ABAB…), so that every target meets every stretch of a noisy machine. The load generator is autocannon in a process of its own, ${s.connections} connections, no pipelining, each request carrying ${Object.keys(CLIENT_HEADERS).length} browser-like headers (~1.2 KB) plus what the shipped chain needs to let it through.</p>
<p>CPU time per request is utime + stime of the target's process tree (from <code>/proc</code>) over the measured part, divided by its requests; it is the main figure because it moves far less with contention than requests per second. Ratios against the no-filter gateway and against the bare undici proxy are medians of per-round ratios, both sides of each from the same round. Latency percentiles come from every 2xx response time the load process records (autocannon's own histogram keeps whole milliseconds, too coarse on loopback).</p>
<p>Cold starts are timed from spawn() to the end of the first 200 answered through the new process, ${s.coldStarts} per target, interleaved, before any load; the Node peers run compiled to JavaScript, as the gateway runs from <code>dist/</code>. Resident memory is sampled from <code>/proc</code> every ${s.rssIntervalMs} ms. On a 2-core virtual machine shared with other work, absolute figures move by 10–20% between runs; the ratios move less.</p>`;
}
