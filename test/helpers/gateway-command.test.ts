import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatewayCommand, timeScale } from './gateway-command.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('the command that runs the gateway in tests', () => {
  it('is this Node running gateway/cli.ts through tsx when EDGE_GATEWAY_TEST_NODE is unset or blank', () => {
    for (const prefix of [undefined, '', '  ']) {
      const [program, args] = gatewayCommand(['--expose-gc'], prefix);
      expect(program).toBe(process.execPath);
      expect(args[0]).toBe('--expose-gc');
      expect(args[1]).toBe('--import');
      expect(args[2]).toMatch(/^file:.*tsx/);
      expect(args.slice(3)).toEqual([join(ROOT, 'gateway/cli.ts')]);
    }
  });

  it('is the prefix\'s program and arguments, then the node arguments, then dist/gateway/cli.js when it is set', () => {
    const [program, args] = gatewayCommand(['--expose-gc'], ' qemu-aarch64-static  -L /  /lanes/arm64/bin/node ');
    expect(program).toBe('qemu-aarch64-static');
    expect(args).toEqual(['-L', '/', '/lanes/arm64/bin/node', '--expose-gc', join(ROOT, 'dist/gateway/cli.js')]);
  });
});

describe('the time scale of the gateway\'s Node', () => {
  it('is 1 when EDGE_GATEWAY_TEST_TIME_SCALE is unset or blank, and the number it holds otherwise', () => {
    expect([undefined, '', ' '].map(timeScale)).toEqual([1, 1, 1]);
    expect(timeScale('4')).toBe(4);
    expect(timeScale('2.5')).toBe(2.5);
  });

  it('refuses anything that is not a number of at least 1', () => {
    for (const text of ['fast', '0', '0.5', '-3', 'Infinity']) expect(() => timeScale(text)).toThrow('EDGE_GATEWAY_TEST_TIME_SCALE must be a number >= 1');
  });
});
