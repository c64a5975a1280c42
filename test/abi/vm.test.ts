import { describe, expect, it } from 'vitest';
import { CALL_FAILED } from '../../gateway/abi/context.js';
import { HeadersAction } from '../../gateway/abi/enums.js';
import type { TypedImport } from '../../gateway/abi/wasm-types.js';
import { GatewayError } from '../../gateway/errors.js';
import { RecordingLogger, TestStream, startVm, text } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

const headerFilter = guestWat({
  imports: `
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))`,
  body: `
  (data (i32.const 16) ":path")
  (data (i32.const 32) "x-path")
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $get (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 100) (i32.const 104)))
    (drop (call $add (i32.const 0) (i32.const 32) (i32.const 6) (i32.load (i32.const 100)) (i32.load (i32.const 104))))
    (i32.const 0))`,
});

describe('WasmVm', () => {
  it('runs a header filter that copies :path into a new request header', () => {
    const { vm } = startVm(headerFilter);
    const root = vm.createRoot({ name: 'p', rootId: 'r', configuration: text('{}') });
    const host = new TestStream([[':path', '/hello?x=1'], [':method', 'GET']]);
    const stream = vm.createStream(root, host);
    expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.CONTINUE);
    expect(host.maps[0]!.get('x-path')).toBe('/hello?x=1');
    stream.finish();
    expect(vm.contexts.size).toBe(1);
  });

  it('fails the VM when the guest traps and reports the trap', () => {
    const { vm, logger } = startVm(guestWat({ body: `
      (func (export "proxy_on_context_create") (param i32 i32))
      (func $boom (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable)` }));
    const root = vm.createRoot({ name: 'p', rootId: 'r', configuration: text('') });
    const stream = vm.createStream(root, new TestStream());
    expect(stream.onRequestHeaders(0, true)).toBe(CALL_FAILED);
    expect(vm.failure?.code).toBe('GW_ERR_ABI_TRAP');
    expect(vm.failure?.backtrace.join('\n')).toContain('boom');
    expect(logger.messages().join('\n')).toContain('unreachable');
  });
});

describe('WasmVm import check (VmOptions.imports, VmOptions.allowedHostcalls)', () => {
  /** Imports proxy_log with one parameter too few, and logs from its start function. */
  const wrongLog = guestWat({
    imports: '(import "env" "proxy_log" (func $log (param i32 i32) (result i32)))',
    body: `
  (data (i32.const 16) "started")
  (func $start (drop (call $log (i32.const 16) (i32.const 7))))
  (start $start)`,
  });
  const i32 = 'i32' as const;
  const asRead: TypedImport[] = [{ module: 'env', name: 'proxy_log', kind: 'function', type: { params: [i32, i32], results: [i32] } }];

  const startError = (fn: () => unknown): GatewayError => {
    try {
      fn();
    } catch (err) {
      if (err instanceof GatewayError) return err;
      throw err;
    }
    throw new Error('the VM started');
  };

  it('refuses a module whose import has another signature before instantiating it: GW_ERR_ABI_LINK, and its start never runs', () => {
    const logger = new RecordingLogger();
    const err = startError(() => startVm(wrongLog, { name: 'wrong.wasm', imports: asRead, ports: { logger } }));
    expect(err.code).toBe('GW_ERR_ABI_LINK');
    expect(err.message).toContain('module wrong.wasm');
    expect(err.message).toContain('env.proxy_log: expected (i32, i32, i32) -> i32, got (i32, i32) -> i32');
    expect(logger.lines).toEqual([]);
  });

  it('links the same module when no typed imports are given (what instantiation alone checks)', () => {
    expect(startVm(wrongLog).vm.failed).toBe(false);
  });

  it('refuses a module importing a hostcall outside allowedHostcalls: GW_ERR_ABI_CAPABILITY naming it', () => {
    const ok = [{ ...asRead[0], type: { params: [i32, i32, i32], results: [i32] } }];
    const err = startError(() => startVm(wrongLog, { imports: ok, allowedHostcalls: ['proxy_get_property'] }));
    expect(err.code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(err.message).toContain('does not list: proxy_log');
    expect(startVm(headerFilter, { allowedHostcalls: ['proxy_get_header_map_value', 'proxy_add_header_map_value'] }).vm.failed).toBe(false);
  });

  it('enforces allowedHostcalls on the import names alone when no typed imports are given', () => {
    const err = startError(() => startVm(headerFilter, { allowedHostcalls: ['proxy_get_header_map_value'] }));
    expect(err.code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(err.message).toContain('does not list: proxy_add_header_map_value');
  });

  it('leaves the host\'s own sandbox imports of an instrumented module out of the name-only check', () => {
    const instrumented = guestWat({
      imports: `
  (import "edge-gateway:sandbox" "budget_check" (func $budget (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))`,
      body: '(func (export "proxy_on_context_create") (param i32 i32))',
    });
    const err = startError(() => startVm(instrumented, { allowedHostcalls: ['fd_write'] }));
    expect(err.code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(err.message).not.toContain('edge-gateway:sandbox');
  });
});
