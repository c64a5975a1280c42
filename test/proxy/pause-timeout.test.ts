import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { guestWat } from '../helpers/wat.js';

/** A filter that pauses every request and never calls proxy_continue_stream. */
const stuck = guestWat({ body: `
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))` });

describe('a filter that pauses and never resumes', () => {
  let gw: TestGateway | undefined;
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('gets a 504 from the gateway after the route timeout instead of holding the client', async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'stuck', module: wasmFile(stuck, 'stuck') }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['stuck'], timeoutMs: 300 }],
    });
    const started = Date.now();
    const res = await fetch(`${gw.url}/x`);
    expect(res.status).toBe(504);
    expect(await res.text()).toBe('a filter paused the stream and did not resume it\n');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(upstream.requests).toHaveLength(0);
    const access = gw.logs.find((l) => l.access === true);
    expect(access?.error).toBe('filter_pause_timeout');
  });
});
