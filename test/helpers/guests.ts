/**
 * Tiny WAT filters for the end-to-end data-plane tests, one per behaviour, built from shared parts:
 *
 *   const g = new Guest();
 *   const wat = g.build({ on: { proxy_on_request_headers: `(call $add_header (i32.const 0) ${g.lit('x-a')} ${g.lit('1')}) (i32.const 0)` } });
 *
 * Every exported callback first logs `ctx=<id> cb=<name>` (name without `proxy_on_`) through
 * proxy_log, so a test reads the exact callback order from the gateway's captured log lines
 * (`callbackLines`; a root's on_context_create logs `cb=root_context_create`, which it leaves out so
 * that only stream callbacks remain). The snippet given for a callback runs after that line and, for callbacks
 * with a result, must leave it on the stack (missing snippet: Continue / true).
 *
 * Snippets see the callback's parameters by name ($ctx and, per callback, $n $eos / $size $eos /
 * $token $nh $size $nt / $token $status / $parent), scratch locals $t $p $l, the hostcalls by
 * their ABI names (`call $proxy_get_property`), and the helpers below ($log, $log_num, $log_num2,
 * $log_header, $log_prop, $prop_header, $add_header, $path_is). `g.lit(...)` places bytes in a data
 * segment and yields `(i32.const ptr) (i32.const len)`; `g.pairs(...)` does the same for a
 * serialised header map.
 *
 * Memory: 0x10/0x14 return slots, 0x18 token slot, 0x40 hex digits, 0x100.. literals,
 * 0x8000 log line, 0xA000 hex/value scratch, heap from 64 KiB (wraps at 128 KiB).
 */
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { encodePairs } from '../../gateway/abi/pairs.js';
import { guestWat } from './wat.js';

export const RET_PTR = 0x10;
export const RET_SIZE = 0x14;
export const TOKEN = 0x18;

/** Callbacks a guest may export here, with their WAT signatures and default results. */
const SIGNATURES = {
  proxy_on_context_create: { params: '(param $ctx i32) (param $parent i32)', result: null },
  proxy_on_vm_start: { params: '(param $ctx i32) (param $size i32)', result: '(i32.const 1)' },
  proxy_on_configure: { params: '(param $ctx i32) (param $size i32)', result: '(i32.const 1)' },
  proxy_on_tick: { params: '(param $ctx i32)', result: null },
  proxy_on_request_headers: { params: '(param $ctx i32) (param $n i32) (param $eos i32)', result: '(i32.const 0)' },
  proxy_on_request_body: { params: '(param $ctx i32) (param $size i32) (param $eos i32)', result: '(i32.const 0)' },
  proxy_on_request_trailers: { params: '(param $ctx i32) (param $n i32)', result: '(i32.const 0)' },
  proxy_on_response_headers: { params: '(param $ctx i32) (param $n i32) (param $eos i32)', result: '(i32.const 0)' },
  proxy_on_response_body: { params: '(param $ctx i32) (param $size i32) (param $eos i32)', result: '(i32.const 0)' },
  proxy_on_response_trailers: { params: '(param $ctx i32) (param $n i32)', result: '(i32.const 0)' },
  proxy_on_http_call_response: { params: '(param $ctx i32) (param $token i32) (param $nh i32) (param $size i32) (param $nt i32)', result: null },
  proxy_on_grpc_receive: { params: '(param $ctx i32) (param $token i32) (param $size i32)', result: null },
  proxy_on_grpc_close: { params: '(param $ctx i32) (param $token i32) (param $status i32)', result: null },
  proxy_on_log: { params: '(param $ctx i32)', result: null },
  proxy_on_done: { params: '(param $ctx i32)', result: '(i32.const 1)' },
  proxy_on_delete: { params: '(param $ctx i32)', result: null },
} as const;

export type Callback = keyof typeof SIGNATURES;

/** The callbacks of an HTTP stream and its end: what a logging filter exports. */
export const STREAM_CALLBACKS: readonly Callback[] = [
  'proxy_on_context_create', 'proxy_on_request_headers', 'proxy_on_request_body', 'proxy_on_request_trailers',
  'proxy_on_response_headers', 'proxy_on_response_body', 'proxy_on_response_trailers',
  'proxy_on_log', 'proxy_on_done', 'proxy_on_delete',
];

const IMPORTS: ReadonlyArray<[string, number]> = [
  ['proxy_log', 3],
  ['proxy_get_header_map_value', 5],
  ['proxy_add_header_map_value', 5],
  ['proxy_replace_header_map_value', 5],
  ['proxy_remove_header_map_value', 3],
  ['proxy_set_header_map_pairs', 3],
  ['proxy_get_buffer_bytes', 5],
  ['proxy_set_buffer_bytes', 5],
  ['proxy_continue_stream', 1],
  ['proxy_close_stream', 1],
  ['proxy_send_local_response', 8],
  ['proxy_http_call', 10],
  ['proxy_grpc_call', 12],
  ['proxy_set_effective_context', 1],
  ['proxy_get_status', 3],
  ['proxy_get_property', 4],
  ['proxy_set_property', 4],
];

const HELPERS = `
  (data (i32.const 0x40) "0123456789abcdef")
  ;; Decimal digits of $v at $dst; returns their count.
  (func $itoa (param $v i32) (param $dst i32) (result i32)
    (local $len i32) (local $t i32) (local $i i32)
    (local.set $t (local.get $v))
    (local.set $len (i32.const 1))
    (block $done (loop $count
      (br_if $done (i32.lt_u (local.get $t) (i32.const 10)))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (local.set $len (i32.add (local.get $len) (i32.const 1)))
      (br $count)))
    (local.set $i (local.get $len))
    (local.set $t (local.get $v))
    (loop $write
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (local.get $dst) (local.get $i)) (i32.add (i32.const 48) (i32.rem_u (local.get $t) (i32.const 10))))
      (local.set $t (i32.div_u (local.get $t) (i32.const 10)))
      (br_if $write (i32.gt_u (local.get $i) (i32.const 0))))
    (local.get $len))
  ;; Lower-case hex of [$src, $src+$len) at $dst (2 × $len bytes).
  (func $hex (param $src i32) (param $len i32) (param $dst i32)
    (local $i i32) (local $b i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
      (i32.store8 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 1)))
        (i32.load8_u (i32.add (i32.const 0x40) (i32.shr_u (local.get $b) (i32.const 4)))))
      (i32.store8 (i32.add (local.get $dst) (i32.add (i32.shl (local.get $i) (i32.const 1)) (i32.const 1)))
        (i32.load8_u (i32.add (i32.const 0x40) (i32.and (local.get $b) (i32.const 15)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next))))
  (func $log (param $p i32) (param $l i32)
    (drop (call $proxy_log (i32.const 2) (local.get $p) (local.get $l))))
  ;; "<prefix><decimal>"
  (func $log_num (param $p i32) (param $l i32) (param $v i32)
    (memory.copy (i32.const 0x8000) (local.get $p) (local.get $l))
    (call $log (i32.const 0x8000) (i32.add (local.get $l) (call $itoa (local.get $v) (i32.add (i32.const 0x8000) (local.get $l))))))
  ;; "<prefix><decimal><prefix2><decimal2>"
  (func $log_num2 (param $p i32) (param $l i32) (param $v i32) (param $p2 i32) (param $l2 i32) (param $v2 i32)
    (local $n i32)
    (memory.copy (i32.const 0x8000) (local.get $p) (local.get $l))
    (local.set $n (i32.add (local.get $l) (call $itoa (local.get $v) (i32.add (i32.const 0x8000) (local.get $l)))))
    (memory.copy (i32.add (i32.const 0x8000) (local.get $n)) (local.get $p2) (local.get $l2))
    (local.set $n (i32.add (local.get $n) (local.get $l2)))
    (call $log (i32.const 0x8000) (i32.add (local.get $n) (call $itoa (local.get $v2) (i32.add (i32.const 0x8000) (local.get $n))))))
  ;; "ctx=<id> cb=<name>"
  (func $log_cb (param $ctx i32) (param $p i32) (param $l i32)
    (local $n i32)
    (i32.store (i32.const 0x8000) (i32.const 0x3d787463))
    (local.set $n (i32.add (i32.const 4) (call $itoa (local.get $ctx) (i32.const 0x8004))))
    (i32.store (i32.add (i32.const 0x8000) (local.get $n)) (i32.const 0x3d626320))
    (local.set $n (i32.add (local.get $n) (i32.const 4)))
    (memory.copy (i32.add (i32.const 0x8000) (local.get $n)) (local.get $p) (local.get $l))
    (call $log (i32.const 0x8000) (i32.add (local.get $n) (local.get $l))))
  ;; "<key>=<value>" for a header of map $map, or "<key>!<status>" when the lookup fails.
  (func $log_header (param $map i32) (param $k i32) (param $kl i32)
    (local $st i32) (local $n i32)
    (local.set $st (call $proxy_get_header_map_value (local.get $map) (local.get $k) (local.get $kl) (i32.const 0x10) (i32.const 0x14)))
    (memory.copy (i32.const 0x8000) (local.get $k) (local.get $kl))
    (if (i32.eqz (local.get $st))
      (then
        (i32.store8 (i32.add (i32.const 0x8000) (local.get $kl)) (i32.const 61))
        (memory.copy (i32.add (i32.const 0x8001) (local.get $kl)) (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)))
        (call $log (i32.const 0x8000) (i32.add (i32.add (local.get $kl) (i32.const 1)) (i32.load (i32.const 0x14)))))
      (else
        (i32.store8 (i32.add (i32.const 0x8000) (local.get $kl)) (i32.const 33))
        (local.set $n (call $itoa (local.get $st) (i32.add (i32.const 0x8001) (local.get $kl))))
        (call $log (i32.const 0x8000) (i32.add (i32.add (local.get $kl) (i32.const 1)) (local.get $n))))))
  ;; Property $path as hex at 0xA000: its length in hex digits, or -1 - status when not found.
  (func $prop_hex (param $path i32) (param $pl i32) (result i32)
    (local $st i32)
    (local.set $st (call $proxy_get_property (local.get $path) (local.get $pl) (i32.const 0x10) (i32.const 0x14)))
    (if (result i32) (i32.eqz (local.get $st))
      (then
        (call $hex (i32.load (i32.const 0x10)) (i32.load (i32.const 0x14)) (i32.const 0xA000))
        (i32.shl (i32.load (i32.const 0x14)) (i32.const 1)))
      (else (i32.sub (i32.const -1) (local.get $st)))))
  ;; Adds header $k to map $map with the property's bytes in hex, or "!<status>" when not found.
  (func $prop_header (param $path i32) (param $pl i32) (param $map i32) (param $k i32) (param $kl i32)
    (local $n i32)
    (local.set $n (call $prop_hex (local.get $path) (local.get $pl)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then
        (i32.store8 (i32.const 0xA000) (i32.const 33))
        (local.set $n (i32.add (i32.const 1) (call $itoa (i32.sub (i32.const -1) (local.get $n)) (i32.const 0xA001))))))
    (drop (call $proxy_add_header_map_value (local.get $map) (local.get $k) (local.get $kl) (i32.const 0xA000) (local.get $n))))
  ;; Logs "<tag>=<hex of the property>" or "<tag>!<status>".
  (func $log_prop (param $path i32) (param $pl i32) (param $tag i32) (param $tl i32)
    (local $n i32)
    (local.set $n (call $prop_hex (local.get $path) (local.get $pl)))
    (memory.copy (i32.const 0x8000) (local.get $tag) (local.get $tl))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then
        (i32.store8 (i32.add (i32.const 0x8000) (local.get $tl)) (i32.const 33))
        (local.set $n (call $itoa (i32.sub (i32.const -1) (local.get $n)) (i32.add (i32.const 0x8001) (local.get $tl)))))
      (else
        (i32.store8 (i32.add (i32.const 0x8000) (local.get $tl)) (i32.const 61))
        (memory.copy (i32.add (i32.const 0x8001) (local.get $tl)) (i32.const 0xA000) (local.get $n))))
    (call $log (i32.const 0x8000) (i32.add (i32.add (local.get $tl) (i32.const 1)) (local.get $n))))
  (func $add_header (param $map i32) (param $k i32) (param $kl i32) (param $v i32) (param $vl i32)
    (drop (call $proxy_add_header_map_value (local.get $map) (local.get $k) (local.get $kl) (local.get $v) (local.get $vl))))
  ;; Whether request header :path starts with the given bytes.
  (func $path_is (param $p i32) (param $l i32) (result i32)
    (local $i i32) (local $v i32)
    (if (call $proxy_get_header_map_value (i32.const 0) (i32.const 0x30) (i32.const 5) (i32.const 0x10) (i32.const 0x14))
      (then (return (i32.const 0))))
    (if (i32.lt_u (i32.load (i32.const 0x14)) (local.get $l)) (then (return (i32.const 0))))
    (local.set $v (i32.load (i32.const 0x10)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $l)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $v) (local.get $i))) (i32.load8_u (i32.add (local.get $p) (local.get $i))))
        (then (return (i32.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 1))
  (data (i32.const 0x30) ":path")`;

function escape(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `\\${b.toString(16).padStart(2, '0')}`;
  return out;
}

export interface GuestSpec {
  /** Callbacks to export: a snippet run after the log line, or `true` for the default behaviour. */
  readonly on: Partial<Record<Callback, string | true>>;
  /** Log `ctx=<id> cb=<name>` at the start of each exported callback (default true). */
  readonly log?: boolean;
  /** More module fields: globals, functions. */
  readonly extra?: string;
}

export class Guest {
  private readonly data: string[] = [];
  private next = 0x100;

  /** Places `value` in a data segment; WAT for `(i32.const ptr) (i32.const len)`. */
  lit(value: string | Uint8Array): string {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
    const ptr = this.next;
    if (bytes.length > 0) this.data.push(`(data (i32.const ${ptr}) "${escape(bytes)}")`);
    this.next += (bytes.length + 8) & ~7;
    if (this.next >= 0x8000) throw new Error('guest literals overflow 0x8000');
    return `(i32.const ${ptr}) (i32.const ${bytes.length})`;
  }

  /** A serialised header map (reference §5.10) as a literal. */
  pairs(entries: ReadonlyArray<readonly [string, string]>): string {
    return this.lit(encodePairs(entries.flat()));
  }

  build(spec: GuestSpec): string {
    const log = spec.log ?? true;
    const fns: string[] = [];
    for (const [name, snippet] of Object.entries(spec.on) as Array<[Callback, string | true]>) {
      const sig = SIGNATURES[name];
      const result = sig.result === null ? '' : '(result i32)';
      // A root's creation logs as root_context_create, which callbackLines leaves out.
      const line = !log ? '' : name === 'proxy_on_context_create'
        ? `(if (local.get $parent) (then (call $log_cb (local.get $ctx) ${this.lit('context_create')})) (else (call $log_cb (local.get $ctx) ${this.lit('root_context_create')})))`
        : `(call $log_cb (local.get $ctx) ${this.lit(name.slice('proxy_on_'.length))})`;
      const body = snippet === true ? (sig.result ?? '') : snippet;
      fns.push(`(func (export "${name}") ${sig.params} ${result} (local $t i32) (local $p i32) (local $l i32)
    ${line}
    ${body})`);
    }
    const imports = IMPORTS.map(([n, arity]) => `(import "env" "${n}" (func $${n} (param${' i32'.repeat(arity)}) (result i32)))`).join('\n  ');
    return guestWat({ imports, body: [HELPERS, ...this.data, spec.extra ?? '', ...fns].join('\n  ') });
  }
}

/** A filter that only logs every stream callback it receives and lets everything continue. */
export function loggingFilter(): string {
  const g = new Guest();
  return g.build({ on: Object.fromEntries(STREAM_CALLBACKS.map((c) => [c, true])) });
}

/** One captured gateway log line. */
export type LogLine = Record<string, unknown>;

/** `<plugin>: <message>` of every guest log line, in order. */
export function guestLines(logs: readonly LogLine[]): string[] {
  return logs.filter((l) => l.source === 'wasm' && typeof l.plugin === 'string').map((l) => `${l.plugin as string}: ${l.msg as string}`);
}

/** The `ctx=… cb=…` lines of stream contexts (callback order), as `<plugin>: ctx=<id> cb=<name>`. */
export function callbackLines(logs: readonly LogLine[]): string[] {
  return guestLines(logs).filter((l) => / ctx=\d+ cb=/.test(l) && !l.endsWith(' cb=root_context_create'));
}

/** Polls `check` every 5 ms until it returns true or `ms` pass; throws with `what` on timeout. */
export async function waitFor(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

/**
 * One request with node:http (a fresh connection unless `agent` is given), for precise control
 * over the body: `body` chunks are written one by one, each after `beforeChunk(i)` resolves.
 */
export function send(url: string, opts: { method?: string; headers?: Record<string, string | number>; body?: Array<string | Buffer>;
  beforeChunk?: (i: number) => Promise<void>; agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    const write = async (): Promise<void> => {
      const body = opts.body ?? [];
      for (let i = 0; i < body.length; i++) {
        await opts.beforeChunk?.(i);
        req.write(body[i]);
      }
      req.end();
    };
    write().catch(reject);
  });
}
