/**
 * The load-time import check (gateway/abi/import-check.ts): every import that cannot link and
 * every hostcall outside allowedHostcalls, all in one GatewayError; and the shipped filters and
 * the SDK-shaped fixtures pass it as they are.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkImports } from '../../gateway/abi/import-check.js';
import type { FuncType, TypedImport, ValType } from '../../gateway/abi/wasm-types.js';
import { GatewayError, type ErrorCode } from '../../gateway/errors.js';
import { watToBytes } from '../helpers/wat.js';

/** `i` i32, `I` i64; one i32 result unless given. */
const t = (params: string, results = 'i'): FuncType => {
  const types = (s: string): ValType[] => [...s].map((c) => (c === 'I' ? 'i64' : 'i32'));
  return { params: types(params), results: types(results) };
};
const fn = (module: string, name: string, type: FuncType): TypedImport => ({ module, name, kind: 'function', type });
const env = (name: string, type: FuncType): TypedImport => fn('env', name, type);

/** What a Rust SDK filter on wasm32-wasip1 imports (test/fixtures/sdk-shapes/rust-wasi.wat). */
const RUST_FILTER: readonly TypedImport[] = [
  fn('wasi_snapshot_preview1', 'fd_write', t('iiii')),
  fn('wasi_snapshot_preview1', 'clock_time_get', t('iIi')),
  fn('wasi_snapshot_preview1', 'proc_exit', t('i', '')),
  env('proxy_log', t('iii')),
  env('proxy_get_header_map_value', t('iiiii')),
  env('proxy_http_call', t('iiiiiiiiii')),
  env('proxy_increment_metric', t('iI')),
];

function failure(imports: readonly TypedImport[], allowed?: readonly string[]): { code: ErrorCode; message: string } {
  try {
    checkImports('filter.wasm', imports, allowed);
  } catch (err) {
    if (err instanceof GatewayError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('checkImports accepted the imports');
}

describe('checkImports: signatures', () => {
  it('accepts imports the host links with their exact types', () => {
    expect(() => checkImports('filter.wasm', RUST_FILTER)).not.toThrow();
  });

  it('refuses a function import with another type, saying expected and got', () => {
    const { code, message } = failure([...RUST_FILTER.slice(1), env('proxy_log', t('i'))]);
    expect(code).toBe('GW_ERR_ABI_LINK');
    expect(message).toContain('module filter.wasm');
    expect(message).toContain('env.proxy_log: expected (i32, i32, i32) -> i32, got (i32) -> i32');
  });

  it('tells i32 from i64 and a result from none', () => {
    const { message } = failure([
      env('proxy_increment_metric', t('ii')),
      fn('wasi_unstable', 'proc_exit', t('i')),
    ]);
    expect(message).toContain('env.proxy_increment_metric: expected (i32, i64) -> i32, got (i32, i32) -> i32');
    expect(message).toContain('wasi_unstable.proc_exit: expected (i32) -> (), got (i32) -> i32');
  });

  it('lists every problem at once: unknown names and modules, wrong types, non-function imports', () => {
    const { code, message } = failure([
      ...RUST_FILTER,
      env('proxy_teleport', t('')),
      fn('wasi_snapshot_preview2', 'fd_write', t('iiii')),
      env('proxy_log', t('iiii')),
      { module: 'env', name: 'memory', kind: 'memory' },
      { module: 'env', name: '__stack_pointer', kind: 'global' },
      { module: 'env', name: '__indirect_function_table', kind: 'table' },
    ]);
    expect(code).toBe('GW_ERR_ABI_LINK');
    const lines = message.split('\n').map((l) => l.trim());
    expect(lines).toEqual([
      'module filter.wasm:',
      'imports the host cannot link:',
      'env.proxy_teleport: the host provides no such function',
      'wasi_snapshot_preview2.fd_write: the host provides no import module "wasi_snapshot_preview2"',
      'env.proxy_log: expected (i32, i32, i32) -> i32, got (i32, i32, i32, i32) -> i32',
      'env.memory: a memory import; the host provides functions only',
      'env.__stack_pointer: a global import; the host provides functions only',
      'env.__indirect_function_table: a table import; the host provides functions only',
    ]);
  });

  it('does not take a name from Object.prototype for a hostcall', () => {
    expect(failure([env('toString', t('')), fn('constructor', 'x', t(''))]).message).toContain('env.toString: the host provides no such function');
  });

  it('accepts proxy_continue_request with and without its i32 result (0.1.0 SDKs and spec text)', () => {
    expect(() => checkImports('old.wasm', [env('proxy_continue_request', t('')), env('proxy_continue_response', t('', ''))])).not.toThrow();
    expect(failure([env('proxy_continue_request', t('i'))]).message)
      .toContain('env.proxy_continue_request: expected () -> i32 or () -> (), got (i32) -> i32');
  });

  it('refuses any import from the instrumentation module edge-gateway:sandbox, which the host adds itself', () => {
    const { code, message } = failure([...RUST_FILTER, fn('edge-gateway:sandbox', 'budget_check', t('', ''))]);
    expect(code).toBe('GW_ERR_ABI_LINK');
    expect(message).toContain('edge-gateway:sandbox.budget_check: the import module "edge-gateway:sandbox" is reserved for the host\'s instrumentation');
  });

  it('checks only the name of a function import whose type was not read', () => {
    const untyped = (name: string): TypedImport => ({ module: 'env', name, kind: 'function' });
    expect(() => checkImports('f.wasm', [untyped('proxy_log')])).not.toThrow();
    expect(failure([untyped('proxy_nope')]).message).toContain('env.proxy_nope: the host provides no such function');
  });
});

describe('checkImports: allowedHostcalls', () => {
  it('allows every hostcall when the list is absent', () => {
    expect(() => checkImports('filter.wasm', RUST_FILTER, undefined)).not.toThrow();
  });

  it('refuses the hostcalls the list leaves out, by bare name, each once whatever its import module', () => {
    const { code, message } = failure([
      ...RUST_FILTER,
      fn('wasi_unstable', 'fd_write', t('iiii')),
    ], ['proxy_log', 'proxy_get_header_map_value', 'clock_time_get', 'proc_exit', 'proxy_increment_metric']);
    expect(code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(message).toBe('module filter.wasm:\n  imports hostcalls that allowedHostcalls does not list: fd_write, proxy_http_call');
  });

  it('accepts a module that imports only listed hostcalls, under either WASI module name', () => {
    const names = ['fd_write', 'clock_time_get', 'proc_exit', 'proxy_log', 'proxy_get_header_map_value', 'proxy_http_call', 'proxy_increment_metric'];
    expect(() => checkImports('filter.wasm', [...RUST_FILTER, fn('wasi_unstable', 'fd_write', t('iiii'))], names)).not.toThrow();
  });

  it('refuses every hostcall with an empty list, but never the toolchain extras', () => {
    const extras = [env('abort', t('iiii', '')), env('emscripten_notify_memory_growth', t('i', '')), env('pthread_equal', t('ii'))];
    expect(() => checkImports('as.wasm', extras, [])).not.toThrow();
    expect(failure([...extras, env('proxy_log', t('iii'))], []).message).toContain('does not list: proxy_log');
  });

  it('names the entries of allowedHostcalls the host does not know, even when the module is fine', () => {
    const { code, message } = failure([env('proxy_log', t('iii'))], ['proxy_log', 'proxy_htp_call', 'env.proxy_log']);
    expect(code).toBe('GW_ERR_ABI_CAPABILITY');
    expect(message).toContain('allowedHostcalls names hostcalls the host does not know: proxy_htp_call, env.proxy_log');
  });

  it('reports link and capability problems in one message under GW_ERR_ABI_LINK', () => {
    const { code, message } = failure([env('proxy_log', t('i')), env('proxy_http_call', t('iiiiiiiiii'))], ['proxy_log', 'proxy_nope']);
    expect(code).toBe('GW_ERR_ABI_LINK');
    expect(message).toContain('env.proxy_log: expected (i32, i32, i32) -> i32, got (i32) -> i32');
    expect(message).toContain('does not list: proxy_http_call');
    expect(message).toContain('does not know: proxy_nope');
  });
});

/**
 * Test-local reader of the type and import sections, only so real binaries can be checked here.
 * TODO(integration): replace with `readImports` from gateway/modules/wasm once it is merged.
 */
function importsOf(bytes: Uint8Array): TypedImport[] {
  const VAL: Record<number, ValType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' };
  const KIND = ['function', 'table', 'memory', 'global', 'tag'] as const;
  let p = 8;
  const u32 = (): number => {
    let r = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[p++];
      r |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return r >>> 0;
    }
  };
  const name = (): string => {
    const len = u32();
    const start = p;
    p += len;
    return Buffer.from(bytes.subarray(start, p)).toString('utf8');
  };
  const vec = (): ValType[] => Array.from({ length: u32() }, () => VAL[bytes[p++]]);
  const types: FuncType[] = [];
  const out: TypedImport[] = [];
  while (p < bytes.length) {
    const id = bytes[p++];
    const end = u32() + p;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        p++; // 0x60, the func type form
        types.push({ params: vec(), results: vec() });
      }
    }
    if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        const module = name();
        const field = name();
        const kind = KIND[bytes[p++]];
        // Only function imports are expected in these modules; anything else ends the walk.
        if (kind !== 'function') { out.push({ module, name: field, kind }); break; }
        out.push({ module, name: field, kind, type: types[u32()] });
      }
    }
    p = end;
  }
  return out;
}

const root = join(import.meta.dirname, '..', '..');
const wasmIn = (dir: string): string[] => readdirSync(join(root, dir)).filter((f) => f.endsWith('.wasm')).map((f) => join(dir, f));
const watIn = (dir: string): string[] => readdirSync(join(root, dir)).filter((f) => f.endsWith('.wat')).map((f) => join(dir, f));

describe('real modules', () => {
  it.each([...wasmIn('filters/dist'), ...wasmIn('test/compat/proxy-runtime/build')])('%s passes the signature check', (file) => {
    const imports = importsOf(readFileSync(join(root, file)));
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.every((i) => i.type !== undefined)).toBe(true);
    expect(() => checkImports(file, imports)).not.toThrow();
  });

  it.each(watIn('test/fixtures/sdk-shapes'))('%s passes the signature check', (file) => {
    const imports = importsOf(watToBytes(readFileSync(join(root, file), 'utf8'), file));
    expect(imports.length).toBeGreaterThan(0);
    expect(() => checkImports(file, imports)).not.toThrow();
  });

  it('reads a wrong import type from a real binary and refuses it', () => {
    const bytes = watToBytes('(module (import "env" "proxy_log" (func (param i32) (result i32))))');
    expect(failure(importsOf(bytes)).message).toContain('env.proxy_log: expected (i32, i32, i32) -> i32, got (i32) -> i32');
  });
});
