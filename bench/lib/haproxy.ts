/**
 * HAProxy as a reference proxy, set up like nginx.ts's: one thread (the gateway is one process on
 * one core), keep-alive to the upstream, no logs, in the foreground. Left out where the machine
 * has no haproxy (Debian: `apt-get install haproxy`).
 */
import { spawnSync } from 'node:child_process';

export const HAPROXY = spawnSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).stdout.trim() || undefined;

/**
 * The configuration text: a proxy on 127.0.0.1:`port` to the upstream. `http-reuse always` keeps
 * the upstream connections open across client connections, as nginx's `keepalive 128` does, and
 * `option forwardfor` adds x-forwarded-for as nginx's configuration does.
 */
export function haproxyConfig(port: number, upstream: number): string {
  return `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  http-reuse always
frontend bench
  bind 127.0.0.1:${port}
  option forwardfor
  default_backend upstream
backend upstream
  server upstream 127.0.0.1:${upstream} maxconn 128
`;
}

/** haproxy's arguments: the configuration file, in the foreground (-db). */
export const haproxyArgs = (conf: string): string[] => ['-f', conf, '-db'];
