import { describe, expect, it } from 'vitest';
import { ESCAPED_SLASH, INVALID_PATH, normalizeTarget, type PathOptions } from '../../gateway/proxy/normalize-path.js';

const ON: PathOptions = { normalize: true, mergeSlashes: true, escapedSlashes: 'keep' };

describe('path normalization', () => {
  it('returns an already normal target itself, without building a new string', () => {
    for (const target of ['/', '/api/v1/users?id=1&x=../y', '/.well-known/acme', '/a.b/c..d/...', '/caf%C3%A9', '/a%2Fb', '/x?a=%2e%2e//']) {
      expect(normalizeTarget(target, ON)).toBe(target);
    }
  });

  it('removes dot segments as RFC 3986 §5.2.4 does, never above the root', () => {
    const cases: Array<[string, string]> = [
      ['/x/../admin', '/admin'], ['/./admin', '/admin'], ['/a/b/c/./../../g', '/a/g'], ['/mid/content=5/../6', '/mid/6'],
      ['/../../admin', '/admin'], ['/a/b/.', '/a/b/'], ['/a/b/..', '/a/'], ['/..', '/'], ['/.', '/'], ['/a/./b/', '/a/b/'],
      ['/a//../b', '/a/b'],
    ];
    for (const [input, output] of cases) expect([input, normalizeTarget(input, ON)]).toEqual([input, output]);
  });

  it('decodes escapes of unreserved characters only and upper-cases the others', () => {
    expect(normalizeTarget('/%61dmin', ON)).toBe('/admin');
    expect(normalizeTarget('/%41%7E%2d%5F%2E%30', ON)).toBe('/A~-_.0');
    expect(normalizeTarget('/caf%c3%a9/%3f%23%25%20', ON)).toBe('/caf%C3%A9/%3F%23%25%20');
    // Decoded dots are dot segments.
    expect(normalizeTarget('/%2e%2e/%2E/admin', ON)).toBe('/admin');
    expect(normalizeTarget('/x/.%2e/admin', ON)).toBe('/admin');
  });

  it('merges adjacent slashes and treats a backslash as a slash', () => {
    expect(normalizeTarget('//admin', ON)).toBe('/admin');
    expect(normalizeTarget('/a///b//', ON)).toBe('/a/b/');
    expect(normalizeTarget('/\\admin', ON)).toBe('/admin');
    expect(normalizeTarget('/a\\..\\admin', ON)).toBe('/admin');
  });

  it('leaves the query untouched', () => {
    expect(normalizeTarget('//a/./b/%61?x=/../%61&y=//', ON)).toBe('/a/b/a?x=/../%61&y=//');
  });

  it('keeps escaped slashes by default, or refuses them, or decodes them before the other steps', () => {
    expect(normalizeTarget('/a%2fb/%5c', ON)).toBe('/a%2Fb/%5C');
    expect(normalizeTarget('/a%2F..%2Fadmin', ON)).toBe('/a%2F..%2Fadmin');
    expect(normalizeTarget('/a%2Fb', { ...ON, escapedSlashes: 'reject' })).toBe(ESCAPED_SLASH);
    expect(normalizeTarget('/a%5cb', { ...ON, escapedSlashes: 'reject' })).toBe(ESCAPED_SLASH);
    expect(normalizeTarget('/a%2F..%2Fadmin', { ...ON, escapedSlashes: 'unescape' })).toBe('/admin');
    expect(normalizeTarget('/a%2f%2fb', { ...ON, escapedSlashes: 'unescape' })).toBe('/a/b');
  });

  it('refuses fragments, controls, spaces, non-ASCII and malformed escapes', () => {
    for (const target of ['/a#b', '/a b', '/a\tb', '/a\u0000', '/a\u007f', '/caf\u00e9', '/%', '/%4', '/%zz', '/a%g1']) {
      expect([target, normalizeTarget(target, ON)]).toEqual([target, INVALID_PATH]);
    }
    // Even with every option off: a fragment or a control has no place in a request target.
    const off: PathOptions = { normalize: false, mergeSlashes: false, escapedSlashes: 'keep' };
    expect(normalizeTarget('/a#b', off)).toBe(INVALID_PATH);
  });

  it('does only what is switched on', () => {
    const mergeOnly: PathOptions = { normalize: false, mergeSlashes: true, escapedSlashes: 'keep' };
    expect(normalizeTarget('//a/../%61%2f', mergeOnly)).toBe('/a/../%61%2f');
    const dotsOnly: PathOptions = { normalize: true, mergeSlashes: false, escapedSlashes: 'keep' };
    expect(normalizeTarget('//a/./b//%61', dotsOnly)).toBe('//a/b//a');
    const off: PathOptions = { normalize: false, mergeSlashes: false, escapedSlashes: 'keep' };
    for (const target of ['//a/../b', '/%61', '/a\\b', '/%zz']) expect(normalizeTarget(target, off)).toBe(target);
  });
});
