/**
 * Real SDK output through our host: the three filters of test/compat/proxy-runtime, built with the
 * AssemblyScript SDK @solo-io/proxy-runtime@0.1.8 (asc 0.17.14), see its README for the exact
 * hostcalls each callback makes. Callouts go through the real node:http port of test/helpers/http-callouts.ts
 * to a node:http server on port 0 acting as cluster `auth`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAllocator } from '../../gateway/abi/callbacks.js';
import { CALL_FAILED, type RootContext } from '../../gateway/abi/context.js';
import { AbiVersion, GRPC_STATUS_NONE, HeadersAction, LogLevel, Status } from '../../gateway/abi/enums.js';
import { HeaderMap } from '../../gateway/abi/header-map.js';
import { Phase } from '../../gateway/abi/phase.js';
import type { HttpCallRequest, HttpCallResponse } from '../../gateway/abi/ports.js';
import { WasmVm, type VmPorts } from '../../gateway/abi/vm.js';
import { GatewayError } from '../../gateway/errors.js';
import { createModuleStore, type LoadedModule } from '../../gateway/modules/module-store.js';
import { VmPool } from '../../gateway/abi/vm-pool.js';
import { RecordingLogger, TestStream, text, until } from '../helpers/host.js';
import { NodeCallouts, refusingUrl, startHttpServer, type SeenRequest, type TestServer } from '../helpers/http-callouts.js';

const BUILD = join(import.meta.dirname, 'proxy-runtime', 'build');
const VM_CONFIG = text('vm-config');

let headersWasm: LoadedModule;
let calloutWasm: LoadedModule;
let localReplyWasm: LoadedModule;

beforeAll(async () => {
  const store = createModuleStore();
  const load = async (name: string) => store.compile(await readFile(join(BUILD, `${name}.wasm`)), `${name}.wasm`);
  [headersWasm, calloutWasm, localReplyWasm] = await Promise.all([load('headers'), load('callout'), load('local-reply')]);
});

function boot(module: LoadedModule, ports: Partial<VmPorts> = {}): { vm: WasmVm; logger: RecordingLogger } {
  const logger = new RecordingLogger();
  const vm = new WasmVm(module.module, { name: module.name, vmId: 'compat', vmConfiguration: VM_CONFIG, ports: { logger, ...ports } });
  return { vm, logger };
}

/** What the SDK says at info level and above (it logs at debug from nearly every callback). */
function notices(logger: RecordingLogger): Array<[number, string]> {
  return logger.lines.filter((l) => l.level >= LogLevel.INFO).map((l) => [l.level, l.message]);
}

/** Ids of the module's sections in order (0 = custom, 8 = start), read from the binary. */
function sectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let at = 8;
  while (at < bytes.length) {
    ids.push(bytes[at++]);
    let size = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      size |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
    }
    at += size;
  }
  return ids;
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');

/** The real node:http Callouts port, also keeping each request the guest made. */
class RecordingCallouts extends NodeCallouts {
  readonly calls: HttpCallRequest[] = [];
  override httpCall(req: HttpCallRequest, done: (res: HttpCallResponse | null) => void): Status {
    const status = super.httpCall(req, done);
    if (status === Status.OK) this.calls.push(req);
    return status;
  }
}

// ---- tests ---------------------------------------------------------------------------------------

describe('proxy-runtime 0.1.8 filters on our host', () => {
  describe('start-up', () => {
    it('links each module with the host imports, detects ABI 0.2.0 and starts it through its start section', () => {
      for (const module of [headersWasm, calloutWasm, localReplyWasm]) {
        const names = WebAssembly.Module.exports(module.module).map((e) => e.name);
        expect(names).toContain('proxy_abi_version_0_2_0');
        expect(names).not.toContain('_start');
        expect(names).not.toContain('_initialize');
        expect(sectionIds(module.bytes)).toContain(8);

        const { vm, logger } = boot(module);
        expect(vm.abiVersion).toBe(AbiVersion.V0_2_0);
        expect(vm.phase).toBe(Phase.RUNNING);
        expect(vm.failed).toBe(false);
        // The start section runs the SDK's top-level code, which makes no hostcalls.
        expect(logger.lines).toEqual([]);
      }
    });

    it('uses malloc as the allocator, since the SDK exports no proxy_on_memory_allocate', () => {
      const { vm } = boot(headersWasm);
      const exports = vm.instance.exports;
      expect(exports.proxy_on_memory_allocate).toBeUndefined();
      expect(resolveAllocator(exports)).toBe(exports.malloc);
      // A value handed back through malloc is an AS ArrayBuffer of exactly that size (rtSize at ptr - 4).
      const ptr = vm.allocate(13);
      expect(vm.mem.current().readUInt32LE(ptr - 4)).toBe(13);
    });
  });

  describe('headers.wasm (root id compat_headers)', () => {
    it('answers plugin_root_id in the root on_context_create and logs the configure line with the plugin as origin', () => {
      const { vm, logger } = boot(headersWasm);
      const root = vm.createRoot({ name: 'stamp', rootId: 'compat_headers', configuration: text('blue') });
      expect(vm.failed).toBe(false);
      expect(root.alive).toBe(true);
      expect(notices(logger)).toEqual([[LogLevel.INFO, 'configured: blue']]);
      const line = logger.lines.find((l) => l.message === 'configured: blue')!;
      expect(line.origin).toBe(root);
      expect(line.origin).toMatchObject({ pluginName: 'stamp', rootId: 'compat_headers', vmId: 'compat' });
    });

    it('stamps request headers with :path and the configuration, and response headers with x-compat-response', () => {
      const { vm, logger } = boot(headersWasm);
      const root = vm.createRoot({ name: 'stamp', rootId: 'compat_headers', configuration: text('blue') });
      const host = new TestStream([[':method', 'GET'], [':path', '/a/b?c=1'], [':authority', 'example.test']]);
      const stream = vm.createStream(root, host);
      expect(stream.onRequestHeaders(3, true)).toBe(HeadersAction.CONTINUE);
      expect(host.maps[0]!.pairs).toEqual([
        ':method', 'GET', ':path', '/a/b?c=1', ':authority', 'example.test',
        'x-compat-path', '/a/b?c=1', 'x-compat-config', 'blue',
      ]);

      host.maps[2] = HeaderMap.from([[':status', '200']]);
      expect(stream.onResponseHeaders(1, false)).toBe(HeadersAction.CONTINUE);
      expect(host.maps[2].pairs).toEqual([':status', '200', 'x-compat-response', '1']);
      expect(host.actions).toEqual([]);

      const before = vm.contexts.size;
      stream.finish();
      expect(vm.failed).toBe(false);
      expect(vm.contexts.size).toBe(before - 1);
      expect(vm.contexts.has(stream.id)).toBe(false);
      expect(notices(logger)).toEqual([[LogLevel.INFO, 'configured: blue']]);
    });

    it('stamps an empty x-compat-path when the request has no :path (NOT_FOUND reads as "")', () => {
      const { vm } = boot(headersWasm);
      const root = vm.createRoot({ name: 'stamp', rootId: 'compat_headers', configuration: text('c') });
      const host = new TestStream([[':method', 'GET']]);
      expect(vm.createStream(root, host).onRequestHeaders(1, true)).toBe(HeadersAction.CONTINUE);
      expect(host.maps[0]!.pairs).toEqual([':method', 'GET', 'x-compat-path', '', 'x-compat-config', 'c']);
    });

    it('reads a 1032-byte configuration intact (the largest the 0.1.8 length-slot bug leaves harmless)', () => {
      const { vm, logger } = boot(headersWasm);
      const config = 'x'.repeat(1031) + 'y';
      const root = vm.createRoot({ name: 'big', rootId: 'compat_headers', configuration: text(config) });
      expect(notices(logger)).toEqual([[LogLevel.INFO, `configured: ${config}`]]);
      const host = new TestStream([[':path', '/']]);
      vm.createStream(root, host).onRequestHeaders(1, true);
      expect(host.maps[0]!.get('x-compat-config')).toBe(config);
    });

    it('fails createRoot with GW_ERR_ABI_PROC_EXIT naming the plugin when the root id has no factory in the SDK', () => {
      const { vm, logger } = boot(headersWasm);
      let error: unknown;
      try {
        vm.createRoot({ name: 'misnamed', rootId: 'compat_nope', configuration: text('x') });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(GatewayError);
      const gwError = error as GatewayError;
      expect(gwError.code).toBe('GW_ERR_ABI_PROC_EXIT');
      expect(gwError.status).toBe(503);
      expect(gwError.message).toMatch(/^plugin misnamed \(root id "compat_nope", module headers\.wasm\): proxy_on_context_create failed: guest called proc_exit\(255\)/);
      expect(gwError.message).toContain('Missing root context factory for root id: compat_nope');

      expect(vm.failure).toMatchObject({ code: 'GW_ERR_ABI_PROC_EXIT', message: 'guest called proc_exit(255)' });
      expect(vm.failure!.guestMessage).toMatch(/^Missing root context factory for root id: compat_nope at: ~lib\/@solo-io\/proxy-runtime\/runtime\.ts\(\d+:\d+\)$/);
      const critical = logger.lines.filter((l) => l.level === LogLevel.CRITICAL);
      expect(critical[0].message).toBe(vm.failure!.guestMessage);
      expect(critical[0].origin).toMatchObject({ pluginName: 'misnamed', rootId: 'compat_nope' });
      expect(critical.at(-1)!.message).toMatch(/^VM failed in module headers\.wasm: guest called proc_exit\(255\)/);

      // The failed VM refuses further plugins rather than calling into the guest again.
      expect(() => vm.createRoot({ name: 'next', rootId: 'compat_headers', configuration: text('x') }))
        .toThrow(expect.objectContaining({ code: 'GW_ERR_ABI_VM_FAILED' }));
    });

    it('keeps each plugin configuration apart when two plugins share one VM through VmPool', () => {
      const logger = new RecordingLogger();
      const pool = new VmPool({ logger });
      const spec = { vmId: 'shared', vmConfiguration: VM_CONFIG };
      const red = pool.startPlugin(headersWasm, spec, { name: 'red', rootId: 'compat_headers', configuration: text('red') });
      const green = pool.startPlugin(headersWasm, spec, { name: 'green', rootId: 'compat_headers', configuration: text('green') });
      expect(green.vm).toBe(red.vm);
      expect(pool.vms()).toHaveLength(1);
      expect(green.id).not.toBe(red.id);

      const configured = logger.lines.filter((l) => l.message.startsWith('configured: '));
      expect(configured.map((l) => [l.message, l.origin?.pluginName, l.origin?.rootId, l.origin?.vmId])).toEqual([
        ['configured: red', 'red', 'compat_headers', 'shared'],
        ['configured: green', 'green', 'compat_headers', 'shared'],
      ]);

      const stamp = (root: RootContext): string | undefined => {
        const host = new TestStream([[':path', '/']]);
        const stream = root.vm.createStream(root, host);
        expect(stream.onRequestHeaders(1, true)).toBe(HeadersAction.CONTINUE);
        stream.finish();
        return host.maps[0]!.get('x-compat-config');
      };
      expect(stamp(red)).toBe('red');
      expect(stamp(green)).toBe('green');
      expect(stamp(red)).toBe('red');

      pool.stopPlugin(red);
      expect(pool.vms()).toHaveLength(1);
      expect(stamp(green)).toBe('green');
      pool.stopPlugin(green);
      expect(pool.vms()).toHaveLength(0);
      expect(green.vm.failed).toBe(false);
    });
  });

  describe('callout.wasm (root id compat_callout)', () => {
    let server: TestServer;
    const seen: SeenRequest[] = [];

    beforeAll(async () => {
      server = await startHttpServer((req, res) => {
        if (req.headers['x-token'] === 'good') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        else res.writeHead(403).end('no');
      }, seen);
    });

    afterAll(() => server.close());

    function start(clusters: Record<string, string> = { auth: server.url }) {
      const callouts = new RecordingCallouts(clusters);
      const { vm, logger } = boot(calloutWasm, { callouts });
      const root = vm.createRoot({ name: 'gate', rootId: 'compat_callout', configuration: text('-') });
      return { vm, logger, root, callouts };
    }

    it('pauses the request, asks cluster auth GET /check and continues with x-auth: ok when the token is good', async () => {
      const { vm, logger, root, callouts } = start();
      const host = new TestStream([[':method', 'GET'], [':path', '/resource'], ['x-token', 'good']]);
      const stream = vm.createStream(root, host);
      seen.length = 0;

      expect(stream.onRequestHeaders(3, true)).toBe(HeadersAction.STOP_ALL);
      expect(callouts.calls).toHaveLength(1);
      expect(callouts.calls[0]).toMatchObject({
        cluster: 'auth',
        headers: [':method', 'GET', ':path', '/check', ':authority', 'auth', 'x-token', 'good'],
        trailers: [],
        timeoutMs: 1000,
      });
      expect(callouts.calls[0].body).toHaveLength(0);
      expect(callouts.calls[0].origin).toBe(root);
      expect(vm.calls.size).toBe(1);
      expect(host.actions).toEqual([]);

      await until(() => host.actions.length > 0);
      expect(host.actions).toEqual(['continue:0']);
      expect(host.maps[0]!.getAll('x-auth')).toEqual(['ok']);
      expect(vm.calls.size).toBe(0);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ method: 'GET', path: '/check', headers: { host: 'auth', 'x-token': 'good' } });
      expect(vm.failed).toBe(false);
      expect(notices(logger)).toEqual([]);

      stream.finish();
      expect(vm.contexts.has(stream.id)).toBe(false);
    });

    it('answers 403 denied locally when the auth server refuses the token', async () => {
      const { vm, root } = start();
      const host = new TestStream([[':method', 'GET'], [':path', '/resource'], ['x-token', 'bad']]);
      seen.length = 0;
      expect(vm.createStream(root, host).onRequestHeaders(3, true)).toBe(HeadersAction.STOP_ALL);

      await until(() => host.actions.length > 0);
      expect(host.actions).toEqual(['local:403']);
      expect(host.localResponse).toMatchObject({ status: 403, details: '', headers: [], grpcStatus: GRPC_STATUS_NONE });
      expect(latin1(host.localResponse!.body)).toBe('denied');
      expect(host.maps[0]!.get('x-auth')).toBeUndefined();
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ method: 'GET', path: '/check', headers: { host: 'auth', 'x-token': 'bad' } });
      expect(vm.failed).toBe(false);
    });

    it('sends no x-token to the auth server when the request has none, and is denied', async () => {
      const { vm, root, callouts } = start();
      const host = new TestStream([[':method', 'GET'], [':path', '/resource']]);
      seen.length = 0;
      expect(vm.createStream(root, host).onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
      expect(callouts.calls[0].headers).toEqual([':method', 'GET', ':path', '/check', ':authority', 'auth']);
      await until(() => host.actions.length > 0);
      expect(host.actions).toEqual(['local:403']);
      expect(seen[0].headers['x-token']).toBeUndefined();
    });

    it('denies with 403 when the auth cluster cannot be reached (the call fails with no headers)', async () => {
      const { vm, root } = start({ auth: await refusingUrl() });
      const host = new TestStream([[':path', '/resource'], ['x-token', 'good']]);
      expect(vm.createStream(root, host).onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
      await until(() => host.actions.length > 0);
      expect(host.actions).toEqual(['local:403']);
      expect(latin1(host.localResponse!.body)).toBe('denied');
      expect(vm.failed).toBe(false);
    });

    it('answers 503 "callout failed" when the host refuses the call (no cluster auth: BAD_ARGUMENT)', () => {
      const { vm, logger, root } = start({});
      const host = new TestStream([[':path', '/resource'], ['x-token', 'good']]);
      expect(vm.createStream(root, host).onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
      expect(host.actions).toEqual(['local:503']);
      expect(host.localResponse).toMatchObject({ status: 503, details: '', headers: [], grpcStatus: GRPC_STATUS_NONE });
      expect(latin1(host.localResponse!.body)).toBe('callout failed');
      expect(notices(logger)).toEqual([[LogLevel.WARN, `auth callout failed: ${Status.BAD_ARGUMENT}`]]);
      expect(vm.calls.size).toBe(0);
    });

    it('survives a root shutdown with a call in flight: the SDK runs the callback on the root and nothing traps', async () => {
      const { vm, root } = start();
      const host = new TestStream([[':path', '/resource'], ['x-token', 'good']]);
      const stream = vm.createStream(root, host);
      seen.length = 0;
      expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
      expect(vm.calls.size).toBe(1);

      root.shutdown();
      expect(vm.failed).toBe(false);
      expect(root.alive).toBe(false);
      expect(vm.calls.size).toBe(0);
      // The SDK's on_done(root) runs its pending callback in the root, with no effective context:
      // get_header_map_value(6) answers BAD_ARGUMENT and send_local_response NOT_FOUND, no trap.
      expect(host.actions).toEqual([]);

      // The server still answers; the forgotten token is dropped.
      await until(() => seen.length === 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(host.actions).toEqual([]);
      expect(vm.failed).toBe(false);
    });
  });

  describe('local-reply.wasm (root id compat_local)', () => {
    it('answers /deny with a local 403 "forbidden by filter" and x-denied: 1, stopping the request', () => {
      const { vm } = boot(localReplyWasm);
      const root = vm.createRoot({ name: 'deny', rootId: 'compat_local', configuration: text('-') });
      const host = new TestStream([[':method', 'GET'], [':path', '/deny']]);
      const stream = vm.createStream(root, host);
      expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
      expect(stream.localReplyRequests).toBe(1);
      expect(host.actions).toEqual(['local:403']);
      expect(host.localResponse).toMatchObject({ status: 403, details: '', headers: ['x-denied', '1'], grpcStatus: GRPC_STATUS_NONE });
      expect(latin1(host.localResponse!.body)).toBe('forbidden by filter');
      expect(host.maps[0]!.pairs).toEqual([':method', 'GET', ':path', '/deny']);
      stream.finish();
      expect(vm.failed).toBe(false);
    });

    it('lets every other path continue, /deny with a query string included', () => {
      const { vm } = boot(localReplyWasm);
      const root = vm.createRoot({ name: 'deny', rootId: 'compat_local', configuration: text('-') });
      for (const path of ['/', '/allow', '/deny?x=1', '/deny/']) {
        const host = new TestStream([[':path', path]]);
        const stream = vm.createStream(root, host);
        expect(stream.onRequestHeaders(1, true)).toBe(HeadersAction.CONTINUE);
        expect(host.actions).toEqual([]);
        stream.finish();
      }
      expect(vm.failed).toBe(false);
      expect(vm.contexts.size).toBe(1);
    });

    it('fails the VM with the SDK message when a stream callback names a context the SDK never saw', () => {
      const { vm } = boot(localReplyWasm);
      const root = vm.createRoot({ name: 'deny', rootId: 'compat_local', configuration: text('-') });
      const stream = vm.createStream(root, new TestStream([[':path', '/']]));
      // Bypass on_context_create for the stream: the SDK's map lookup aborts through proc_exit(255).
      stream.created = true;
      expect(stream.onRequestHeaders(1, true)).toBe(CALL_FAILED);
      expect(vm.failure).toMatchObject({ code: 'GW_ERR_ABI_PROC_EXIT', message: 'guest called proc_exit(255)' });
      expect(vm.failure!.guestMessage).toMatch(/^Key does not exist at: ~lib\/map\.ts\(\d+:\d+\)$/);
    });
  });
});
