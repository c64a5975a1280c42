import { writeFileSync, renameSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../helpers/gateway.js';
import { GatewayProcess, writeConfigFile } from '../helpers/gateway-process.js';
import { eventually } from '../helpers/eventually.js';
import { sha, stampVersion, versionFile } from '../helpers/versions.js';

const TOKEN = 'test-token-0123456789abcdef';
const V1 = stampVersion('version-one!');
const V2 = stampVersion('version-two!');

let upstream: Upstream;
const processes: GatewayProcess[] = [];
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  for (const gw of processes) await gw.stop();
  upstream.server.closeAllConnections();
  await new Promise((resolve) => upstream.server.close(resolve));
});

async function start(module: unknown): Promise<GatewayProcess> {
  const gw = await GatewayProcess.start(writeConfigFile({
    admin: { address: '127.0.0.1', port: 0, token: TOKEN },
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'stamp', module }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['stamp'] }],
  }));
  processes.push(gw);
  return gw;
}

async function servedBy(gw: GatewayProcess): Promise<string | null> {
  const res = await fetch(`${gw.url}/x`);
  await res.text();
  return res.headers.get('x-served-by');
}

describe('a module swap under load, in a gateway process', () => {
  it('fails no request while the module is swapped 30 times', async () => {
    const gw = await start(versionFile(V1, 'v1'));
    let stop = false;
    const outcomes = { ok: 0, failed: [] as string[], versions: new Set<string>() };
    const client = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await fetch(`${gw.url}/load`, { headers: { 'user-agent': 'swap-test', accept: '*/*' } });
          await res.text();
          if (res.status === 200) outcomes.ok++;
          else outcomes.failed.push(`status ${res.status}`);
          outcomes.versions.add(res.headers.get('x-served-by') ?? 'none');
        } catch (err) {
          outcomes.failed.push((err as Error).message);
        }
      }
    };
    const clients = Array.from({ length: 8 }, client);
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${gw.adminUrl}/plugins/stamp/module`, {
        method: 'PUT', body: Buffer.from(i % 2 === 0 ? V2 : V1), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/wasm' },
      });
      expect(res.status).toBe(200);
      await res.text();
      await sleep(20);
    }
    stop = true;
    await Promise.all(clients);
    expect(outcomes.failed).toEqual([]);
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.versions).toEqual(new Set(['version-one!', 'version-two!']));
    expect(gw.alive()).toBe(true);
  });
});

describe('watch mode', () => {
  it('swaps to a watched file when it changes, and never loads a half-written one', async () => {
    const file = versionFile(V1, 'watched');
    const gw = await start({ file, watch: true });
    expect(await servedBy(gw)).toBe('version-one!');
    writeFileSync(file, V2);
    expect(await eventually(async () => (await servedBy(gw)) === 'version-two!', 5000)).toBe(true);
    await gw.waitFor((l) => l.msg === `plugin stamp: watch: module ${sha(V2)} (${file}) serves new streams`, 'the watch swap line', 5000);
    // Half a module stays on disk: it is skipped, and the running version keeps serving.
    writeFileSync(file, V1.subarray(0, Math.floor(V1.length / 2)));
    await gw.waitFor((l) => l.msg.startsWith(`plugin stamp: ${file} changed but is not loaded`), 'the skip line', 5000);
    expect(await servedBy(gw)).toBe('version-two!');
    // Replaced by rename (how deploy tools write): the whole new module is loaded.
    const next = versionFile(V1, 'next');
    renameSync(next, file);
    expect(await eventually(async () => (await servedBy(gw)) === 'version-one!', 5000)).toBe(true);
  });
});
