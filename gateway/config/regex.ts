/**
 * The regular expressions of the configuration (`routes[].match.pathRegex`, `headers[].regex`),
 * which run on client input: the path and header values of every request. One compiler serves
 * validation and matching, so what passes `validate` is exactly what runs.
 *
 * Engine: re2js, a pure-JavaScript port of RE2, as Envoy's `safe_regex` uses RE2. A backtracking
 * engine (JavaScript's RegExp) takes exponential time on patterns like `(a+)+` and a path of a few
 * dozen characters, and blocks the event loop, so every connection, while it runs; RE2 matches in
 * time linear in the input (times the size of the pattern, bounded below). The native `re2`
 * binding was not taken: it downloads a prebuilt binary at install or builds with node-gyp, which
 * fetches Node's headers, and neither works where only the npm registry is reachable (nor on an
 * ARM box without a toolchain). re2js has no dependencies and needs no build.
 *
 * Syntax is RE2's (as Envoy's): lookarounds and backreferences do not exist there and are
 * refused when the configuration loads, with the field at fault.
 */
import { RE2JS } from 're2js';
import { GatewayError } from '../errors.js';

/**
 * Largest compiled program accepted. RE2's cost per input character grows with the program size,
 * so this bounds the time one match costs per byte of path or header. Envoy refuses above 100 by
 * default, which users found too tight (a few alternatives with counted repeats pass it); 1000
 * admits any hand-written route pattern, and measured here even the costliest patterns of that
 * size take about a millisecond on 16 KiB of input (Node's limit for a whole request head).
 */
export const MAX_REGEX_PROGRAM_SIZE = 1000;

/** A compiled pattern that matches the whole input (anchored at both ends, as Envoy's). */
export interface WholeMatch {
  test(input: string): boolean;
}

/**
 * Compiles `source` for whole-input matching, or throws an Error whose message says why (RE2's
 * parse error, or the program size); callers prefix the field.
 */
export function compileRegex(source: string): WholeMatch {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (err) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `not a valid RE2 pattern (no lookarounds or backreferences): ${(err as Error).message}`);
  }
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM_SIZE) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `pattern too complex: RE2 program size ${size}, the limit is ${MAX_REGEX_PROGRAM_SIZE}`);
  }
  // testExact runs the DFA without capture groups: the fast path, and anchored at both ends.
  return { test: (input) => re.testExact(input) };
}
