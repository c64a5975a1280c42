/**
 * ABI version detection (reference §1.1) and the per-version callback arity check (§1.2, §4.1):
 * the first `proxy_abi_version_*` function export in export order wins, a module without one is
 * never run, and a headers callback with the other version's arity is refused at load.
 */
import { describe, expect, it } from 'vitest';
import { AbiVersion, HeadersAction } from '../../gateway/abi/enums.js';
import { detectAbiVersion } from '../../gateway/abi/version.js';
import { GatewayError } from '../../gateway/errors.js';
import { RecordingLogger, TestStream, startVm, text } from '../helpers/host.js';
import { compileWat, guestWat } from '../helpers/wat.js';

/** A module exporting `markers` in this order, memory and an allocator, and nothing else. */
function withMarkers(...markers: string[]): string {
  return `(module
  (memory (export "memory") 1)
  (func (export "malloc") (param i32) (result i32) (i32.const 1024))
  ${markers.map((m) => `(func (export "proxy_abi_version_${m}"))`).join('\n  ')}
)`;
}

/** Starts a module and returns the GatewayError it was refused with. */
function refusal(wat: string, name = 'test.wasm', logger = new RecordingLogger()): GatewayError {
  try {
    startVm(wat, { name, ports: { logger } });
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('the module was accepted');
}

describe('detectAbiVersion', () => {
  it.each([
    ['0_1_0', AbiVersion.V0_1_0],
    ['0_2_0', AbiVersion.V0_2_0],
    ['0_2_1', AbiVersion.V0_2_1],
  ])('reads proxy_abi_version_%s as ABI %s', (marker, version) => {
    expect(detectAbiVersion(compileWat(withMarkers(marker)))).toBe(version);
    expect(startVm(withMarkers(marker)).vm.abiVersion).toBe(version);
  });

  it('takes the first marker in export order when a module exports several', () => {
    expect(detectAbiVersion(compileWat(withMarkers('0_1_0', '0_2_1')))).toBe(AbiVersion.V0_1_0);
    expect(detectAbiVersion(compileWat(withMarkers('0_2_1', '0_1_0')))).toBe(AbiVersion.V0_2_1);
    expect(detectAbiVersion(compileWat(withMarkers('0_2_0', '0_2_1', '0_1_0')))).toBe(AbiVersion.V0_2_0);
  });

  it('skips unknown markers such as vNEXT 0_x_x and takes the next known one', () => {
    expect(detectAbiVersion(compileWat(withMarkers('0_x_x')))).toBeNull();
    expect(detectAbiVersion(compileWat(withMarkers('0_x_x', '0_2_0')))).toBe(AbiVersion.V0_2_0);
  });

  it('ignores a marker name exported as a global rather than a function', () => {
    const wat = `(module
      (memory (export "memory") 1)
      (global (export "proxy_abi_version_0_1_0") i32 (i32.const 0))
      (func (export "proxy_abi_version_0_2_1")))`;
    expect(detectAbiVersion(compileWat(wat))).toBe(AbiVersion.V0_2_1);
  });
});

describe('loading a module by its declared version', () => {
  it('refuses a module without a marker with GW_ERR_ABI_VERSION naming the module, before running it', () => {
    const logger = new RecordingLogger();
    const err = refusal(`(module
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "started")
      (func (export "malloc") (param i32) (result i32) (i32.const 1024))
      (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 0) (i32.const 7)))))`,
    'filters/unmarked.wasm', logger);
    expect(err.code).toBe('GW_ERR_ABI_VERSION');
    expect(err.message).toContain('module filters/unmarked.wasm');
    expect(err.message).toBe('module filters/unmarked.wasm: missing or unknown Proxy-Wasm ABI version '
      + '(no proxy_abi_version_0_1_0, _0_2_0 or _0_2_1 export)');
    expect(logger.lines).toEqual([]);
  });

  it('refuses a module whose only marker is vNEXT proxy_abi_version_0_x_x with GW_ERR_ABI_VERSION', () => {
    expect(refusal(withMarkers('0_x_x'), 'next.wasm').code).toBe('GW_ERR_ABI_VERSION');
  });

  it('refuses a 0.1.0 module whose proxy_on_request_headers takes 3 parameters with GW_ERR_ABI_EXPORT', () => {
    const logger = new RecordingLogger();
    const err = refusal(guestWat({ abi: '0_1_0',
      imports: '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))',
      body: `
      (data (i32.const 0) "started")
      (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 0) (i32.const 7))))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 0))` }),
    'old.wasm', logger);
    expect(err.code).toBe('GW_ERR_ABI_EXPORT');
    expect(err.message).toBe('module old.wasm: export proxy_on_request_headers takes 3 parameters, ABI 0.1.0 expects 2');
    expect(logger.lines).toEqual([]); // refused before _initialize
  });

  it('refuses a 0.1.0 module whose proxy_on_response_headers takes 3 parameters with GW_ERR_ABI_EXPORT', () => {
    const err = refusal(guestWat({ abi: '0_1_0', body: `
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 0))` }));
    expect(err.code).toBe('GW_ERR_ABI_EXPORT');
    expect(err.message).toContain('proxy_on_response_headers takes 3 parameters, ABI 0.1.0 expects 2');
  });

  it.each([['0.2.0', '0_2_0'], ['0.2.1', '0_2_1']] as const)('refuses a %s module whose proxy_on_request_headers takes 2 parameters with GW_ERR_ABI_EXPORT', (version, abi) => {
    const err = refusal(guestWat({ abi, body: `
      (func (export "proxy_on_request_headers") (param i32 i32) (result i32) (i32.const 0))` }), 'new.wasm');
    expect(err.code).toBe('GW_ERR_ABI_EXPORT');
    expect(err.message).toBe(`module new.wasm: export proxy_on_request_headers takes 2 parameters, ABI ${version} expects 3`);
  });

  it('runs a 0.1.0 module whose headers callbacks take (context_id, num_headers)', () => {
    const { vm } = startVm(guestWat({ abi: '0_1_0',
      imports: '(import "env" "proxy_continue_request" (func $continue (result i32)))',
      body: `
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (result i32)
        (i32.store (i32.const 0) (local.get $n))
        (drop (call $continue))
        (i32.const 1))` }));
    expect(vm.abiVersion).toBe(AbiVersion.V0_1_0);
    const root = vm.createRoot({ name: 'legacy', rootId: '', configuration: text('') });
    const host = new TestStream([[':path', '/'], [':method', 'GET']]);
    expect(vm.createStream(root, host).onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
    expect(vm.mem.u32(0)).toBe(2);
    expect(host.actions).toEqual(['continue:0']);
  });

  it('does not look up proxy_on_foreign_function for a 0.1.0 module', () => {
    const { vm } = startVm(guestWat({ abi: '0_1_0', body: '(func (export "proxy_on_foreign_function") (param i32 i32 i32))' }));
    expect(vm.callbacks.onForeignFunction).toBeNull();
  });
});
