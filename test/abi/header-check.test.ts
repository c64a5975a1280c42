import { describe, expect, it } from 'vitest';
import { fitsHeaderMap, HeaderTarget, isFinalStatus, isHeaderEntry, isHeaderList, isHeaderValue } from '../../gateway/abi/header-check.js';
import { MAX_HEADER_MAP_BYTES } from '../../gateway/abi/limits.js';

describe('header-check', () => {
  it('accepts every RFC 9110 token character in a name and nothing else below 0x80', () => {
    const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (let c = 0; c < 256; c++) {
      const ch = String.fromCharCode(c);
      expect([c, isHeaderEntry(HeaderTarget.EXTRA, `x${ch}`, 'v')]).toEqual([c, tchar.includes(ch)]);
    }
    expect(isHeaderEntry(HeaderTarget.EXTRA, '', 'v')).toBe(false);
  });

  it('accepts HTAB, SP, visible ASCII and obs-text in a value; refuses NUL, CR, LF, other controls and DEL', () => {
    for (let c = 0; c < 256; c++) {
      const ok = c === 0x09 || (c >= 0x20 && c !== 0x7f);
      expect([c, isHeaderValue(`a${String.fromCharCode(c)}b`)]).toEqual([c, ok]);
    }
    expect(isHeaderValue('')).toBe(true);
    expect(isHeaderValue('\u0100')).toBe(false);
  });

  it('takes 200..599 as a final status', () => {
    expect([0, 42, 100, 199, 200, 404, 599, 600, 99999, -200, 200.5].map(isFinalStatus))
      .toEqual([false, false, false, false, true, true, true, false, false, false, false]);
  });

  it('allows only the pseudo-headers of the map, each with its own rule', () => {
    const cases: Array<[HeaderTarget, string, string, boolean]> = [
      [HeaderTarget.REQUEST, ':path', '/a/b?c=d%20e', true], [HeaderTarget.REQUEST, ':path', '*', true],
      [HeaderTarget.REQUEST, ':path', '/a b', false], [HeaderTarget.REQUEST, ':path', '/a\tb', false], [HeaderTarget.REQUEST, ':path', '', false],
      [HeaderTarget.REQUEST, ':path', '/a\x7fb', false],
      // What a client may send must be writable back (absolute-form, raw 8-bit bytes).
      [HeaderTarget.REQUEST, ':path', 'http://x/', true], [HeaderTarget.REQUEST, ':path', '/caf\xe9', true],
      [HeaderTarget.REQUEST, ':method', 'GET', true], [HeaderTarget.REQUEST, ':method', '', false], [HeaderTarget.REQUEST, ':method', 'G\rT', false],
      [HeaderTarget.REQUEST, ':authority', 'h.test:8080', true], [HeaderTarget.REQUEST, ':authority', '', true],
      [HeaderTarget.REQUEST, ':authority', 'h\r\nx', false], [HeaderTarget.REQUEST, ':authority', 'h\0', false],
      [HeaderTarget.REQUEST, ':scheme', 'https', true], [HeaderTarget.REQUEST, ':status', '200', false], [HeaderTarget.REQUEST, ':x', 'y', false],
      [HeaderTarget.RESPONSE, ':status', '204', true], [HeaderTarget.RESPONSE, ':status', '20', false], [HeaderTarget.RESPONSE, ':status', '2x0', false],
      [HeaderTarget.RESPONSE, ':status', '100', false], [HeaderTarget.RESPONSE, ':path', '/', false],
      [HeaderTarget.TRAILERS, ':status', '200', false], [HeaderTarget.EXTRA, ':status', '200', false],
      [HeaderTarget.RESPONSE, 'content-length', '12', true], [HeaderTarget.RESPONSE, 'content-length', '1 2', false],
      [HeaderTarget.REQUEST, 'content-length', '', false],
    ];
    for (const [target, name, value, ok] of cases) expect([target, name, value, isHeaderEntry(target, name, value)]).toEqual([target, name, value, ok]);
  });

  it('checks a whole list and its size against the map limit', () => {
    expect(isHeaderList(HeaderTarget.REQUEST, [':path', '/', 'x-a', '1'])).toBe(true);
    expect(isHeaderList(HeaderTarget.REQUEST, [':path', '/', 'x-a', '1\n'])).toBe(false);
    expect(isHeaderList(HeaderTarget.EXTRA, ['x', 'a'.repeat(MAX_HEADER_MAP_BYTES - 1)])).toBe(true);
    expect(isHeaderList(HeaderTarget.EXTRA, ['x', 'a'.repeat(MAX_HEADER_MAP_BYTES)])).toBe(false);
    expect([fitsHeaderMap(MAX_HEADER_MAP_BYTES - 10, 10), fitsHeaderMap(MAX_HEADER_MAP_BYTES - 10, 11)]).toEqual([true, false]);
  });
});
