/**
 * The Node peers (the undici proxy and the http-proxy-3 proxy of bench/lib/servers.ts) as plain
 * JavaScript. The other benches fork servers.ts under tsx, whose loader thread and on-the-fly
 * compile would count in the peers' memory and cold start but not in the gateway's (which runs
 * from dist/): the report measures what a user would deploy, so the peers run compiled too.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT, UNDER_TEST_FLAGS } from '../lib/processes.js';
import type { Launch } from './launch.js';

/**
 * In bench/.out/ (git-ignored) rather than a temporary folder: the compiled file imports undici
 * and http-proxy-3, which Node resolves from the node_modules above it.
 */
const OUT = join(ROOT, 'bench/.out/servers.mjs');

/** Compiles bench/lib/servers.ts (types stripped; it has no relative imports) into bench/.out/servers.mjs. */
export function compilePeerServers(): void {
  const source = readFileSync(join(ROOT, 'bench/lib/servers.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  mkdirSync(join(ROOT, 'bench/.out'), { recursive: true });
  writeFileSync(OUT, outputText);
}

/** A Node peer in `role` (a role of bench/lib/servers.ts) in front of `target`; it tells its port over IPC. */
export const peerLaunch = (role: string, target: string): Launch => ({
  command: process.execPath, args: [...UNDER_TEST_FLAGS, OUT, role, target], port: 'ipc',
});
