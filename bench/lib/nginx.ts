/**
 * nginx as a reference proxy for bench/proxy.ts and bench/report.ts: one worker (the gateway is one process on one
 * core), keep-alive to the upstream, access log off, in the foreground in a folder of its own.
 * The scenario is left out when the machine has no nginx (Debian: `apt-get install nginx-light`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { freePort, pin, PROXY_CORE, tempFile, track, type Started } from './processes.js';

export const NGINX = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim() || undefined;

/**
 * The configuration text: `workers` worker processes, a proxy on 127.0.0.1:`port` to the
 * upstream with keep-alive, its pid, error log and temporary files in `dir` (the pid file named
 * `name`.pid, so that two instances can share a folder).
 */
export function nginxConfig(port: number, upstream: number, workers: number, dir: string, name = 'nginx'): string {
  mkdirSync(`${dir}/nginx-tmp`, { recursive: true });
  return `worker_processes ${workers};
pid ${dir}/${name}.pid;
error_log ${dir}/nginx-error.log error;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  upstream backend { server 127.0.0.1:${upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
}
`;
}

/** nginx's arguments: in the foreground, and with one worker without a master process (the whole proxy in one process). */
export const nginxArgs = (conf: string, workers: number): string[] =>
  ['-c', conf, '-g', workers === 1 ? 'daemon off; master_process off;' : 'daemon off;'];

/** `workers` > 1: nginx's master and that many workers, on every core (bench/shared-state.ts compares boxes). */
export async function startNginx(upstream: number, workers = 1): Promise<Started> {
  if (NGINX === undefined) throw new Error('nginx is not installed');
  const port = await freePort();
  const conf = tempFile('nginx.conf', '');
  tempFile('nginx.conf', nginxConfig(port, upstream, workers, dirname(conf)));
  const proc = spawn(NGINX, nginxArgs(conf, workers), { stdio: ['ignore', 'ignore', 'inherit'] });
  track(proc);
  if (workers === 1) pin(proc.pid!, PROXY_CORE);
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`nginx exited with ${proc.exitCode}`);
    const ok = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    if (ok) return { proc, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not answer within 5 s');
}
