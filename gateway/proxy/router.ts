/**
 * Route matching: host (exact or "*.suffix"), path (exact, prefix or regex, on the path without
 * the query), methods and header values. Routes are tried in order and the first match wins.
 * Matchers are compiled once per configuration, never per request. Regexes are RE2 (linear time
 * on client input, config/regex.ts), never a backtracking RegExp.
 */
import { compileRegex } from '../config/regex.js';
import type { RouteConfig } from '../config/schema.js';

export interface RequestFacts {
  /** Host without the port, lower case. */
  host: string;
  /** Path without the query string. */
  path: string;
  method: string;
  header(name: string): string | undefined;
}

type Test = (req: RequestFacts) => boolean;

export interface CompiledRoute<T> {
  readonly config: RouteConfig;
  readonly target: T;
  readonly matches: Test;
}

function hostTest(pattern: string): Test {
  const host = pattern.toLowerCase();
  if (host.startsWith('*.')) {
    const suffix = host.slice(1); // ".example.com"
    return (req) => req.host.endsWith(suffix) && req.host.length > suffix.length;
  }
  return (req) => req.host === host;
}

function pathTest(match: RouteConfig['match']): Test | null {
  if (match.path !== undefined) {
    const path = match.path;
    return (req) => req.path === path;
  }
  if (match.pathPrefix !== undefined && match.pathPrefix !== '/') {
    const prefix = match.pathPrefix;
    return (req) => req.path.startsWith(prefix);
  }
  if (match.pathRegex !== undefined) {
    // Anchored: the whole path must match, as Envoy's safe_regex does.
    const re = compileRegex(match.pathRegex);
    return (req) => re.test(req.path);
  }
  return null;
}

function headerTests(match: RouteConfig['match']): Test[] {
  return (match.headers ?? []).map((h) => {
    const name = h.name.toLowerCase();
    if (h.exact !== undefined) {
      const exact = h.exact;
      return (req: RequestFacts) => req.header(name) === exact;
    }
    if (h.regex !== undefined) {
      const re = compileRegex(h.regex);
      return (req: RequestFacts) => {
        const value = req.header(name);
        return value !== undefined && re.test(value);
      };
    }
    const present = h.present === true;
    return (req: RequestFacts) => (req.header(name) !== undefined) === present;
  });
}

export function compileRoute<T>(config: RouteConfig, target: T): CompiledRoute<T> {
  const tests: Test[] = [];
  if (config.match.host !== undefined) tests.push(hostTest(config.match.host));
  const path = pathTest(config.match);
  if (path !== null) tests.push(path);
  if (config.match.methods !== undefined) {
    const methods = new Set(config.match.methods.map((m) => m.toUpperCase()));
    tests.push((req) => methods.has(req.method));
  }
  tests.push(...headerTests(config.match));
  const matches: Test = tests.length === 0 ? () => true : (req) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i](req)) return false;
    return true;
  };
  return { config, target, matches };
}

export class Router<T> {
  constructor(private readonly routes: readonly CompiledRoute<T>[]) {}

  /** The first route that matches, or undefined (the gateway answers 404). */
  match(req: RequestFacts): CompiledRoute<T> | undefined {
    for (let i = 0; i < this.routes.length; i++) if (this.routes[i].matches(req)) return this.routes[i];
    return undefined;
  }
}
