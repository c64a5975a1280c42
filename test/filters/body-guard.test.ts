/**
 * filters/body-guard end to end: a real gateway on port 0 runs filters/dist/body-guard.wasm in
 * front of a real upstream; request bodies arrive with a content-length or chunked in several
 * writes, responses leave the upstream in several writes, and every behaviour of
 * filters/body-guard/README.md is checked on the wire, configuration errors included.
 */
import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { answerOk, filterHarness, type FilterGateway, type UpstreamHandler } from '../helpers/filter-gateway.js';
import type { TestGateway } from '../helpers/gateway.js';
import { send, waitFor, type Reply } from '../helpers/guests.js';

const MODULE = 'filters/dist/body-guard.wasm';
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An upstream answer: `chunks` written one by one, 20 ms apart. */
function answer(headers: Record<string, string | number>, chunks: Array<string | Buffer>, trailers?: Record<string, string>): UpstreamHandler {
  return (_req, res) => {
    res.writeHead(200, headers);
    void (async () => {
      for (const chunk of chunks) {
        res.write(chunk);
        await pause(20);
      }
      if (trailers) res.addTrailers(trailers);
      res.end();
    })();
  };
}

/** Answers 200 with `ok` (2 bytes); the request body is recorded by startUpstream. */
const ok = answerOk();

describe('the body-guard filter', () => {
  const h = filterHarness(MODULE, 'body-guard');

  function setup(configuration: unknown, handler: UpstreamHandler = ok): Promise<FilterGateway> {
    return h.start(configuration, { handler });
  }

  /** POSTs `chunks`, written one by one 20 ms apart (chunked unless a content-length is given). */
  function post(gw: TestGateway, headers: Record<string, string | number>, chunks: Array<string | Buffer>): Promise<Reply> {
    return send(`${gw.url}/upload`, { method: 'POST', headers, body: chunks, beforeChunk: (i) => (i === 0 ? Promise.resolve() : pause(20)) });
  }

  function json(reply: Reply): unknown {
    expect(reply.headers['content-type']).toBe('application/json');
    return JSON.parse(reply.body.toString('utf8'));
  }

  describe('request size limit', () => {
    it('answers 413 from the content-length alone, before the client sends any of the body', async () => {
      const { gw, upstream } = await setup({ maxRequestBytes: 100 });
      const reply = await new Promise<Reply>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/upload`, { method: 'POST', agent: false, headers: { 'content-length': 101, 'content-type': 'text/plain' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.flushHeaders(); // the head only; the body is never written
      });
      expect(reply.status).toBe(413);
      expect(json(reply)).toEqual({ error: 'payload_too_large', limit: 100 });
      expect(reply.headers['content-length']).toBe(String(reply.body.length));
      expect(upstream.requests).toHaveLength(0);
      await waitFor(() => gw.logs.some((l) => l.access === true), 'the access-log line');
      const access = gw.logs.find((l) => l.access === true)!;
      expect([access.status, access.localReplyBy]).toEqual([413, 'body-guard']);
    });

    it('lets a body of exactly maxRequestBytes through', async () => {
      const { gw, upstream } = await setup({ maxRequestBytes: 100 });
      const body = 'x'.repeat(100);
      const reply = await post(gw, { 'content-length': 100, 'content-type': 'text/plain' }, [body.slice(0, 50), body.slice(50)]);
      expect(reply.status).toBe(200);
      expect(upstream.requests[0].body.toString()).toBe(body);
    });

    it('counts a chunked body as it streams and answers 413 once it passes the limit, abandoning the upstream request', async () => {
      const { gw, upstream } = await setup({ maxRequestBytes: 100 });
      const reply = await post(gw, { 'content-type': 'text/plain' }, ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40), 'd'.repeat(40)]);
      expect(reply.headers['transfer-encoding']).toBeUndefined();
      expect(reply.status).toBe(413);
      expect(json(reply)).toEqual({ error: 'payload_too_large', limit: 100 });
      await pause(100);
      // The upstream got the start of the body, then the request was reset: it never completed.
      expect(upstream.requests).toHaveLength(0);
    });

    it('lets a chunked body within the limit stream through unchanged', async () => {
      const { gw, upstream } = await setup({ maxRequestBytes: 100 });
      const chunks = ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(20)];
      const reply = await post(gw, { 'content-type': 'text/plain' }, chunks);
      expect(reply.status).toBe(200);
      expect(upstream.requests[0].body.toString()).toBe(chunks.join(''));
    });

    it('limits a buffered JSON body the same way', async () => {
      const { gw, upstream } = await setup({ maxRequestBytes: 20, jsonContentTypes: ['application/json'] });
      const reply = await post(gw, { 'content-type': 'application/json' }, ['{"items": [', '1, 2, 3, 4, ', '5, 6]}']);
      expect(reply.status).toBe(413);
      expect(json(reply)).toEqual({ error: 'payload_too_large', limit: 20 });
      expect(upstream.requests).toHaveLength(0);
    });

    it('refuses any body with maxRequestBytes 0, and lets requests without a body through', async () => {
      const { gw, upstream } = await setup({ maxRequestBytes: 0 });
      expect((await post(gw, { 'content-length': 1 }, ['x'])).status).toBe(413);
      expect((await send(`${gw.url}/a`)).status).toBe(200);
      expect((await post(gw, { 'content-length': 0 }, [])).status).toBe(200);
      expect(upstream.requests).toHaveLength(2);
    });
  });

  describe('JSON check', () => {
    const config = { jsonContentTypes: ['application/json'] };

    it('passes well-formed JSON to the upstream byte for byte, whatever the chunking', async () => {
      const { gw, upstream } = await setup(config);
      const body = Buffer.from('{"name": "zoë 🚀", "n": [1, 2.5e3, -0.1], "ok": true, "none": null, "esc": "a\\"b\\u00e9"}\n');
      // Split inside the two-byte ë and inside the four-byte rocket.
      const at1 = body.indexOf('ë') + 1;
      const at2 = body.indexOf(Buffer.from('🚀')) + 2;
      const reply = await post(gw, { 'content-type': 'Application/JSON; charset=utf-8' }, [body.subarray(0, at1), body.subarray(at1, at2), body.subarray(at2)]);
      expect(reply.status).toBe(200);
      expect(Buffer.compare(upstream.requests[0].body, body)).toBe(0);
    });

    it('answers 400 with the message and byte position of the first error', async () => {
      const { gw, upstream } = await setup(config);
      const reply = await post(gw, { 'content-type': 'application/json', 'content-length': 9 }, ['{"a": 1,}']);
      expect(reply.status).toBe(400);
      expect(json(reply)).toEqual({ error: 'invalid_json', message: 'expected a string key in an object', position: 8, line: 1, column: 9 });
      expect(reply.headers['content-length']).toBe(String(reply.body.length));
      expect(upstream.requests).toHaveLength(0);
    });

    it('counts the position in bytes over the whole body, across chunks and lines', async () => {
      const { gw } = await setup(config);
      const text = '{\n  "name": "zoë",\n  "tags": ["a" "b"]\n}';
      const position = Buffer.from(text).indexOf('"b"');
      expect(position).toBe(text.indexOf('"b"') + 1); // ë is two bytes
      const reply = await post(gw, { 'content-type': 'application/json' }, [text.slice(0, 14), text.slice(14, 30), text.slice(30)]);
      expect(reply.status).toBe(400);
      expect(json(reply)).toEqual({ error: 'invalid_json', message: 'expected \',\' or \']\' in an array', position, line: 3, column: 16 });
    });

    it('reports truncated JSON at the end of the body', async () => {
      const { gw } = await setup(config);
      const reply = await post(gw, { 'content-type': 'application/json' }, ['{"a": [1, 2', ', 3']);
      expect(json(reply)).toEqual({ error: 'invalid_json', message: 'unexpected end of input', position: 14, line: 1, column: 15 });
    });

    it('checks a body that ends with trailers', async () => {
      const { gw, upstream } = await setup(config);
      const attempt = (body: string): Promise<Reply> => new Promise((resolve, reject) => {
        const req = httpRequest(`${gw.url}/upload`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', te: 'trailers', trailer: 'x-checksum' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body: Buffer.concat(chunks) }));
        });
        req.on('error', reject);
        req.write(body);
        req.addTrailers({ 'x-checksum': '42' });
        req.end();
      });
      const bad = await attempt('[1, 2,]');
      expect(bad.status).toBe(400);
      expect(json(bad)).toEqual({ error: 'invalid_json', message: 'unexpected character \']\'', position: 6, line: 1, column: 7 });
      const good = await attempt('[1, 2]');
      expect(good.status).toBe(200);
      expect(upstream.requests).toHaveLength(1);
      expect(upstream.requests[0].body.toString()).toBe('[1, 2]');
    });

    it('does not check other content types, requests without one, or empty bodies', async () => {
      const { gw, upstream } = await setup(config);
      expect((await post(gw, { 'content-type': 'text/plain' }, ['{not json'])).status).toBe(200);
      expect((await post(gw, { 'content-type': 'application/json-seq' }, ['{not json'])).status).toBe(200);
      expect((await post(gw, {}, ['{not json'])).status).toBe(200);
      expect((await post(gw, { 'content-type': 'application/json', 'content-length': 0 }, [])).status).toBe(200);
      expect((await post(gw, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, [])).status).toBe(200);
      expect(upstream.requests.map((r) => r.body.toString())).toEqual(['{not json', '{not json', '{not json', '', '']);
    });

    it('matches type/* ranges, ignoring case and parameters', async () => {
      const { gw, upstream } = await setup({ jsonContentTypes: ['application/*'] });
      expect((await post(gw, { 'content-type': 'application/vnd.api+json; charset=UTF-8' }, ['{"ok": true}'])).status).toBe(200);
      expect((await post(gw, { 'content-type': 'APPLICATION/X-Anything' }, ['nope'])).status).toBe(400);
      expect((await post(gw, { 'content-type': 'text/plain' }, ['nope'])).status).toBe(200);
      expect(upstream.requests.map((r) => r.body.toString())).toEqual(['{"ok": true}', 'nope']);
    });
  });

  describe('response redaction', () => {
    const CARDS = { redact: ['#{4}-#{4}-#{4}-#{4}'] };

    it('redacts every occurrence, also across the chunk boundaries of the upstream\'s writes, with an exact content-length', async () => {
      const original = 'card 4111-1111-1111-1111 and 5500-0000-0000-0004 end';
      const chunks = ['card 4111-11', '11-1111-1111 and 5500-0000-00', '00-0004 end'];
      const { gw } = await setup(CARDS, answer({ 'content-type': 'text/plain; charset=utf-8', 'content-length': original.length, 'x-extra': 'kept' }, chunks));
      const reply = await send(`${gw.url}/statement`);
      const expected = 'card [REDACTED] and [REDACTED] end';
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe(expected);
      expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(expected)));
      expect(reply.headers['transfer-encoding']).toBeUndefined();
      expect(reply.headers['x-extra']).toBe('kept');
    });

    it('redacts a chunked response and gives it its new length', async () => {
      const { gw } = await setup(CARDS, answer({ 'content-type': 'application/json' }, ['{"card": "1234-', '5678-9012-3456"}']));
      const reply = await send(`${gw.url}/x`);
      expect(reply.body.toString()).toBe('{"card": "[REDACTED]"}');
      expect(reply.headers['content-length']).toBe('22');
    });

    it('leaves a response with nothing to redact as it was', async () => {
      const body = 'no card numbers here: 4111-1111-1111';
      const { gw } = await setup(CARDS, answer({ 'content-type': 'text/plain', 'content-length': body.length }, [body.slice(0, 10), body.slice(10)]));
      const reply = await send(`${gw.url}/x`);
      expect(reply.body.toString()).toBe(body);
      expect(reply.headers['content-length']).toBe(String(body.length));
    });

    it('uses per-pattern replacements, the configured default, and the first pattern that matches at each position', async () => {
      const configuration = {
        replacement: '<hidden>',
        redact: [{ pattern: 'secret-token', replacement: '***' }, 'secret', { pattern: '@@-#{3}' }],
      };
      const body = 'secret-token, secret, AB-123, ab-12, secrets';
      const { gw } = await setup(configuration, answer({ 'content-type': 'text/plain' }, [body]));
      const reply = await send(`${gw.url}/x`);
      expect(reply.body.toString()).toBe('***, <hidden>, <hidden>, ab-12, <hidden>s');
    });

    it('implements the pattern language: ? is one whole character, \\ escapes, {n} repeats', async () => {
      const configuration = {
        redact: [
          { pattern: 'key=?#', replacement: '[K]' },
          { pattern: '\\#\\{?\\}', replacement: '[H]' },
          { pattern: 'x\\\\', replacement: '[B]' },
          { pattern: 'ü{2}', replacement: '[U]' },
          { pattern: '@{3}#{2}', replacement: '[L]' },
        ],
      };
      const body = 'key=é1 key=ab #{z} #{zz} x\\ üü ü abc12 ab12 aBc99';
      const { gw } = await setup(configuration, answer({ 'content-type': 'text/plain' }, [body]));
      const reply = await send(`${gw.url}/x`);
      expect(reply.body.toString()).toBe('[K] key=ab [H] #{zz} [B] [U] ü [L] ab12 [L]');
      expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(reply.body.toString())));
    });

    it('redacts only the configured content types (by default text/* and application/json)', async () => {
      const card = 'pan=4111-1111-1111-1111';
      for (const [type, redacted] of [['text/html', true], ['application/json; charset=utf-8', true], ['application/octet-stream', false], ['image/png', false]] as const) {
        const { gw } = await setup(CARDS, answer({ 'content-type': type, 'content-length': card.length }, [card]));
        const reply = await send(`${gw.url}/x`);
        expect([type, reply.body.toString()]).toEqual([type, redacted ? 'pan=[REDACTED]' : card]);
        // A redacted body gets its new length. (Other bodies stream on as they came; the gateway
        // frames any body a filter could have edited as chunked, so their length is not asserted.)
        if (redacted) expect(reply.headers['content-length']).toBe(String('pan=[REDACTED]'.length));
      }
      const { gw } = await setup({ ...CARDS, redactContentTypes: ['application/xml'] }, answer({ 'content-type': 'text/plain' }, [card]));
      expect((await send(`${gw.url}/x`)).body.toString()).toBe(card);
    });

    it('leaves responses without a content-type and compressed responses alone', async () => {
      const card = '4111-1111-1111-1111';
      let { gw } = await setup(CARDS, answer({}, [card]));
      expect((await send(`${gw.url}/x`)).body.toString()).toBe(card);
      ({ gw } = await setup(CARDS, answer({ 'content-type': 'text/plain', 'content-encoding': 'gzip' }, [card])));
      const reply = await send(`${gw.url}/x`);
      expect(reply.body.toString()).toBe(card);
      expect(reply.headers['content-encoding']).toBe('gzip');
      ({ gw } = await setup(CARDS, answer({ 'content-type': 'text/plain', 'content-encoding': 'identity' }, [card])));
      expect((await send(`${gw.url}/x`)).body.toString()).toBe('[REDACTED]');
    });

    it('redacts a response that ends with trailers', async () => {
      const { gw } = await setup(CARDS, answer({ 'content-type': 'text/plain', trailer: 'x-digest' }, ['a 4111-1111-', '1111-1111 b'], { 'x-digest': 'abc' }));
      const reply = await send(`${gw.url}/x`, { headers: { te: 'trailers' } });
      expect(reply.body.toString()).toBe('a [REDACTED] b');
      // NB: the trailers themselves are the host's to forward; edge-gateway currently drops them when
      // a filter held the whole body (it sends an exact content-length, which leaves no room for them).
    });

    it('does not redact its own 400 and 413 answers', async () => {
      const { gw } = await setup({ maxRequestBytes: 5, jsonContentTypes: ['application/json'], redact: ['payload', 'invalid'] });
      const tooLarge = await post(gw, { 'content-length': 6 }, ['123456']);
      expect(json(tooLarge)).toEqual({ error: 'payload_too_large', limit: 5 });
      const invalid = await post(gw, { 'content-type': 'application/json' }, ['{']);
      expect(json(invalid)).toEqual({ error: 'invalid_json', message: 'unexpected end of input', position: 1, line: 1, column: 2 });
    });
  });

  it('leaves bodies over the route\'s bodyLimitBytes to the gateway: 413 for a held request, 500 for a held response', async () => {
    const { gw } = await h.start({ jsonContentTypes: ['application/json'], redact: ['secret'] }, {
      handler: answer({ 'content-type': 'text/plain' }, ['x'.repeat(60), 'y'.repeat(60)]),
      routes: [{ name: 'all', cluster: 'backend', filters: ['body-guard'], bodyLimitBytes: 100 }],
    });
    const request = await post(gw, { 'content-type': 'application/json' }, ['[' + '1,'.repeat(30), '1,'.repeat(30) + '1]']);
    expect([request.status, request.body.toString()]).toEqual([413, 'Payload Too Large\n']);
    const response = await send(`${gw.url}/x`);
    expect([response.status, response.body.toString()]).toEqual([500, 'Internal Server Error\n']);
  });

  it('runs all three features together on one request', async () => {
    const { gw, upstream } = await setup({ maxRequestBytes: 1000, jsonContentTypes: ['application/json'], redact: ['#{3}-#{2}-#{4}'] },
      answer({ 'content-type': 'application/json' }, ['{"ssn": "123-4', '5-6789"}']));
    const reply = await post(gw, { 'content-type': 'application/json' }, ['{"q": ', '"ssn"}']);
    expect(reply.status).toBe(200);
    expect(upstream.requests[0].body.toString()).toBe('{"q": "ssn"}');
    expect(reply.body.toString()).toBe('{"ssn": "[REDACTED]"}');
  });

  describe('configuration errors refuse the plugin at load', () => {
    const cases: Array<[string, unknown, string]> = [
      ['no configuration', '', 'configuration is empty; expected a JSON object such as {"maxRequestBytes":65536,"jsonContentTypes":["application/json"],"redact":["#{4}-#{4}-#{4}-#{4}"]}'],
      ['text that is not JSON', '{"maxRequestBytes": }', 'configuration is not valid JSON: unexpected character \'}\' at line 1, column 21'],
      ['not an object', [1], 'configuration must be a JSON object such as {"maxRequestBytes"'],
      ['nothing enabled', {}, 'configuration enables nothing; set maxRequestBytes, jsonContentTypes or redact, as in {'],
      ['an empty JSON list and no other feature', { jsonContentTypes: [] }, 'configuration enables nothing'],
      ['an unknown key', { maxBytes: 10 }, 'unknown key "maxBytes" (expected maxRequestBytes, jsonContentTypes, redact, replacement or redactContentTypes)'],
      ['a negative size', { maxRequestBytes: -1 }, '"maxRequestBytes" must be a whole number of bytes from 0 to 4294967295, got -1'],
      ['a fractional size', { maxRequestBytes: 1.5 }, 'got 1.5'],
      ['a size too large', { maxRequestBytes: 4294967296 }, 'got 4294967296'],
      ['a size that is a string', { maxRequestBytes: '1kb' }, 'got "1kb"'],
      ['JSON content types that are not a list', { jsonContentTypes: 'application/json' }, '"jsonContentTypes" must be an array of media types such as "application/json" or "text/*", got a string'],
      ['a JSON content type that is not a string', { jsonContentTypes: [true] }, '"jsonContentTypes[0]" must be a media type (a string), got a boolean'],
      ['a JSON content type without a subtype', { jsonContentTypes: ['application/json', 'json'] }, '"jsonContentTypes[1]" is not a media type: "json" (expected type/subtype, type/* or */*, without parameters)'],
      ['a content type with parameters', { jsonContentTypes: ['application/json; charset=utf-8'] }, '"jsonContentTypes[0]" is not a media type'],
      ['a wildcard type with a subtype', { jsonContentTypes: ['*/json'] }, '"jsonContentTypes[0]" is not a media type: "*/json"'],
      ['redact that is not a list', { redact: 'secret' }, '"redact" must be an array of patterns'],
      ['a pattern that is not a string', { redact: [5] }, '"redact[0]" must be a pattern (a string) or an object {"pattern": …, "replacement": …}, got a number'],
      ['an empty pattern', { redact: ['ok', ''] }, '"redact[1]" is not a valid pattern: "" is empty'],
      ['a pattern object without a pattern', { redact: [{ replacement: 'x' }] }, '"redact[0]" has no "pattern"'],
      ['a pattern object with an unknown key', { redact: [{ pattern: 'x', with: 'y' }] }, 'unknown key "redact[0].with" (expected pattern or replacement)'],
      ['a pattern object whose pattern is not a string', { redact: [{ pattern: ['x'] }] }, '"redact[0].pattern" must be a string, got an array'],
      ['a pattern replacement that is not a string', { redact: [{ pattern: 'x', replacement: 1 }] }, '"redact[0].replacement" must be a string, got a number'],
      ['a repetition with nothing before it', { redact: ['{2}#'] }, '"redact[0]" is not a valid pattern: "{2}#" has "{" at character 1 with nothing before it to repeat (write \\{ for a literal {)'],
      ['a brace that is not a repetition', { redact: [{ pattern: '#{x}' }] }, '"redact[0].pattern" is not a valid pattern: "#{x}" has "{" at character 2 that is not a repetition {n} (write \\{ for a literal {)'],
      ['an unclosed repetition', { redact: ['#{4'] }, 'has "{" at character 2 that is not a repetition {n}'],
      ['a repetition of a repetition', { redact: ['#{2}{3}'] }, 'has "{" at character 5 with nothing before it to repeat'],
      ['a repetition of 0', { redact: ['#{0}'] }, '"redact[0]" is not a valid pattern: "#{0}" has the repetition {0} at character 2 (from {1} to {256})'],
      ['a repetition too large', { redact: ['#{1000}'] }, 'has the repetition {1000} at character 2 (from {1} to {256})'],
      ['a pattern too long once expanded', { redact: ['#{256}'.repeat(17)] }, 'is longer than 4096 characters once repetitions are expanded'],
      ['a trailing backslash', { redact: ['ab\\'] }, '"redact[0]" is not a valid pattern: "ab\\" ends with "\\" at character 3 (write \\\\ for a literal \\)'],
      ['a default replacement that is not a string', { redact: ['x'], replacement: null }, '"replacement" must be a string, got null'],
      ['a replacement without patterns', { maxRequestBytes: 10, replacement: '-' }, '"replacement" is set but "redact" has no pattern'],
      ['redact content types without patterns', { maxRequestBytes: 10, redact: [], redactContentTypes: ['text/*'] }, '"redactContentTypes" is set but "redact" has no pattern'],
      ['empty redact content types', { redact: ['x'], redactContentTypes: [] }, '"redactContentTypes" is empty: nothing would be redacted'],
      ['a bad redact content type', { redact: ['x'], redactContentTypes: ['text'] }, '"redactContentTypes[0]" is not a media type: "text"'],
    ];
    for (const [what, configuration, reason] of cases) {
      it(`refuses ${what}`, async () => {
        const error = await h.refused(configuration);
        expect(error.message).toContain(reason);
      });
    }
  });
});
