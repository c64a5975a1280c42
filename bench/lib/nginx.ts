/**
 * nginx as a reference proxy for bench/proxy.ts: one worker (the gateway is one process on one
 * core), keep-alive to the upstream, access log off, in the foreground in a folder of its own.
 * The scenario is left out when the machine has no nginx (Debian: `apt-get install nginx-light`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { freePort, pin, PROXY_CORE, tempFile, track, type Started } from './processes.js';

export const NGINX = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim() || undefined;

/** `workers` > 1: nginx's master and that many workers, on every core (bench/shared-state.ts compares boxes). */
export async function startNginx(upstream: number, workers = 1): Promise<Started> {
  if (NGINX === undefined) throw new Error('nginx is not installed');
  const port = await freePort();
  const conf = tempFile('nginx.conf', '');
  const dir = dirname(conf);
  mkdirSync(`${dir}/nginx-tmp`, { recursive: true });
  const text = `worker_processes ${workers};
pid ${dir}/nginx.pid;
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
  tempFile('nginx.conf', text);
  const proc = spawn(NGINX, ['-c', conf, '-g', workers === 1 ? 'daemon off; master_process off;' : 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
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
