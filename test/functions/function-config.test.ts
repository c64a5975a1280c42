/**
 * A configuration with functions: every mistake named by its field, and a component that cannot
 * start refusing the gateway with its code and the function's name.
 */
import { describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/gateway.js';
import { parseConfig } from '../../gateway/config/load.js';
import { createLogger } from '../../gateway/log.js';
import { FUNCTION_CACHE, HELLO } from '../helpers/functions.js';
import { Writable } from 'node:stream';

const listeners = [{ name: 'public', address: '127.0.0.1', port: 0 }];
const problems = (doc: Record<string, unknown>): string => {
  try {
    parseConfig({ listeners, ...doc }, 'functions.yaml');
  } catch (err) {
    return (err as Error).message;
  }
  return '';
};

describe('a configuration with edge functions', () => {
  it('names each broken reference and rule by its field', () => {
    const text = problems({
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9'] }],
      functions: [
        { name: 'hello', component: HELLO, allowedHosts: ['nowhere'] },
        { name: 'gone', component: 'no/such/component.wasm', canary: { component: 'no/such/canary.wasm', percent: 5 } },
      ],
      routes: [
        { name: 'both', cluster: 'backend', function: 'hello' },
        { name: 'neither' },
        { name: 'unknown', function: 'missing' },
        { name: 'retried', function: 'hello', retry: { retryOn: ['5xx'] } },
      ],
    });
    expect(text).toContain('functions[0].allowedHosts[0]: unknown cluster "nowhere"');
    expect(text).toContain('functions[1].component: GW_ERR_MODULE_READ: file not found: no/such/component.wasm');
    expect(text).toContain('functions[1].canary.component: GW_ERR_MODULE_READ: file not found: no/such/canary.wasm');
    expect(text).toContain('routes[0]: give exactly one of cluster, function');
    expect(text).toContain('routes[1]: give exactly one of cluster, function');
    expect(text).toContain('routes[2].function: unknown function "missing"');
    expect(text).toContain('routes[3].retry: a function\'s route has no upstream tries to retry');
  });

  it('refuses a core module given as a component, naming the function, and starts nothing', async () => {
    const config = parseConfig({
      listeners, modules: { cacheDir: FUNCTION_CACHE },
      functions: [{ name: 'hello', component: HELLO }, { name: 'core', component: 'filters/dist/headers.wasm' }],
      routes: [{ name: 'core', function: 'core' }],
    }, 'functions.yaml');
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const created = Gateway.create(config, { logger: createLogger('error', sink) });
    await expect(created).rejects.toMatchObject({
      code: 'GW_ERR_FUNCTION_COMPONENT',
      message: expect.stringContaining('functions[1] (core): GW_ERR_FUNCTION_COMPONENT: function core (filters/dist/headers.wasm): is a core WebAssembly module, not a component'),
    });
  }, 30_000);
});
