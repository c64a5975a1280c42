/**
 * Start-up results of a root context (root-lifecycle.ts): any non-zero i32 is true, including
 * -1, whose JS value is CALL_FAILED's; only a VM that really failed reports a trap. Found by the
 * module fuzz (test/fuzz/modules.test.ts): a mutated constant made on_vm_start return -1 and the
 * start-up threw a TypeError instead of starting.
 */
import { describe, expect, it } from 'vitest';
import { startVm, text } from '../helpers/host.js';
import { guestWat } from '../helpers/wat.js';

function guest(vmStart: string, configure: string): string {
  return guestWat({
    body: `
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) ${vmStart})
  (func (export "proxy_on_configure") (param i32 i32) (result i32) ${configure})`,
  });
}

const plugin = { name: 'p', rootId: 'r', configuration: text('{}') };

describe('a root context starting', () => {
  it('starts when on_vm_start and on_configure return -1 (0xffffffff is true)', () => {
    const { vm } = startVm(guest('(i32.const -1)', '(i32.const -1)'));
    const root = vm.createRoot(plugin);
    expect(root.alive).toBe(true);
    expect(vm.failed).toBe(false);
  });

  it('still refuses a false on_configure and reports a trap in on_vm_start with its code', () => {
    expect(() => startVm(guest('(i32.const 1)', '(i32.const 0)')).vm.createRoot(plugin))
      .toThrow(expect.objectContaining({ code: 'GW_ERR_ABI_CONFIGURE' }));
    expect(() => startVm(guest('(unreachable)', '(i32.const 1)')).vm.createRoot(plugin))
      .toThrow(expect.objectContaining({ code: 'GW_ERR_ABI_TRAP', message: expect.stringContaining('proxy_on_vm_start failed: trap: unreachable') }));
  });
});
