import { describe, expect, it } from 'vitest';
import { CALL_FAILED } from '../../gateway/abi/context.js';
import { HeadersAction } from '../../gateway/abi/enums.js';
import { TestStream, startVm, text } from '../helpers/host.js';
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
