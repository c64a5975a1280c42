/**
 * Malformed and adversarial HTTP/1 requests for the raw-socket fuzz test and bench/fuzz-http.ts:
 * hand-written families (bad request lines, header syntax, CR/LF injection, huge heads, CL/TE
 * smuggling, chunked errors, pipelining, deny-filter walk-arounds) drawn with random parameters,
 * plus random byte mutations of valid requests. Seeded, so a failure replays with its seed.
 *
 * Conventions the checks rely on: a request hidden inside another (smuggling) always targets a
 * path containing "smuggled"; pipelined valid requests target "/pipe/<n>"; every family but the
 * mutations and pipelining is invalid on purpose and must get a 4xx or a close.
 */

export type Expectation =
  /** Invalid: only 4xx answers (or none), and the connection closes. */
  | 'reject'
  /** May or may not still be valid: any answer but a 5xx. */
  | 'any'
  /** `count` valid requests: exactly that many 200s. */
  | { pipelined: number };

export interface FuzzCase {
  readonly family: string;
  readonly bytes: Buffer;
  readonly expect: Expectation;
}

/** mulberry32: small, fast, good enough to spread cases. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

const HOST = 'Host: fuzz.test\r\n';
const CLOSE = 'Connection: close\r\n';
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: fuzz.test\r\n\r\n';
const CTL = ['\x00', '\x01', '\x07', '\x08', '\x0b', '\x0c', '\x1b', '\x7f'];

function valid(path = '/ok', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\n${HOST}${extra}${CLOSE}\r\n`;
}

const families: Record<string, (r: Rand) => [string, Expectation]> = {
  requestLine: (r) => {
    const lines = [
      'GET', 'GET /', 'GET / HTTP/1.1 extra', ' GET / HTTP/1.1', 'GET / HTTP/1.1 ', 'GET / HTTP/x.y', 'GET / HTTPS/1.1',
      'GET / http/1.1', 'GET / HTTP/1', 'GET / HTTP/11', 'GET / HTTP/1.1.1', 'G\x00T / HTTP/1.1', 'get / HTTP/1.1',
      'GE T / HTTP/1.1', 'GET\t/\tHTTP/1.1', `GET /${pick(r, CTL)} HTTP/1.1`, 'GET /\xff HTTP/1.1', 'GET / HTTP/1.1\r',
      `${'A'.repeat(int(r, 20, 300))} / HTTP/1.1`, 'GET  HTTP/1.1', '/ HTTP/1.1', 'HTTP/1.1', 'GET /a b HTTP/1.1',
      'GET abc HTTP/1.1', 'GET * HTTP/1.1', 'GET http:// HTTP/1.1', 'GET http://a@b/ HTTP/1.1',
      'GET ftp://a/ HTTP/1.1', 'GET /#frag HTTP/1.1', 'GET /% HTTP/1.1', 'GET /%g0 HTTP/1.1', 'GET / HTTP/2.0', 'GET / HTTP/3.1',
      'PRI * HTTP/2.0',
    ];
    return [`${pick(r, lines)}\r\n${HOST}\r\n`, 'reject'];
  },
  headerSyntax: (r) => {
    const bad = [
      'NoColon', ' Leading: space', 'Space : before', ': empty-name', 'Bad\x01Name: v', 'Bad(Name): v', 'X: a\r\n folded',
      'X: a\rb', 'X: a\x00b', 'X: a\x7fb', `X: ${pick(r, CTL)}`, '\tTab: start', 'X:\r\n\tfold', 'Host: a\r\nHost: b',
      'Host: a b', 'Host: u@h', 'Host: [::1', 'Host: h:port', 'X-Ü: v',
    ];
    const line = pick(r, bad);
    const host = line.startsWith('Host') ? '' : HOST;
    return [`GET /h HTTP/1.1\r\n${host}${line}\r\n\r\n`, 'reject'];
  },
  crlfInjection: (r) => {
    const inject = pick(r, ['\r\nX-Injected: 1', '\nX-Injected: 1', '\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: fuzz.test', '\rX: y', '\n\nGET /smuggled HTTP/1.1']);
    const where = int(r, 0, 2);
    if (where === 0) return [`GET /a${inject} HTTP/1.1\r\n${HOST}\r\n`, 'reject'];
    if (where === 1) return [`GET /a HTTP/1.1\r\n${HOST}X-Value: v${inject.replace(/\r\n/g, '\n')}\r\n\r\n`, 'reject'];
    return [`GET /a HTTP/1.1\r\n${HOST}X-Na${inject}me: v\r\n\r\n`, 'reject'];
  },
  hugeHead: (r) => {
    const kind = int(r, 0, 2);
    if (kind === 0) return [`GET /h HTTP/1.1\r\n${HOST}X-Big: ${'v'.repeat(int(r, 17_000, 40_000))}\r\n\r\n`, 'reject'];
    if (kind === 1) return [`GET /${'p'.repeat(int(r, 17_000, 40_000))} HTTP/1.1\r\n${HOST}\r\n`, 'reject'];
    let many = '';
    for (let i = 0; i < int(r, 1000, 3000); i++) many += `X-${i}: ${'x'.repeat(10)}\r\n`;
    return [`GET /h HTTP/1.1\r\n${HOST}${many}\r\n`, 'reject'];
  },
  smuggling: (r) => {
    const te = pick(r, [
      'Transfer-Encoding: chunked', 'Transfer-Encoding : chunked', 'Transfer-Encoding: xchunked', 'Transfer-Encoding: chunked, identity',
      'Transfer-Encoding: identity', 'Transfer-Encoding:\tchunked\x0b', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: x',
      'Transfer-Encoding: gzip', 'Transfer-Encoding: "chunked"', 'Transfer-Encoding: chunked;q=1', 'Transfer-Encoding: CHUNKED',
    ]);
    const badCl = ['Content-Length: 4\r\nContent-Length: 5', 'Content-Length: +4', 'Content-Length: 4, 4', 'Content-Length: 0x4',
      'Content-Length: 4 4', 'Content-Length:', 'Content-Length: 99999999999999999999', 'Content-Length: -4'];
    const order = int(r, 0, 2);
    // With Transfer-Encoding any Content-Length is a conflict; alone, only a malformed one hides anything.
    const cl = order === 2 ? pick(r, badCl) : pick(r, ['Content-Length: 4', 'Content-Length: 0', ...badCl]);
    const headers = order === 0 ? `${cl}\r\n${te}\r\n` : order === 1 ? `${te}\r\n${cl}\r\n` : `${cl}\r\n`;
    const body = pick(r, [`0\r\n\r\n${SMUGGLED}`, `4\r\nabcd\r\n0\r\n\r\n${SMUGGLED}`, `abcd${SMUGGLED}`, `5c\r\n${SMUGGLED}\r\n0\r\n\r\n`]);
    const expect: Expectation = 'reject';
    return [`POST /s HTTP/1.1\r\n${HOST}${headers}\r\n${body}`, expect];
  },
  chunked: (r) => {
    const body = pick(r, [
      'zz\r\nabc\r\n0\r\n\r\n', '-1\r\na\r\n0\r\n\r\n', 'ffffffffffffffffffff\r\nx\r\n0\r\n\r\n', '3\r\nabcX0\r\n\r\n', '3\nabc\n0\n\n',
      '3;\x01\r\nabc\r\n0\r\n\r\n', '3 ;x\r\nabc\r\n0\r\n\r\n', '0\r\nBad Trailer\r\n\r\n', '0\r\nX: a\rb\r\n\r\n', ' 3\r\nabc\r\n0\r\n\r\n',
      '3\r\nabc\r\n0x0\r\n\r\n', `3;${'e'.repeat(20_000)}\r\nabc\r\n0\r\n\r\n`, '3\r\nabc\r\n0\r\nContent-Length: 9\r\n\r\nabc',
    ]);
    return [`POST /c HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${body}`, 'reject'];
  },
  pipelining: (r) => {
    const n = int(r, 2, 6);
    let out = '';
    for (let i = 0; i < n; i++) {
      out += i === n - 1 ? valid(`/pipe/${i}`) : `GET /pipe/${i} HTTP/1.1\r\n${HOST}\r\n`;
    }
    if (r() < 0.5) return [out, { pipelined: n }];
    // A malformed request in the middle: the ones before it are answered, none after it reaches the upstream.
    const bad = pick(r, ['GET /smuggled HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'GET /smuggled\r\n\r\n', 'XYZ /smuggled HTTP/1.1\r\n\r\n']);
    return [`GET /pipe/0 HTTP/1.1\r\n${HOST}\r\n${bad}${valid('/smuggled-after')}`, 'any'];
  },
  denyWalk: (r) => {
    const parts = ['/', '//', '/./', '/x/../', '/%2e/', '/%2E%2E/', '/.%2e/', '\\', '/y/z/../../'];
    let path = '';
    for (let i = 0; i < int(r, 1, 3); i++) path += pick(r, parts);
    const admin = pick(r, ['admin', '%61dmin', 'a%64min', '%61%64%6d%69%6e', 'adm%69n']);
    const target = (path.endsWith('/') || path.endsWith('\\') ? path : `${path}/`) + admin;
    const absolute = r() < 0.3 ? `http://fuzz.test${target.startsWith('/') ? '' : '/'}${target}` : target;
    return [valid(absolute), 'any'];
  },
};

/** Random byte mutations of a valid request (flip, insert, delete, duplicate). */
function mutate(r: Rand): [string, Expectation] {
  const base = pick(r, [valid('/m'), `POST /m HTTP/1.1\r\n${HOST}Content-Length: 5\r\n${CLOSE}\r\nhello`,
    `POST /m HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n${CLOSE}\r\n5\r\nhello\r\n0\r\n\r\n`]);
  const bytes = [...base];
  for (let i = 0; i < int(r, 1, 4); i++) {
    const at = int(r, 0, bytes.length - 1);
    const op = int(r, 0, 3);
    const ch = pick(r, ['\r', '\n', '\x00', ' ', ':', '\t', '%', '/', '.', 'A', '\xff', '0', '\x7f']);
    if (op === 0) bytes[at] = ch;
    else if (op === 1) bytes.splice(at, 0, ch);
    else if (op === 2) bytes.splice(at, 1);
    else bytes.splice(at, 0, ...bytes.slice(at, at + int(r, 1, 8)));
  }
  return [bytes.join(''), 'any'];
}

/** `count` cases from `seed`, every family in turn and mutations in between. */
export function generateCases(seed: number, count: number): FuzzCase[] {
  const r = rng(seed);
  const names = Object.keys(families);
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const family = i % 3 === 2 ? 'mutation' : names[i % names.length];
    const [text, expect] = family === 'mutation' ? mutate(r) : families[family](r);
    cases.push({ family, bytes: Buffer.from(text, 'latin1'), expect });
  }
  return cases;
}

/** A request that must get 200 from a healthy gateway, sent after each case on a fresh connection. */
export const PROBE = Buffer.from(valid('/probe'), 'latin1');
