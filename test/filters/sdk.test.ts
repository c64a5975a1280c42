/**
 * The AssemblyScript SDK (filters/sdk) as built by filters/build.ts, loaded straight into the ABI
 * host: the shape of the modules it produces, its allocator and memory over many requests, its
 * abort handler, and how it dispatches contexts by id and root id.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveAllocator } from '../../gateway/abi/callbacks.js';
import { CALL_FAILED } from '../../gateway/abi/context.js';
import { AbiVersion, HeadersAction, LogLevel } from '../../gateway/abi/enums.js';
import { HeaderMap } from '../../gateway/abi/header-map.js';
import { Phase } from '../../gateway/abi/phase.js';
import { GatewayError } from '../../gateway/errors.js';
import { TestStream, text } from '../helpers/host.js';
import { bootGuest, guest, type GuestName } from './sdk-guests.js';

const ALL_GUESTS: GuestName[] = ['headers', 'probe', 'callout'];
const ROOT = join(import.meta.dirname, '../..');
const PAGE = 65536;

const HEADERS_CONFIG = text(JSON.stringify({
  request: { rename: { 'x-old': 'x-new' }, remove: ['x-b'], set: { 'x-s': 'v' }, add: { 'x-a': ['1', '2'] } },
  response: { set: { 'x-r': 3 } },
}));

describe('modules built with the SDK', () => {
  it('import only env.proxy_* functions: no env.abort, no WASI', () => {
    for (const name of ALL_GUESTS) {
      const imports = WebAssembly.Module.imports(guest(name).module);
      expect(imports.length).toBeGreaterThan(0);
      for (const i of imports) {
        expect(`${i.module}.${i.name}`).toMatch(/^env\.proxy_[a-z_]+$/);
        expect(i.kind).toBe('function');
      }
    }
  });

  it('declare ABI 0.2.1 and export proxy_on_memory_allocate, memory and every callback through sdk/exports, but no malloc, _start or _initialize', () => {
    for (const name of ['probe', 'callout'] as const) {
      const exports = WebAssembly.Module.exports(guest(name).module).map((e) => e.name);
      expect(exports).toContain('proxy_abi_version_0_2_1');
      expect(exports).not.toContain('proxy_abi_version_0_2_0');
      expect(exports).toContain('proxy_on_memory_allocate');
      expect(exports).toContain('memory');
      expect(exports).toEqual(expect.arrayContaining([
        'proxy_on_context_create', 'proxy_on_vm_start', 'proxy_on_configure', 'proxy_on_tick', 'proxy_on_queue_ready',
        'proxy_on_request_headers', 'proxy_on_request_body', 'proxy_on_request_trailers',
        'proxy_on_response_headers', 'proxy_on_response_body', 'proxy_on_response_trailers',
        'proxy_on_http_call_response', 'proxy_on_grpc_receive', 'proxy_on_grpc_close',
        'proxy_on_grpc_receive_initial_metadata', 'proxy_on_grpc_receive_trailing_metadata',
        'proxy_on_foreign_function', 'proxy_on_log', 'proxy_on_done', 'proxy_on_delete',
      ]));
      for (const absent of ['malloc', 'free', '_start', '_initialize', 'proxy_on_grpc_trailing_metadata']) expect(exports).not.toContain(absent);
    }
  });

  it('export, in a shipped filter, the life-cycle callbacks and only the others its contexts handle', () => {
    const LIFECYCLE = ['proxy_on_configure', 'proxy_on_context_create', 'proxy_on_delete', 'proxy_on_done', 'proxy_on_vm_start'];
    const handled: Record<string, string[]> = {
      'api-key': ['proxy_on_http_call_response', 'proxy_on_grpc_close', 'proxy_on_grpc_receive', 'proxy_on_grpc_receive_initial_metadata',
        'proxy_on_grpc_receive_trailing_metadata', 'proxy_on_queue_ready', 'proxy_on_request_headers', 'proxy_on_tick'],
      'body-guard': ['proxy_on_request_body', 'proxy_on_request_headers', 'proxy_on_request_trailers', 'proxy_on_response_body',
        'proxy_on_response_headers', 'proxy_on_response_trailers'],
      cors: ['proxy_on_request_headers', 'proxy_on_response_headers'],
      'ext-authz': ['proxy_on_http_call_response', 'proxy_on_grpc_close', 'proxy_on_grpc_receive', 'proxy_on_grpc_receive_initial_metadata',
        'proxy_on_grpc_receive_trailing_metadata', 'proxy_on_request_headers'],
      headers: ['proxy_on_request_headers', 'proxy_on_response_headers'],
      jwt: ['proxy_on_request_headers'],
      observe: ['proxy_on_log', 'proxy_on_request_headers'],
      'rate-limit': ['proxy_on_request_headers', 'proxy_on_response_headers'],
    };
    for (const [name, own] of Object.entries(handled)) {
      const module = new WebAssembly.Module(readFileSync(join(ROOT, `filters/dist/${name}.wasm`)));
      const callbacks = WebAssembly.Module.exports(module).map((e) => e.name)
        .filter((n) => n.startsWith('proxy_on_') && n !== 'proxy_on_memory_allocate').sort();
      expect({ name, callbacks }).toEqual({ name, callbacks: [...LIFECYCLE, ...own].sort() });
    }
  });

  it('start through their start section with no hostcall, and give the host proxy_on_memory_allocate as allocator', () => {
    const { vm, logger } = bootGuest('headers');
    expect(vm.abiVersion).toBe(AbiVersion.V0_2_1);
    expect(vm.phase).toBe(Phase.RUNNING);
    expect(vm.failed).toBe(false);
    expect(logger.lines).toEqual([]);
    const exports = vm.instance.exports;
    expect(resolveAllocator(exports)).toBe(exports.proxy_on_memory_allocate);
    // An exact-size block the host may fill completely.
    const ptr = vm.allocate(1000);
    vm.mem.current().fill(0x5a, ptr, ptr + 1000);
    expect(vm.failed).toBe(false);
  });
});

describe('memory', () => {
  it('stays bounded over 100 000 requests through the headers filter: the SDK frees every block the host fills', () => {
    const { vm } = bootGuest('headers');
    const root = vm.createRoot({ name: 'headers', rootId: 'headers', configuration: HEADERS_CONFIG });
    const request = (): void => {
      const host = new TestStream([[':method', 'GET'], [':path', '/'], ['x-b', 'gone'], ['x-old', 'o1'], ['x-old', 'o2']]);
      const stream = vm.createStream(root, host);
      stream.onRequestHeaders(5, true);
      host.maps[2] = HeaderMap.from([[':status', '200'], ['content-type', 'text/plain']]);
      stream.onResponseHeaders(2, false);
      stream.finish();
    };
    // Warm up: the collector and the allocator reach their steady state.
    for (let i = 0; i < 2_000; i++) request();
    const before = vm.mem.size;
    for (let i = 0; i < 100_000; i++) request();
    const after = vm.mem.size;
    console.log(`headers.wasm guest memory: ${before / PAGE} pages after warm-up, ${after / PAGE} pages after 100 000 more requests`);
    expect(after - before).toBeLessThan(PAGE);
    expect(vm.failed).toBe(false);
    // The host side forgot every stream too: only the root is left.
    expect([...vm.contexts.roots()].map((r) => r.id)).toEqual([root.id]);
    expect(vm.contexts.streamCount).toBe(0);
  }, 120_000);
});

describe('the abort handler', () => {
  function abortIn(mode: string, message: string) {
    const g = bootGuest('probe');
    const root = g.vm.createRoot({ name: 'aborter', rootId: 'abort', configuration: text('') });
    const host = new TestStream([[':method', 'GET'], ['x-abort', mode], ['x-message', Buffer.from(message, 'utf8').toString('latin1')]]);
    const result = g.vm.createStream(root, host).onRequestHeaders(3, true);
    return { ...g, root, result };
  }

  it('logs abort(message) at critical level and traps, which fails the VM with the message as the reason', () => {
    const { vm, logger, root, result } = abortIn('abort', 'boom ☃ 𝄞');
    expect(result).toBe(CALL_FAILED);
    expect(vm.failed).toBe(true);
    const critical = logger.lines.filter((l) => l.level === LogLevel.CRITICAL);
    expect(critical[0].message).toBe('abort: boom ☃ 𝄞');
    expect(critical[0].origin).toBe(root);
    expect(vm.failure).toMatchObject({ code: 'GW_ERR_ABI_TRAP', guestMessage: 'abort: boom ☃ 𝄞' });
    expect(vm.failure!.message).toMatch(/unreachable/);
  });

  it('names the file, line and column of a throw', () => {
    const { vm, logger } = abortIn('throw', 'thrown here');
    expect(vm.failed).toBe(true);
    expect(logger.lines.find((l) => l.level === LogLevel.CRITICAL)!.message)
      .toMatch(/^abort: thrown here at test\/filters\/fixtures\/probe\/index\.ts:\d+:\d+$/);
  });

  it('cuts a long message at 1 KiB (it writes into a static buffer and allocates nothing)', () => {
    const { vm, logger } = abortIn('abort', 'x'.repeat(3000));
    expect(vm.failed).toBe(true);
    const line = logger.lines.find((l) => l.level === LogLevel.CRITICAL)!.message;
    expect(line).toBe(`abort: ${'x'.repeat(1024 - 'abort: '.length)}`);
  });
});

describe('context dispatch', () => {
  it('creates each root from the factory registered for its plugin_root_id', () => {
    const { vm, logger } = bootGuest('probe');
    vm.createRoot({ name: 'a', rootId: 'log-level', configuration: text('') });
    vm.createRoot({ name: 'b', rootId: 'json', configuration: text('[1]') });
    expect(logger.messages()).toEqual(['log-level 0', 'json ok [1]', 'json valid']);
  });

  it('refuses a root id nobody registered: the critical line lists the registered ones and the plugin fails to start', () => {
    const { vm, logger } = bootGuest('probe');
    let error: unknown;
    try {
      vm.createRoot({ name: 'lost', rootId: 'nope', configuration: text('') });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).message).toMatch(/^plugin lost \(root id "nope", module probe\.wasm\): proxy_on_context_create failed/);
    expect((error as GatewayError).message).toContain('abort: no root context registered for root id "nope" (registered: "json", "abort", ');
    expect(logger.lines[0]).toMatchObject({ level: LogLevel.CRITICAL });
  });

  it('uses the only registration for any root id when a module registers one root context', () => {
    for (const rootId of ['headers', '', 'something-else']) {
      const { vm } = bootGuest('headers');
      const root = vm.createRoot({ name: 'h', rootId, configuration: text('{"request":{"set":{"x-a":"1"}}}') });
      const host = new TestStream([[':path', '/']]);
      expect(vm.createStream(root, host).onRequestHeaders(1, true)).toBe(HeadersAction.CONTINUE);
      expect(host.maps[0]!.get('x-a')).toBe('1');
    }
  });

  it('keeps one root context per plugin: two plugins in one VM keep their own configuration', () => {
    const { vm } = bootGuest('headers');
    const red = vm.createRoot({ name: 'red', rootId: 'headers', configuration: text('{"request":{"set":{"x-color":"red"}}}') });
    const blue = vm.createRoot({ name: 'blue', rootId: 'headers', configuration: text('{"request":{"set":{"x-color":"blue"}}}') });
    const color = (root: typeof red): string | undefined => {
      const host = new TestStream([[':path', '/']]);
      const stream = vm.createStream(root, host);
      stream.onRequestHeaders(1, true);
      stream.finish();
      return host.maps[0]!.get('x-color');
    };
    expect([color(red), color(blue), color(red)]).toEqual(['red', 'blue', 'red']);
  });
});
