/** The machine and the software versions the report was measured with (results.ts `Machine`). */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { HAPROXY } from '../lib/haproxy.js';
import { NGINX } from '../lib/nginx.js';
import { PINNED, ROOT } from '../lib/processes.js';
import type { Machine } from './results.js';

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** The first line a command prints on stdout or stderr (nginx -v writes to stderr). */
function firstLine(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? process.platform;
  } catch {
    return process.platform;
  }
}

export function describeMachine(): Machine {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: osName(),
    kernel: release(),
    node: process.version,
    v8: process.versions.v8,
    undici: packageVersion('undici'),
    httpProxy3: packageVersion('http-proxy-3'),
    autocannon: packageVersion('autocannon'),
    nginx: NGINX === undefined ? null : firstLine(NGINX, ['-v']).replace(/^nginx version: /, ''),
    haproxy: HAPROXY === undefined ? null : firstLine(HAPROXY, ['-v']).replace(/ - https?:\S+$/, ''),
    commit: firstLine('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || 'unknown',
    pinned: PINNED,
  };
}
