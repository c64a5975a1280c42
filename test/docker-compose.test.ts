/**
 * docker-compose.yml as the README's two-node quick start uses it: valid for docker-compose, two
 * gateway nodes of the image on config/fleet.yaml with distinct --node-id beside one Redis and
 * the demo upstream, and the tests.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Service { command?: string[]; depends_on?: Record<string, unknown>; ports?: string[]; image?: string; build?: { context: string }; stop_grace_period?: string }

describe('docker-compose.yml', () => {
  it('is valid for docker-compose (config -q)', () => {
    const checked = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { encoding: 'utf8' });
    expect(checked.error).toBeUndefined();
    expect({ status: checked.status, stderr: checked.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('runs two gateway nodes of the image on config/fleet.yaml with distinct ids, after Redis and the demo upstream they proxy to', () => {
    const checked = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { encoding: 'utf8' });
    const services = (parse(checked.stdout) as { services: Record<string, Service> }).services;
    expect(Object.keys(services).sort()).toEqual(['edge-a', 'edge-b', 'redis', 'tests', 'upstream']);
    const ids = ['edge-a', 'edge-b'].map((name) => {
      const node = services[name];
      expect(node.image).toBe('edge-gateway:local');
      expect(node.build?.context).toBe(process.cwd());
      expect(node.command!.slice(0, 3)).toEqual(['start', '--config', 'config/fleet.yaml']);
      expect(Object.keys(node.depends_on ?? {}).sort()).toEqual(['redis', 'upstream']);
      // Longer than the drain: 3 s of /readyz 503, then up to 10 s for requests in flight.
      expect(node.stop_grace_period).toBe('20s');
      return node.command![node.command!.indexOf('--node-id') + 1];
    });
    expect(new Set(ids).size).toBe(2);
    expect(services.upstream.image).toBe('edge-gateway:local');
    expect(services.upstream.command).toEqual(['demo-upstream', '--port', '9000', '--address', '0.0.0.0']);
    const fleet = parse(readFileSync('config/fleet.yaml', 'utf8')) as { sharedState: { backend: string; url: string }; clusters: Array<{ endpoints: string[] }>; drainDelayMs: number };
    expect(fleet.sharedState).toMatchObject({ backend: 'redis', url: 'redis://redis:6379' });
    expect(fleet.clusters[0].endpoints).toEqual(['http://upstream:9000']);
    expect(fleet.drainDelayMs).toBe(3000);
  });
});
