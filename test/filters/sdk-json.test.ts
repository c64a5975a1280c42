/**
 * The SDK's JSON parser (filters/sdk/json.ts), through the probe fixture's root "json": its
 * onConfigure parses the plugin configuration and logs either "json ok <compact re-serialisation>"
 * or "json error <message> at line L, column C offset=N", then what validateJson (the
 * non-allocating check) says about the same bytes.
 */
import { describe, expect, it } from 'vitest';
import { text } from '../helpers/host.js';
import { bootGuest } from './sdk-guests.js';

const { vm, logger } = bootGuest('probe');

/** [parse line, validate line] for `input`. */
function parse(input: string | Uint8Array): [string, string] {
  const from = logger.lines.length;
  vm.createRoot({ name: 'json', rootId: 'json', configuration: typeof input === 'string' ? text(input) : input });
  const lines = logger.lines.slice(from).map((l) => l.message);
  expect(lines).toHaveLength(2);
  return [lines[0], lines[1]];
}

function ok(input: string, compact: string): void {
  expect(parse(input)).toEqual([`json ok ${compact}`, 'json valid']);
}

function error(input: string | Uint8Array, message: string, line: number, column: number, offset: number): void {
  const where = `${message} at line ${line}, column ${column}`;
  expect(parse(input)).toEqual([`json error ${where} offset=${offset}`, `json invalid ${where}`]);
}

describe('parseJson', () => {
  it('parses every kind of value and writes numbers back as they were written', () => {
    ok('{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"d"},"e":[],"f":{}}', '{"a":[1,2.5,-3e2,true,false,null],"b":{"c":"d"},"e":[],"f":{}}');
    ok('0', '0');
    ok('-0.0e+10', '-0.0e+10');
    ok('1E400', '1E400');
    ok('"plain"', '"plain"');
    ok('null', 'null');
  });

  it('skips whitespace around tokens', () => {
    ok(' \n\t{ "x" :\r\n 1 , "y" : [ 2 , 3 ] } \n', '{"x":1,"y":[2,3]}');
  });

  it('decodes every escape, including surrogate pairs, and quotes control characters back', () => {
    ok('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud834\\udd1e\\u0001"', '"a\\"b\\\\c/d\\b\\f\\n\\r\\té𝄞\\u0001"');
    ok('"naïve ☃ 𝄞"', '"naïve ☃ 𝄞"');
    ok('{"k\\u0041":"v"}', '{"kA":"v"}');
  });

  it('keeps the last of duplicate keys, in first-appearance order', () => {
    ok('{"a":1,"b":2,"a":3}', '{"a":3,"b":2}');
  });

  it('accepts nesting up to 256 levels and refuses deeper', () => {
    ok(`${'['.repeat(256)}${']'.repeat(256)}`, `${'['.repeat(256)}${']'.repeat(256)}`);
    error('['.repeat(257), 'nesting deeper than 256 levels', 1, 257, 256);
  });

  it('reports the first error with its line, column and byte offset', () => {
    error('', 'unexpected end of input', 1, 1, 0);
    error('   ', 'unexpected end of input', 1, 4, 3);
    error('{"a":1,}', 'expected a string key in an object', 1, 8, 7);
    error('{"a" 1}', "expected ':' after an object key", 1, 6, 5);
    error('{"a":1 "b":2}', "expected ',' or '}' in an object", 1, 8, 7);
    error('[1,]', "unexpected character ']'", 1, 4, 3);
    error('[1 2]', "expected ',' or ']' in an array", 1, 4, 3);
    error('{"a":\n  [1,\n   x]}', "unexpected character 'x'", 3, 4, 15);
    error('{} x', 'unexpected content after the JSON value', 1, 4, 3);
    error('{"a":1', 'unexpected end of input', 1, 7, 6);
    error("{'a':1}", 'expected a string key in an object', 1, 2, 1);
    error('// comment\n1', "unexpected character '/'", 1, 1, 0);
  });

  it('refuses malformed numbers and literals', () => {
    error('01', 'leading zeros are not allowed', 1, 2, 1);
    error('-', 'expected a digit', 1, 2, 1);
    error('1.', "expected a digit after '.'", 1, 3, 2);
    error('.5', "unexpected character '.'", 1, 1, 0);
    error('1e', 'expected a digit in the exponent', 1, 3, 2);
    error('+1', "unexpected character '+'", 1, 1, 0);
    error('tru', "invalid literal (expected 'true')", 1, 4, 3);
    error('nul!', "invalid literal (expected 'null')", 1, 4, 3);
    error('NaN', "unexpected character 'N'", 1, 1, 0);
  });

  it('refuses malformed strings', () => {
    error('"abc', 'unterminated string', 1, 5, 4);
    error('"a\\', 'unterminated string', 1, 4, 3);
    error('"a\tb"', 'control character 0x09 in a string (escape it)', 1, 3, 2);
    error('"a\nb"', 'control character 0x0a in a string (escape it)', 1, 3, 2);
    error('"\\x"', "invalid escape '\\x' in a string", 1, 2, 1);
    error('"\\u12"', 'invalid \\u escape (expected 4 hex digits)', 1, 2, 1);
    error('"\\u12g4"', 'invalid \\u escape (expected 4 hex digits)', 1, 2, 1);
    error('"ab\\ud800"', 'lone high surrogate in \\u escape', 1, 4, 3);
    error('"\\ud800\\u0041"', 'lone high surrogate in \\u escape', 1, 2, 1);
    error('"\\udc00"', 'lone low surrogate in \\u escape', 1, 2, 1);
  });

  it('refuses invalid UTF-8 inside strings and stray bytes outside them, counting columns in characters', () => {
    error(Uint8Array.of(0x22, 0xff, 0x22), 'invalid UTF-8 in a string', 1, 2, 1);
    error(Uint8Array.of(0x22, 0xc0, 0x80, 0x22), 'invalid UTF-8 in a string', 1, 2, 1); // overlong NUL
    error(Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22), 'invalid UTF-8 in a string', 1, 2, 1); // encoded surrogate
    error(Uint8Array.of(0x22, 0xe2, 0x98, 0x22), 'invalid UTF-8 in a string', 1, 2, 1); // truncated ☃
    error(Uint8Array.of(0x22, 0x61, 0x5c, 0x6e, 0xf4, 0x90, 0x80, 0x80, 0x22), 'invalid UTF-8 in a string', 1, 5, 4); // > U+10FFFF
    error(Uint8Array.of(0xef, 0xbb, 0xbf, 0x31), 'unexpected byte 0xef', 1, 1, 0); // BOM
    error('{"é": x}', "unexpected character 'x'", 1, 7, 7);
  });
});
