/** The package's version, read once from its package.json (for `--version` and build_info). */
import { readFileSync } from 'node:fs';

/** package.json is one level up from gateway/version.ts, two from dist/gateway/version.js. */
function readVersion(): string {
  const candidates = ['../package.json', '../../package.json'].map((p) => new URL(p, import.meta.url));
  for (const url of candidates) {
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'edge-gateway') return pkg.version;
    } catch {
      // not this one
    }
  }
  throw new Error('package.json of edge-gateway not found');
}

export const VERSION = readVersion();
