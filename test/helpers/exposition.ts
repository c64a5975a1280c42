/**
 * A parser of the Prometheus text format (0.0.4), enough for what prom-client writes: the tests
 * read /metrics through it and assert on samples, not on substrings. A line it cannot read throws.
 */
export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Exposition { samples: Sample[]; help: Map<string, string>; type: Map<string, string> }

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], help: new Map(), type: new Map() };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      (meta[1] === 'HELP' ? out.help : out.type).set(meta[2], meta[3]);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/s.exec(line); // s: a label value may hold a raw CR
    if (sample === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = unescapeLabel(m[2]);
    out.samples.push({ name: sample[1], labels, value: sample[3] === '+Inf' ? Infinity : Number(sample[3]) });
  }
  return out;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** The value of the one sample `name{labels}`, or undefined. */
export function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return e.samples.find((s) => s.name === name && sameLabels(s.labels, labels))?.value;
}

/** Every sample of `name` as `{labels} value` strings, sorted: exact assertions on a whole family. */
export function series(e: Exposition, name: string): string[] {
  return e.samples.filter((s) => s.name === name)
    .map((s) => `${JSON.stringify(Object.fromEntries(Object.entries(s.labels).sort()))} ${s.value}`).sort();
}
