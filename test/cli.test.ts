import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { configJsonSchemaText } from '../gateway/config/json-schema.js';
import { startUpstream, wasmFile, type Upstream } from './helpers/gateway.js';
import { guestWat } from './helpers/wat.js';

/** tsx's ESM loader, found through its package exports (not a guessed path under node_modules). */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'gateway/cli.ts');
const dir = mkdtempSync(join(tmpdir(), 'edge-gw-cli-'));

/** The environment of a child: without the test runner's NODE_OPTIONS. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

interface Exit { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs the CLI to completion (bounded). */
function run(args: string[], timeoutMs = 15_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd: ROOT, env: childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`edge-gateway ${args.join(' ')} did not exit in ${timeoutMs} ms`)); }, timeoutMs);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

type LogLine = Record<string, unknown> & { msg: string };

/** A running `edge-gateway start`: its JSON log lines, its addresses, and a bounded wait on both. */
class Running {
  readonly lines: LogLine[] = [];
  stderr = '';
  url = '';
  adminUrl = '';
  port = 0;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private waiters: Array<() => void> = [];
  private partial = '';

  constructor(config: string) {
    this.child = spawn(process.execPath, ['--import', TSX, CLI, 'start', '--config', config], { cwd: ROOT, env: childEnv() });
    this.child.stdout!.on('data', (c: Buffer) => {
      const text = this.partial + c.toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) if (line.trim() !== '') this.lines.push(JSON.parse(line) as LogLine);
      this.wake();
    });
    this.child.stderr!.on('data', (c: Buffer) => { this.stderr += c.toString('utf8'); this.wake(); });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => { resolve({ code, signal }); this.wake(); }));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first log line matching `pred`, waiting up to `timeoutMs` for it. */
  async waitFor(pred: (line: LogLine) => boolean, what: string, timeoutMs = 15_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(pred);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > deadline) {
        throw new Error(`no log line "${what}" (exit ${this.child.exitCode} ${this.child.signalCode}); stderr: ${this.stderr}; stdout: ${JSON.stringify(this.lines.map((l) => l.msg))}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, deadline - Date.now()) + 1);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  async started(): Promise<this> {
    const line = await this.waitFor((l) => l.msg === 'edge-gateway started', 'edge-gateway started');
    const listeners = line.listeners as Record<string, string>;
    this.port = Number(listeners.public.split(':').pop());
    this.url = `http://127.0.0.1:${this.port}`;
    this.adminUrl = `http://127.0.0.1:${String(line.admin).split(':').pop()}`;
    return this;
  }

  exitedYet(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  /** Wasm log lines of plugin `plugin`, in order. */
  wasm(plugin: string): string[] {
    return this.lines.filter((l) => l.source === 'wasm' && l.plugin === plugin).map((l) => l.msg);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * A filter that logs its VM and plugin configuration as received, and the end of every context:
 * `stream on_log`, `stream on_done`, `stream on_delete`, `root on_done`, `root on_delete`.
 * Root contexts are told apart by a marker byte at 0x800 + id, set when created with no parent.
 */
const ENDS_WAT = guestWat({
  imports: `(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "stream on_log")
  (data (i32.const 0x120) "stream on_done")
  (data (i32.const 0x140) "stream on_delete")
  (data (i32.const 0x160) "root on_done")
  (data (i32.const 0x180) "root on_delete")
  (func $is_root (param $ctx i32) (result i32) (i32.load8_u (i32.add (i32.const 0x800) (local.get $ctx))))
  (func $log_buffer (param $type i32) (param $size i32)
    (if (i32.eqz (local.get $size)) (then (return)))
    (if (i32.eqz (call $get_buffer (local.get $type) (i32.const 0) (local.get $size) (i32.const 0x10) (i32.const 0x14)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))))))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (i32.eqz (local.get $parent)) (then (i32.store8 (i32.add (i32.const 0x800) (local.get $ctx)) (i32.const 1)))))
  (func (export "proxy_on_vm_start") (param $ctx i32) (param $size i32) (result i32)
    (call $log_buffer (i32.const 6) (local.get $size)) (i32.const 1))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (call $log_buffer (i32.const 7) (local.get $size)) (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32) (i32.const 0))
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32) (i32.const 0))
  (func (export "proxy_on_log") (param $ctx i32)
    (drop (call $log (i32.const 2) (i32.const 0x100) (i32.const 13))))
  (func (export "proxy_on_done") (param $ctx i32) (result i32)
    (if (call $is_root (local.get $ctx))
      (then (drop (call $log (i32.const 2) (i32.const 0x160) (i32.const 12))))
      (else (drop (call $log (i32.const 2) (i32.const 0x120) (i32.const 14)))))
    (i32.const 1))
  (func (export "proxy_on_delete") (param $ctx i32)
    (if (call $is_root (local.get $ctx))
      (then (drop (call $log (i32.const 2) (i32.const 0x180) (i32.const 14))))
      (else (drop (call $log (i32.const 2) (i32.const 0x140) (i32.const 16))))))`,
});

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A gateway config on 127.0.0.1:0 (listener and admin) in front of `upstream`. */
function gatewayYaml(upstream: string, opts: { routes?: string; plugins?: string; drainTimeoutMs?: number } = {}): string {
  return `listeners:
  - { name: public, address: 127.0.0.1, port: 0 }
admin: { address: 127.0.0.1, port: 0 }
log: { level: info }
drainTimeoutMs: ${opts.drainTimeoutMs ?? 5000}
clusters:
  - { name: backend, endpoints: [ "${upstream}" ] }
plugins:
${opts.plugins ?? '  []'}
routes:
${opts.routes ?? '  - { name: api, match: { pathPrefix: /api }, cluster: backend }'}
`;
}

/** A GET with its own connection (no pooling), answered in full. */
function get(url: string): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

/** Whether a new TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => { socket.destroy(); resolve(false); });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('edge-gateway', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the version from package.json with --version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(await run(['--version'])).toEqual({ code: 0, signal: null, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('prints the usage with --help and exits 0', async () => {
    const out = await run(['--help']);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.stdout.split('\n').slice(0, 9)).toEqual([
      'edge-gateway: a Proxy-Wasm API gateway',
      '',
      'Usage:',
      '  edge-gateway start --config FILE [--demo-upstream PORT]',
      '  edge-gateway validate --config FILE',
      '  edge-gateway schema',
      '  edge-gateway --version',
      '  edge-gateway --help',
      '',
    ]);
  });

  it('exits 2 with the usage on stderr for a missing command, an unknown command or an unknown option', async () => {
    for (const args of [[], ['serve'], ['validate', '--nope']]) {
      const out = await run(args);
      expect(out.code).toBe(2);
      expect(out.stdout).toBe('');
      expect(out.stderr).toContain('Usage:\n  edge-gateway start --config FILE');
    }
  });

  it('exits 2 when validate or start is given no --config', async () => {
    expect(await run(['validate'])).toEqual({ code: 2, signal: null, stdout: '', stderr: 'edge-gateway validate: --config FILE is required\n' });
    expect(await run(['start'])).toEqual({ code: 2, signal: null, stdout: '', stderr: 'edge-gateway start: --config FILE is required\n' });
  });

  it('prints the JSON Schema of the configuration with schema', async () => {
    expect(await run(['schema'])).toEqual({ code: 0, signal: null, stdout: configJsonSchemaText(), stderr: '' });
  });

  it('validates a good configuration with exit 0', async () => {
    const file = writeConfig('good.yaml', gatewayYaml('http://127.0.0.1:9000'));
    expect(await run(['validate', '--config', file])).toEqual({ code: 0, signal: null, stdout: `${file}: valid\n`, stderr: '' });
  });

  it('rejects a bad configuration with exit 2 and every error on stderr', async () => {
    const file = writeConfig('bad.yaml', `listeners:
  - { name: public, port: 8080, tls: true }
clusters:
  - { name: backend, endpoints: [ "http://127.0.0.1:9000" ] }
services: [ token-sync ]
routes:
  - { name: a, cluster: backend }
  - { name: a, cluster: backend, filters: [ stamp ] }
  - { name: c, cluster: bakend }
`);
    expect(await run(['validate', '--config', file])).toEqual({
      code: 2, signal: null, stdout: '',
      stderr: [
        `invalid configuration ${file}:`,
        `  ${file}: listeners[0].tls: unknown field`,
        `  ${file}: routes[1].name: duplicate name "a"`,
        `  ${file}: services[0]: unknown plugin "token-sync"`,
        `  ${file}: routes[1].filters[0]: unknown plugin "stamp"`,
        `  ${file}: routes[2].cluster: unknown cluster "bakend"`,
        '',
      ].join('\n'),
    });
  });

  it('refuses to start with an invalid configuration: exit 2 and the errors on stderr', async () => {
    const file = writeConfig('bad-start.yaml', gatewayYaml('http://127.0.0.1:9000', { routes: '  - { name: api, cluster: bakend }' }));
    expect(await run(['start', '--config', file])).toEqual({
      code: 2, signal: null, stdout: '',
      stderr: `edge-gateway: invalid configuration ${file}:\n  ${file}: routes[0].cluster: unknown cluster "bakend"\n`,
    });
  });

  describe('start', () => {
    let upstream: Upstream;
    let filter: string;
    const running: Running[] = [];
    /** Responses the upstream holds until the test releases them (for requests to /slow). */
    const held: ServerResponse[] = [];
    let arrivedSlow: () => void = () => undefined;

    beforeAll(async () => {
      filter = wasmFile(ENDS_WAT, 'ends');
      upstream = await startUpstream((req, res) => {
        if (req.url === '/api/slow') {
          held.push(res);
          arrivedSlow();
          return;
        }
        const body = `upstream saw ${req.url}`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    afterEach(async () => {
      for (const r of running.splice(0)) await r.stop();
      for (const res of held.splice(0)) res.destroy();
    });
    afterAll(() => upstream.close());

    function launch(name: string, yaml: string): Promise<Running> {
      const r = new Running(writeConfig(name, yaml));
      running.push(r);
      return r.started();
    }

    it('serves requests on the ports it logs, and hands the guest its configuration as JSON text or as is', async () => {
      const gw = await launch('serve.yaml', gatewayYaml(upstream.url, {
        plugins: `  - name: ends
    module: ${filter}
    configuration: { greeting: hi, n: 1 }
    vmConfiguration: "verbatim: { not json }"`,
        routes: '  - { name: api, match: { pathPrefix: /api }, cluster: backend, filters: [ ends ] }',
      }));
      expect(await get(`${gw.url}/api/one`)).toMatchObject({ status: 200, body: 'upstream saw /api/one' });
      expect((await get(`${gw.url}/other`)).status).toBe(404);
      expect(await get(`${gw.adminUrl}/readyz`)).toMatchObject({ status: 200, body: 'ready\n' });
      expect(gw.wasm('ends').slice(0, 2)).toEqual(['verbatim: { not json }', '{"greeting":"hi","n":1}']);
    });

    it('reloads a valid changed configuration on SIGHUP: the new route answers', async () => {
      const config = writeConfig('reload.yaml', gatewayYaml(upstream.url));
      const gw = new Running(config);
      running.push(gw);
      await gw.started();
      expect((await get(`${gw.url}/new/x`)).status).toBe(404);

      writeFileSync(config, gatewayYaml(upstream.url, {
        routes: '  - { name: api, match: { pathPrefix: /api }, cluster: backend }\n  - { name: new, match: { pathPrefix: /new }, cluster: backend }',
      }));
      gw.signal('SIGHUP');
      await gw.waitFor((l) => l.msg === 'configuration reloaded', 'configuration reloaded');
      expect(await get(`${gw.url}/new/x`)).toMatchObject({ status: 200, body: 'upstream saw /new/x' });
      expect(await get(`${gw.url}/api/y`)).toMatchObject({ status: 200, body: 'upstream saw /api/y' });
    });

    it('rejects an invalid configuration on SIGHUP with its errors logged, and keeps serving the old one', async () => {
      const config = writeConfig('reload-bad.yaml', gatewayYaml(upstream.url));
      const gw = new Running(config);
      running.push(gw);
      await gw.started();

      writeFileSync(config, gatewayYaml(upstream.url, { routes: '  - { name: api, match: { pathPrefix: /api }, cluster: bakend }' }));
      gw.signal('SIGHUP');
      const line = await gw.waitFor((l) => l.msg.startsWith('reload rejected'), 'reload rejected');
      expect(line.level).toBe(50);
      expect(line.file).toBe(config);
      expect(line.problems).toEqual(['routes[0].cluster: unknown cluster "bakend"']);
      expect(line.msg).toBe(`reload rejected, the running configuration keeps serving: invalid configuration ${config}:\n  ${config}: routes[0].cluster: unknown cluster "bakend"`);
      expect(await get(`${gw.url}/api/still`)).toMatchObject({ status: 200, body: 'upstream saw /api/still' });
      expect(gw.lines.some((l) => l.msg === 'configuration reloaded')).toBe(false);
    });

    it('rejects on SIGHUP a configuration whose module does not compile, and keeps serving the old one', async () => {
      const config = writeConfig('reload-module.yaml', gatewayYaml(upstream.url));
      const gw = new Running(config);
      running.push(gw);
      await gw.started();

      const junk = join(dir, 'junk.wasm');
      writeFileSync(junk, 'this is not WebAssembly');
      writeFileSync(config, gatewayYaml(upstream.url, {
        plugins: `  - { name: junk, module: ${junk} }`,
        routes: '  - { name: api, match: { pathPrefix: /api }, cluster: backend, filters: [ junk ] }',
      }));
      gw.signal('SIGHUP');
      const line = await gw.waitFor((l) => l.msg.startsWith('reload rejected'), 'reload rejected');
      expect(line.level).toBe(50);
      expect(line.msg).toContain('plugins[0] (junk): ');
      expect(await get(`${gw.url}/api/still`)).toMatchObject({ status: 200, body: 'upstream saw /api/still' });
    });

    it('drains on SIGTERM: the request in flight completes, new connections are refused, every context ends, exit 0', async () => {
      const gw = await launch('drain.yaml', gatewayYaml(upstream.url, {
        plugins: `  - { name: ends, module: ${filter} }`,
        routes: '  - { name: api, match: { pathPrefix: /api }, cluster: backend, filters: [ ends ] }',
      }));
      const arrived = new Promise<void>((r) => { arrivedSlow = r; });
      const inflight = get(`${gw.url}/api/slow`);
      await arrived;

      gw.signal('SIGTERM');
      await gw.waitFor((l) => l.msg === 'draining', 'draining');
      expect(await get(`${gw.adminUrl}/readyz`)).toMatchObject({ status: 503, body: 'not ready: draining\n' });
      expect(await refused(gw.port)).toBe(true);
      expect(gw.exitedYet()).toBe(false);

      const body = 'slow answer';
      held[0].writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      held[0].end(body);
      expect(await inflight).toMatchObject({ status: 200, body });
      expect(await gw.exited).toEqual({ code: 0, signal: null });
      expect(gw.wasm('ends'), JSON.stringify(gw.lines)).toEqual(['stream on_log', 'stream on_done', 'stream on_delete', 'root on_done', 'root on_delete']);
      expect(gw.lines.at(-1)!.msg).toBe('edge-gateway stopped');
    });

    it('closes what is still in flight after drainTimeoutMs, still ends every context, and exits 0', async () => {
      const gw = await launch('drain-timeout.yaml', gatewayYaml(upstream.url, {
        drainTimeoutMs: 300,
        plugins: `  - { name: ends, module: ${filter} }`,
        routes: '  - { name: api, match: { pathPrefix: /api }, cluster: backend, filters: [ ends ] }',
      }));
      const arrived = new Promise<void>((r) => { arrivedSlow = r; });
      const inflight = get(`${gw.url}/api/slow`).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code);
      await arrived;

      gw.signal('SIGTERM');
      expect(await gw.exited).toEqual({ code: 0, signal: null });
      expect(await inflight).toBe('ECONNRESET');
      expect(gw.wasm('ends'), JSON.stringify(gw.lines)).toEqual(['stream on_log', 'stream on_done', 'stream on_delete', 'root on_done', 'root on_delete']);
      expect(gw.lines.at(-1)!.msg).toBe('edge-gateway stopped');
    });
  });
});
