/**
 * docker-compose.yml as the README's two-node quick start uses it: valid for docker-compose, two
 * gateway nodes on config/fleet.yaml with distinct --node-id beside one Redis, and the tests.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Service { command?: string[]; depends_on?: Record<string, unknown>; ports?: string[] }

describe('docker-compose.yml', () => {
  it('is valid for docker-compose (config -q)', () => {
    const checked = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { encoding: 'utf8' });
    expect(checked.error).toBeUndefined();
    expect({ status: checked.status, stderr: checked.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('runs two gateway nodes on config/fleet.yaml with distinct node ids, after Redis and the build', () => {
    const checked = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { encoding: 'utf8' });
    const services = (parse(checked.stdout) as { services: Record<string, Service> }).services;
    expect(Object.keys(services).sort()).toEqual(['build', 'edge-a', 'edge-b', 'redis', 'tests']);
    const ids = ['edge-a', 'edge-b'].map((name) => {
      const command = services[name].command!;
      expect(command.slice(0, 5)).toEqual(['node', 'dist/gateway/cli.js', 'start', '--config', 'config/fleet.yaml']);
      expect(Object.keys(services[name].depends_on ?? {}).sort()).toEqual(['build', 'redis']);
      return command[command.indexOf('--node-id') + 1];
    });
    expect(new Set(ids).size).toBe(2);
    const fleet = parse(readFileSync('config/fleet.yaml', 'utf8')) as { sharedState: { backend: string; url: string } };
    expect(fleet.sharedState).toMatchObject({ backend: 'redis', url: 'redis://redis:6379' });
  });
});
