/**
 * The Dockerfile as a multi-arch, non-root, production-only image whose health check really asks
 * /readyz: no engine runs here, so the file is read stage by stage, and the HEALTHCHECK command
 * itself is run with this machine's Node against a real gateway.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, type TestGateway } from './helpers/gateway.js';

const dockerfile = readFileSync('Dockerfile', 'utf8').replace(/\\\n\s*/g, '');
const instructions = dockerfile.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
/** Each stage's instructions, from its FROM. */
const stages = instructions.reduce<string[][]>((all, line) => {
  if (line.startsWith('FROM ')) all.push([]);
  all.at(-1)?.push(line);
  return all;
}, []);
const final = stages.at(-1)!;

/** The HEALTHCHECK's command, as the exec form's JSON array. */
const healthCommand = JSON.parse(/^HEALTHCHECK .*?CMD (\[.*\])$/m.exec(instructions.join('\n'))![1]) as string[];

/** Runs the health check (asynchronously: the gateway under test answers in this process) and resolves with its exit code. */
function healthCheck(admin: string): Promise<number | null> {
  const [cmd, ...args] = healthCommand;
  expect(cmd).toBe('node');
  const child = spawn(process.execPath, args, { env: { ...process.env, EDGE_GATEWAY_ADMIN: admin }, timeout: 10_000, stdio: 'ignore' });
  return new Promise((resolve) => child.on('close', (code) => resolve(code)));
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup.length = 0;
});

describe('the Dockerfile', () => {
  it('builds on the builder\'s platform and runs on a multi-arch base image, unpinned to one CPU', () => {
    expect(stages).toHaveLength(3);
    expect(stages[0][0]).toBe('FROM --platform=$BUILDPLATFORM node:20-bookworm-slim AS build');
    for (const stage of stages.slice(1)) expect(stage[0]).toMatch(/^FROM node:20-bookworm-slim( AS [a-z-]+)?$/);
  });

  it('installs production packages only into the image it runs, and copies what the build made', () => {
    expect(stages[1]).toContain('RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force');
    expect(final.filter((l) => l.startsWith('RUN npm'))).toEqual([]);
    expect(final).toContain('COPY --from=production-dependencies /app/node_modules ./node_modules');
    expect(final).toContain('COPY --from=build /app/dist ./dist');
    expect(final).toContain('COPY --from=build /app/filters/dist ./filters/dist');
  });

  it('copies only paths that exist in the repository, and leaves what is built out of the context', () => {
    const sources = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.filter((p) => !existsSync(p))).toEqual([]);
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'filters/dist', '.git']));
  });

  it('runs the gateway as the unprivileged node user, with nothing run as root after the switch', () => {
    const user = final.indexOf('USER node');
    expect(user).toBeGreaterThan(0);
    expect(final.slice(user + 1).filter((l) => l.startsWith('RUN ') || l.startsWith('USER '))).toEqual([]);
    expect(final.at(-2)).toBe('ENTRYPOINT ["node", "dist/gateway/cli.js"]');
    expect(final.at(-1)).toBe('CMD ["start", "--config", "config/fleet.yaml"]');
  });

  it('reports healthy exactly while /readyz answers 200: not while draining, not when nothing answers', async () => {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw: TestGateway = await startGateway({ drainDelayMs: 2000, clusters: [{ name: 'b', endpoints: [upstream.url] }], routes: [{ name: 'all', cluster: 'b' }] });
    cleanup.push(gw.close);
    expect(await healthCheck(gw.adminUrl)).toBe(0);
    const stopping = gw.gateway.shutdown();
    expect((await fetch(`${gw.adminUrl}/readyz`)).status).toBe(503);
    expect(await healthCheck(gw.adminUrl)).toBe(1);
    await stopping;
    expect(await healthCheck(gw.adminUrl)).toBe(1);
  });
});
