import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { configJsonSchemaText } from '../gateway/config/json-schema.js';
import { startUpstream, wasmFile, type Upstream } from './helpers/gateway.js';
import { encodePairs } from '../gateway/abi/pairs.js';
import { guestWat, watToBytes } from './helpers/wat.js';

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

/** A module that is valid WebAssembly with memory and an allocator, but no proxy_abi_version_* export. */
const NO_MARKER_WAT = `(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1)))`;

/** A filter whose on_vm_start says why at critical level and returns false. */
const REFUSE_VM_START_WAT = guestWat({
  imports: '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))',
  body: `
  (data (i32.const 0x100) "vm start refused")
  (func (export "proxy_on_vm_start") (param $ctx i32) (param $size i32) (result i32)
    (drop (call $log (i32.const 5) (i32.const 0x100) (i32.const 16))) (i32.const 0))`,
});

/** WAT string escape of some bytes. */
const escaped = (bytes: Uint8Array): string => [...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');

/**
 * A service that sets a 5 ms tick and, from on_configure, sends an http_call (60 s timeout) to
 * cluster "backend": a validation that left either running would not exit.
 */
const HEADERS = encodePairs([':method', 'GET', ':path', '/hold', ':authority', 'backend']);
const HOLDING_SERVICE_WAT = guestWat({
  imports: `(import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))`,
  body: `
  (data (i32.const 0x100) "backend")
  (data (i32.const 0x200) "${escaped(HEADERS)}")
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (drop (call $call (i32.const 0x100) (i32.const 7) (i32.const 0x200) (i32.const ${HEADERS.length})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 60000) (i32.const 0x18)))
    (drop (call $tick (i32.const 5)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param $ctx i32))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32))`,
});

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A gateway config on 127.0.0.1:0 (listener and admin) in front of `upstream`. */
function gatewayYaml(upstream: string, opts: { routes?: string; plugins?: string; drainTimeoutMs?: number; drainDelayMs?: number } = {}): string {
  return `listeners:
  - { name: public, address: 127.0.0.1, port: 0 }
admin: { address: 127.0.0.1, port: 0 }
log: { level: info }
drainTimeoutMs: ${opts.drainTimeoutMs ?? 5000}
drainDelayMs: ${opts.drainDelayMs ?? 0}
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
    expect(out.stdout.split('\n').slice(0, 10)).toEqual([
      'edge-gateway: a Proxy-Wasm API gateway',
      '',
      'Usage:',
      '  edge-gateway start --config FILE [--node-id ID] [--workers N|auto] [--demo-upstream PORT]',
      '  edge-gateway validate --config FILE',
      '  edge-gateway schema',
      '  edge-gateway demo-upstream [--port PORT] [--address ADDRESS]',
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

  it('exits 2 for a --node-id with spaces or nothing in it, naming it', async () => {
    const file = writeConfig('node-id.yaml', gatewayYaml('http://127.0.0.1:9000'));
    for (const id of ['', 'edge a']) {
      expect(await run(['start', '--config', file, '--node-id', id])).toEqual({
        code: 2, signal: null, stdout: '', stderr: `edge-gateway start: --node-id must be 1 to 128 printable characters without spaces, not "${id}"\n`,
      });
    }
  });

  it('exits 2 for a --workers that is not a count from 1 to 256 or auto, naming it', async () => {
    const file = writeConfig('workers.yaml', gatewayYaml('http://127.0.0.1:9000'));
    for (const workers of ['0', 'two', '1.5']) {
      expect(await run(['start', '--config', file, '--workers', workers])).toEqual({
        code: 2, signal: null, stdout: '', stderr: `edge-gateway start: --workers must be a number from 1 to 256 or auto, not "${workers}"\n`,
      });
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
    expect(await run(['validate', '--config', file])).toEqual({ code: 0, signal: null, stdout: `${file}: valid: 0 plugins started, 1 route\n`, stderr: '' });
  });

  it('rejects a bad configuration with exit 2 and every error on stderr', async () => {
    const file = writeConfig('bad.yaml', `listeners:
  - { name: public, port: 8080, tcp: true }
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
        `  ${file}: listeners[0].tcp: unknown field`,
        `  ${file}: routes[1].name: duplicate name "a"`,
        `  ${file}: services[0]: unknown plugin "token-sync"`,
        `  ${file}: routes[1].filters[0]: unknown plugin "stamp"`,
        `  ${file}: routes[2].cluster: unknown cluster "bakend"`,
        '',
      ].join('\n'),
    });
  });

  it('refuses to start with an invalid configuration: exit 2, the errors on stderr and one fatal JSON line on stdout', async () => {
    const file = writeConfig('bad-start.yaml', gatewayYaml('http://127.0.0.1:9000', { routes: '  - { name: api, cluster: bakend }' }));
    const { stdout, ...rest } = await run(['start', '--config', file]);
    expect(rest).toEqual({
      code: 2, signal: null,
      stderr: `edge-gateway: invalid configuration ${file}:\n  ${file}: routes[0].cluster: unknown cluster "bakend"\n`,
    });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(typeof lines[0].time).toBe('string');
    expect({ ...lines[0], time: undefined }).toEqual({
      level: 'fatal', time: undefined, service: 'edge-gateway', msg: 'edge-gateway could not start', code: 'GW_ERR_CONFIG_INVALID',
      err: `invalid configuration ${file}:\n  ${file}: routes[0].cluster: unknown cluster "bakend"`,
      problems: ['routes[0].cluster: unknown cluster "bakend"'],
    });
  });

  it('validates a configuration with the redis shared-state backend without waiting for Redis', async () => {
    const file = writeConfig('redis.yaml', `${gatewayYaml('http://127.0.0.1:9000')}sharedState: { backend: redis, url: "redis://127.0.0.1:9" }\n`);
    const result = await run(['validate', '--config', file]);
    expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
  });

  describe('validate, building what start builds', () => {
    const ROUTE = (filters: string): string => `  - { name: api, match: { pathPrefix: /api }, cluster: backend, filters: [ ${filters} ] }`;
    const modules = join(dir, 'modules');
    /** Every broken-module case: the plugin entry, and what validate must say about it. */
    const cases: Array<{ name: string; plugin: () => string; says: string }> = [];

    beforeAll(() => {
      mkdirSync(modules, { recursive: true });
      const deny = readFileSync(join(ROOT, 'filters/dist/deny.wasm'));
      writeFileSync(join(modules, 'truncated.wasm'), deny.subarray(0, Math.floor(deny.length / 2)));
      const flipped = Buffer.from(deny);
      flipped[8] = 0x7f; // the first section id: no such section
      writeFileSync(join(modules, 'flipped.wasm'), flipped);
      copyFileSync(join(ROOT, 'README.md'), join(modules, 'notes.txt'));
      writeFileSync(join(modules, 'no-marker.wasm'), watToBytes(NO_MARKER_WAT));
      writeFileSync(join(modules, 'refuse-vm-start.wasm'), watToBytes(REFUSE_VM_START_WAT));
      mkdirSync(join(modules, 'a-directory.wasm'), { recursive: true });
      const m = (f: string): string => join(modules, f);
      cases.push(
        { name: 'corrupt bytes (truncated)', plugin: () => `  - { name: p, module: ${m('truncated.wasm')} }`,
          says: `plugins[0] (p): GW_ERR_MODULE_INVALID: module ${m('truncated.wasm')} is not valid WebAssembly: ` },
        { name: 'corrupt bytes (bad section id)', plugin: () => `  - { name: p, module: ${m('flipped.wasm')} }`,
          says: `plugins[0] (p): GW_ERR_MODULE_INVALID: module ${m('flipped.wasm')} is not valid WebAssembly: ` },
        { name: 'a text file', plugin: () => `  - { name: p, module: ${m('notes.txt')} }`,
          says: `plugins[0] (p): GW_ERR_MODULE_INVALID: module ${m('notes.txt')} is not valid WebAssembly: WebAssembly.compile(): expected magic word` },
        { name: 'no ABI version marker', plugin: () => `  - { name: p, module: ${m('no-marker.wasm')} }`,
          says: `plugins[0] (p): GW_ERR_ABI_VERSION: module ${m('no-marker.wasm')}: missing or unknown Proxy-Wasm ABI version` },
        { name: 'a wrong sha256 pin', plugin: () => `  - { name: p, module: { file: filters/dist/deny.wasm, sha256: "${'0'.repeat(64)}" } }`,
          says: `plugins[0] (p): GW_ERR_MODULE_SHA256: module filters/dist/deny.wasm does not match its pinned sha256: expected ${'0'.repeat(64)}, got ` },
        { name: 'a configuration the filter rejects', plugin: () => '  - { name: p, module: filters/dist/headers.wasm, configuration: { request: { set: [ x ] } } }',
          says: 'plugins[0] (p): GW_ERR_ABI_CONFIGURE: plugin p (root id "", module filters/dist/headers.wasm): proxy_on_configure returned false (guest said: headers: "request.set" must be an object' },
        { name: 'on_vm_start returning false', plugin: () => `  - { name: p, module: ${m('refuse-vm-start.wasm')} }`,
          says: `plugins[0] (p): GW_ERR_ABI_VM_START: plugin p (root id "", module ${m('refuse-vm-start.wasm')}): proxy_on_vm_start returned false (guest said: vm start refused)` },
        { name: 'a path that cannot be read', plugin: () => `  - { name: p, module: ${m('a-directory.wasm')} }`,
          says: `plugins[0] (p): GW_ERR_MODULE_READ: cannot read module file ${m('a-directory.wasm')}: EISDIR` },
        // Found while the file is parsed, with every other configuration error (GW_ERR_CONFIG_INVALID).
        { name: 'a missing file', plugin: () => `  - { name: p, module: ${m('missing.wasm')} }`,
          says: `plugins[0].module: GW_ERR_MODULE_READ: file not found: ${m('missing.wasm')}` },
      );
    });

    it('exits 2 with a coded message naming the plugin for each broken module, and prints nothing on stdout', async () => {
      for (const c of cases) {
        const file = writeConfig('broken.yaml', gatewayYaml('http://127.0.0.1:9000', { plugins: c.plugin(), routes: ROUTE('p') }));
        const out = await run(['validate', '--config', file]);
        expect({ case: c.name, code: out.code, stdout: out.stdout }).toEqual({ case: c.name, code: 2, stdout: '' });
        expect(out.stderr, c.name).toContain(`invalid configuration ${file}:\n  ${file}: ${c.says}`);
      }
    }, 90_000);

    it('reports three broken plugins at once, in configuration order, and checks a service as well', async () => {
      const file = writeConfig('three.yaml', gatewayYaml('http://127.0.0.1:9000', {
        plugins: `  - { name: good, module: filters/dist/deny.wasm }
  - { name: junk, module: ${join(modules, 'notes.txt')} }
  - { name: pinned, module: { file: filters/dist/deny.wasm, sha256: "${'a'.repeat(64)}" } }
  - { name: sync, module: ${join(modules, 'refuse-vm-start.wasm')} }
services: [ sync ]`,
        routes: ROUTE('good, junk, pinned'),
      }));
      const out = await run(['validate', '--config', file]);
      expect(out.code).toBe(2);
      const lines = out.stderr.trimEnd().split('\n');
      expect(lines[0]).toBe(`invalid configuration ${file}:`);
      expect(lines.slice(1).map((l) => l.split(': ').slice(1, 3).join(': '))).toEqual([
        'plugins[1] (junk): GW_ERR_MODULE_INVALID',
        'plugins[2] (pinned): GW_ERR_MODULE_SHA256',
        'plugins[3] (sync): GW_ERR_ABI_VM_START',
      ]);
    });

    it('accepts config/fleet.yaml, the two-node configuration of docker-compose.yml, without waiting for its Redis', async () => {
      expect(await run(['validate', '--config', 'config/fleet.yaml'])).toEqual({
        code: 0, signal: null, stdout: 'config/fleet.yaml: valid: 6 plugins started, 2 routes\n', stderr: '',
      });
    });

    it('accepts the shipped config/gateway.yaml with a one-line summary and exit 0', async () => {
      expect(await run(['validate', '--config', 'config/gateway.yaml'])).toEqual({
        code: 0, signal: null, stdout: 'config/gateway.yaml: valid: 6 plugins started, 1 function started, 3 routes\n', stderr: '',
      });
    });

    it('binds no port: it accepts a configuration whose listener and admin ports are taken, which start refuses with exit 1', async () => {
      const taken: Server[] = [];
      for (let i = 0; i < 2; i++) {
        const server = createServer();
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        taken.push(server);
      }
      const [listener, admin] = taken.map((s) => (s.address() as AddressInfo).port);
      try {
        const file = writeConfig('taken.yaml', gatewayYaml('http://127.0.0.1:9000')
          .replace('port: 0 }\nadmin: { address: 127.0.0.1, port: 0 }', `port: ${listener} }\nadmin: { address: 127.0.0.1, port: ${admin} }`));
        expect(readFileSync(file, 'utf8')).toContain(`port: ${admin} }`);
        expect(await run(['validate', '--config', file])).toMatchObject({ code: 0, stdout: `${file}: valid: 0 plugins started, 1 route\n` });
        const started = await run(['start', '--config', file]);
        expect(started.code).toBe(1);
        expect(started.stderr).toBe(`edge-gateway: listener "public" cannot listen on 127.0.0.1:${listener}: listen EADDRINUSE: address already in use 127.0.0.1:${listener}\n`);
        // The same error as the last log line, for a log pipeline.
        expect(JSON.parse(started.stdout.trim().split('\n').pop()!)).toMatchObject({
          level: 'fatal', service: 'edge-gateway', msg: 'edge-gateway could not start',
          err: `listener "public" cannot listen on 127.0.0.1:${listener}: listen EADDRINUSE: address already in use 127.0.0.1:${listener}`,
        });
      } finally {
        for (const s of taken) s.close();
      }
    });

    it('exits at once after starting a service that ticks and waits on a callout, which it cancels', async () => {
      const held: ServerResponse[] = [];
      const upstream = await startUpstream((_req, res) => { held.push(res); });
      try {
        const file = writeConfig('service.yaml', gatewayYaml(upstream.url, {
          plugins: `  - { name: sync, module: ${wasmFile(HOLDING_SERVICE_WAT, 'holding')} }\nservices: [ sync ]`,
        }));
        // run() fails the test when the process is still alive after 15 s; the callout waits 60 s.
        expect(await run(['validate', '--config', file])).toEqual({
          code: 0, signal: null, stdout: `${file}: valid: 1 plugin started (1 as a service), 1 route\n`, stderr: '',
        });
      } finally {
        for (const res of held) res.destroy();
        await upstream.close();
      }
    });

    it('makes start refuse the same broken plugins with exit 2 and the same lines', async () => {
      const file = writeConfig('start-broken.yaml', gatewayYaml('http://127.0.0.1:9000', {
        plugins: `  - { name: junk, module: ${join(modules, 'notes.txt')} }\n  - { name: p, module: filters/dist/headers.wasm, configuration: { request: { set: [ x ] } } }`,
        routes: ROUTE('junk, p'),
      }));
      const validated = await run(['validate', '--config', file]);
      const started = await run(['start', '--config', file]);
      expect(validated.code).toBe(2);
      expect(started.code).toBe(2);
      expect(started.stderr).toBe(`edge-gateway: ${validated.stderr}`);
      expect(validated.stderr.split('\n')).toHaveLength(4);
      const fatal = JSON.parse(started.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
      expect(fatal).toMatchObject({ level: 'fatal', code: 'GW_ERR_CONFIG_INVALID', msg: 'edge-gateway could not start' });
      expect(fatal.problems).toHaveLength(2);
    });
  });

  describe('demo-upstream', () => {
    it('serves only the demo upstream on the address it logs, echoing each request as JSON, until stopped', async () => {
      const child = spawn(process.execPath, ['--import', TSX, CLI, 'demo-upstream', '--port', '0', '--address', '127.0.0.1'], { cwd: ROOT, env: childEnv() });
      try {
        const line = await new Promise<LogLine>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no "demo upstream serving" line in 15 s')), 15_000);
          child.stdout!.on('data', (c: Buffer) => {
            clearTimeout(timer);
            resolve(JSON.parse(c.toString('utf8').split('\n')[0]) as LogLine);
          });
        });
        expect(line).toMatchObject({ level: 'info', msg: 'demo upstream serving', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
        const reply = await get(`http://${line.address as string}/some/path?x=1`);
        expect(reply.status).toBe(200);
        expect(JSON.parse(reply.body)).toMatchObject({ method: 'GET', path: '/some/path?x=1' });
      } finally {
        child.kill('SIGTERM');
      }
    });

    it('refuses a port that is not a number with exit 2', async () => {
      expect(await run(['demo-upstream', '--port', 'http'])).toEqual({
        code: 2, signal: null, stdout: '', stderr: 'edge-gateway demo-upstream: --port must be a port number, not "http"\n',
      });
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
      expect(line.level).toBe('error');
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
      expect(line.level).toBe('error');
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

    it('keeps serving new connections for drainDelayMs after SIGTERM while /readyz answers 503, then closes the listener', async () => {
      const gw = await launch('drain-delay.yaml', gatewayYaml(upstream.url, { drainDelayMs: 1500 }));
      gw.signal('SIGTERM');
      const draining = await gw.waitFor((l) => l.msg.startsWith('draining: /readyz answers 503'), 'the drain delay');
      const t0 = performance.now();
      expect(draining.drainDelayMs).toBe(1500);
      expect(await get(`${gw.adminUrl}/readyz`)).toMatchObject({ status: 503, body: 'not ready: draining\n' });
      // A new connection is still served, and told to close (connection: close) so the client moves on.
      const served = await get(`${gw.url}/api/during`);
      expect(served).toMatchObject({ status: 200, body: 'upstream saw /api/during' });
      expect(served.headers.connection).toBe('close');
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(await gw.exited).toEqual({ code: 0, signal: null });
      // The listener closed only once the delay was over.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(1400);
      expect(await refused(gw.port)).toBe(true);
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
