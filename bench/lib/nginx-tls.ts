/**
 * nginx as the reference of the transport bench (bench/transport.ts): one worker, no master,
 * pinned to PROXY_CORE like the gateway, in front of the same upstream with keep-alive (as
 * bench/lib/nginx.ts), with two listeners: TLS with the bench's certificate (ALPN h2 and
 * http/1.1), and h2c with prior knowledge. The settings that differ from nginx's defaults are
 * the gateway's: 100 concurrent streams, TLS 1.2 and 1.3, no limit on requests per connection.
 * A third listener serves plain HTTP/1.1, the reference for what TLS costs.
 *
 * `http2` is a `listen` parameter up to nginx 1.25.0 and a directive (`http2 on;`) from 1.25.1;
 * the version is read from `nginx -v`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Certificate } from './certificate.js';
import { NGINX } from './nginx.js';
import { freePort, pin, PROXY_CORE, tempFile, track, type Started } from './processes.js';
import { https1Get } from './tls-requests.js';

/** nginx's version, e.g. [1, 22, 1]; undefined without nginx. */
export function nginxVersion(): number[] | undefined {
  if (NGINX === undefined) return undefined;
  const out = spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr;
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(out);
  return m === null ? undefined : m.slice(1).map(Number);
}

export interface NginxTls extends Started {
  /** The h2c (prior knowledge) port and the plain HTTP/1.1 one; `port` is the TLS one. */
  h2c: number;
  http: number;
}

export async function startNginxTls(upstream: number, cert: Certificate): Promise<NginxTls> {
  const version = nginxVersion();
  if (NGINX === undefined || version === undefined) throw new Error('nginx is not installed');
  const directive = version[0] > 1 || (version[0] === 1 && (version[1] > 25 || (version[1] === 25 && version[2] >= 1)));
  const [port, h2c, http] = [await freePort(), await freePort(), await freePort()];
  const conf = tempFile('nginx-tls.conf', '');
  const dir = `${dirname(conf)}/nginx-tls`;
  mkdirSync(dir, { recursive: true });
  const text = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${upstream}; keepalive 128; }
  server {
    listen 127.0.0.1:${port} ssl${directive ? '' : ' http2'};
    listen 127.0.0.1:${h2c}${directive ? '' : ' http2'};
    listen 127.0.0.1:${http};
    ${directive ? 'http2 on;' : ''}
    ssl_certificate ${cert.certFile};
    ssl_certificate_key ${cert.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_concurrent_streams 100;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
  tempFile('nginx-tls.conf', text);
  const proc = spawn(NGINX, ['-c', conf, '-g', 'daemon off; master_process off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  track(proc);
  pin(proc.pid!, PROXY_CORE);
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`nginx exited with ${proc.exitCode}`);
    const ok = await https1Get(port, '/', cert.pem).then((r) => r.status === 200, () => false);
    if (ok) return { proc, port, h2c, http };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not answer over TLS within 10 s');
}
