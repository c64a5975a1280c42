/**
 * Which streams of a plugin go to its canary version: those a header or cookie rule names, and a
 * share (`percent`) of the others.
 *
 * The share is exact rather than random: a stream without a sticky key adds `percent` to an
 * accumulator and goes to the canary each time it passes 100, so 5% is 1 stream in 20 from the
 * first request on (a random draw is within ±1% of 5% only after thousands). With `sticky`, the
 * share is taken over a hash of the client's key (a header, a cookie, or the client address), so a
 * user stays on one version for as long as the percent stays put, and one user among many goes
 * over when it rises; a stream without the key falls back to the accumulator.
 */
import type { IncomingMessage } from 'node:http';
import { compileRegex, type WholeMatch } from '../config/regex.js';
import type { CanaryRuleConfig } from '../config/schema.js';

/** FNV-1a over the key's UTF-16 code units, as a bucket of 0..9999: cheap, stable across nodes and restarts. */
export function stickyBucket(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 10_000;
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export class CanarySplit {
  /** 0..100; moved by the schedule, the API and promotion. */
  percent: number;
  private readonly sticky: ((req: IncomingMessage) => string | undefined) | null;
  private readonly match: ((req: IncomingMessage) => boolean) | null;
  private carry = 0;

  constructor(readonly rule: CanaryRuleConfig) {
    this.percent = rule.steps?.[0] ?? rule.percent;
    this.sticky = stickyKey(rule.sticky);
    this.match = matcher(rule.match);
  }

  /** Whether this stream goes to the canary. */
  takes(req: IncomingMessage): boolean {
    if (this.match !== null && this.match(req)) return true;
    const percent = this.percent;
    if (percent <= 0) return false;
    if (percent >= 100) return true;
    const key = this.sticky?.(req);
    if (key !== undefined) return stickyBucket(key) < percent * 100;
    this.carry += percent;
    if (this.carry < 100) return false;
    this.carry -= 100;
    return true;
  }
}

function stickyKey(sticky: CanaryRuleConfig['sticky']): ((req: IncomingMessage) => string | undefined) | null {
  if (sticky === undefined) return null;
  if ('header' in sticky) {
    const name = sticky.header.toLowerCase();
    return (req) => headerValue(req, name);
  }
  if ('cookie' in sticky) return (req) => cookieValue(headerValue(req, 'cookie'), sticky.cookie);
  return (req) => req.socket.remoteAddress;
}

function matcher(match: CanaryRuleConfig['match']): ((req: IncomingMessage) => boolean) | null {
  if (match === undefined) return null;
  const tests: Array<(req: IncomingMessage) => boolean> = [];
  if (match.header !== undefined) {
    const { exact, regex } = match.header;
    const name = match.header.name.toLowerCase();
    const re: WholeMatch | null = regex === undefined ? null : compileRegex(regex);
    tests.push((req) => {
      const value = headerValue(req, name);
      if (value === undefined) return false;
      return re !== null ? re.test(value) : exact === undefined || value === exact;
    });
  }
  if (match.cookie !== undefined) {
    const { name, exact } = match.cookie;
    tests.push((req) => {
      const value = cookieValue(headerValue(req, 'cookie'), name);
      return value !== undefined && (exact === undefined || value === exact);
    });
  }
  // Any rule given sends a stream to the canary.
  return tests.length === 0 ? null : (req) => tests.some((t) => t(req));
}
