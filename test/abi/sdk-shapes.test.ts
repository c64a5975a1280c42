/**
 * Modules shaped exactly like the official SDKs build them (test/fixtures/sdk-shapes/*.wat: each
 * toolchain's import set, exports, entry point and allocator, reference §1.1, §2.2–§2.5) link,
 * start through the right entry point once, allocate through the prescribed allocator and run a
 * header filter end to end. The fixtures keep guest-side counters in a probe block at 1024.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AbiVersion, HeadersAction } from '../../gateway/abi/enums.js';
import type { WasmVm } from '../../gateway/abi/vm.js';
import { TestStream, startVm, text, type TestVm } from '../helpers/host.js';
import { compileWat, guestWat } from '../helpers/wat.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/sdk-shapes/${name}.wat`, import.meta.url), 'utf8');

/** The fixtures' probe block (see each file's header). */
const PROBE = { entryRuns: 1024, proxyOnMemoryAllocate: 1028, malloc: 1032 } as const;

interface Shape {
  readonly file: string;
  readonly abi: AbiVersion;
  readonly entry: '_initialize' | '_start' | 'the start section';
  readonly allocator: 'proxy_on_memory_allocate' | 'malloc';
  /** What the guest logs while starting, then in on_vm_start. */
  readonly startLog: readonly string[];
  readonly vmStartLog: string;
}

const SHAPES: readonly Shape[] = [
  { file: 'rust-unknown', abi: AbiVersion.V0_2_1, entry: '_initialize', allocator: 'malloc',
    startLog: ['rust: main! block ran'], vmStartLog: 'rust: on_vm_start' },
  { file: 'rust-wasi', abi: AbiVersion.V0_2_1, entry: '_initialize', allocator: 'proxy_on_memory_allocate',
    startLog: ['rust: main! block ran'], vmStartLog: 'rust: on_vm_start' },
  { file: 'go', abi: AbiVersion.V0_2_0, entry: '_initialize', allocator: 'proxy_on_memory_allocate',
    startLog: ['go: init() set the VM context'], vmStartLog: 'go: OnVMStart' },
  { file: 'tinygo', abi: AbiVersion.V0_2_0, entry: '_start', allocator: 'proxy_on_memory_allocate',
    startLog: ['tinygo: main() set the VM context'], vmStartLog: 'tinygo: OnVMStart' },
  { file: 'cpp-emscripten', abi: AbiVersion.V0_2_1, entry: '_initialize', allocator: 'malloc',
    startLog: ['cpp: RegisterContextFactory ran'], vmStartLog: 'cpp: RootContext::onStart' },
  { file: 'assemblyscript-abort', abi: AbiVersion.V0_2_1, entry: 'the start section', allocator: 'malloc',
    startLog: [], vmStartLog: 'as: onVmStart' },
];

const shapeNamed = (file: string): Shape => SHAPES.find((s) => s.file === file)!;

const PLUGIN = { name: 'sdk-shape', rootId: 'add_header', configuration: text('{}') };

/** `sandboxed`: through the instrumenter (budget checks, capped memory import), as the module store loads modules. */
function startShape(shape: Shape, sandboxed = false): TestVm {
  return startVm(fixture(shape.file), { name: `${shape.file}.wasm`, sandboxed });
}

/** One request through a stream of `root` (a new root if none); returns its host and headers result. */
function request(vm: WasmVm, path: string, root = vm.createRoot(PLUGIN)): { host: TestStream; result: number } {
  const host = new TestStream([[':path', path], [':method', 'GET'], [':authority', 'example.com']]);
  const stream = vm.createStream(root, host);
  const result = stream.onRequestHeaders(3, true);
  stream.finish();
  return { host, result };
}

for (const [shape, sandboxed] of SHAPES.flatMap((s) => [[s, false], [s, true]] as const)) {
  const start = (s: Shape): TestVm => startShape(s, sandboxed);
  describe(`the ${shape.file} shape${sandboxed ? ', instrumented' : ''}`, () => {
    it(`links against the host and declares ABI ${shape.abi}`, () => {
      const { vm } = start(shape);
      expect(vm.abiVersion).toBe(shape.abi);
      expect(vm.failed).toBe(false);
    });

    it(`runs ${shape.entry} exactly once, before the root context is created`, () => {
      const { vm, logger } = start(shape);
      expect(vm.mem.u32(PROBE.entryRuns)).toBe(1);
      expect(logger.messages()).toEqual(shape.startLog);
      vm.createRoot(PLUGIN);
      expect(vm.mem.u32(PROBE.entryRuns)).toBe(1);
      expect(logger.messages()).toEqual([...shape.startLog, shape.vmStartLog]);
    });

    it(`returns values through ${shape.allocator} and never the other allocator`, () => {
      const { vm } = start(shape);
      const prescribed = shape.allocator === 'malloc' ? PROBE.malloc : PROBE.proxyOnMemoryAllocate;
      const other = shape.allocator === 'malloc' ? PROBE.proxyOnMemoryAllocate : PROBE.malloc;
      const root = vm.createRoot(PLUGIN); // AS: one allocation here, for plugin_root_id
      const before = vm.mem.u32(prescribed);
      request(vm, '/one-value-returned', root);
      expect(vm.mem.u32(prescribed) - before).toBe(1);
      expect(vm.mem.u32(other)).toBe(0);
    });

    it('copies :path into x-path through a root and a stream', () => {
      const { vm } = start(shape);
      const { host, result } = request(vm, '/hello?x=1');
      expect(result).toBe(HeadersAction.CONTINUE);
      expect(host.maps[0]!.get('x-path')).toBe('/hello?x=1');
      expect(host.actions).toEqual([]);
      expect(vm.failed).toBe(false);
    });
  });
}

const start = (shape: Shape): TestVm => startShape(shape);

describe('toolchain specifics', () => {
  it('lets the Rust wasip1 _initialize run its ctors and seed the HashMap through random_get', () => {
    const { vm } = start(shapeNamed('rust-wasi'));
    expect(vm.mem.u32(1040)).toBe(1);
    expect([...vm.mem.copy(1048, 16)].some((b) => b !== 0)).toBe(true);
  });

  it('never runs the Go main.main: a c-shared Go module exports neither main nor _start', () => {
    const { vm } = start(shapeNamed('go'));
    const names = WebAssembly.Module.exports(compileWat(fixture('go'))).map((e) => e.name);
    expect(names).not.toContain('main');
    expect(names).not.toContain('_start');
    expect(vm.mem.u32(1040)).toBe(1);
    expect(vm.mem.u32(1036)).toBe(0);
  });

  it('links the Go and TinyGo shapes, which do not import proxy_get_log_level under 0.2.0', () => {
    for (const file of ['go', 'tinygo']) {
      const imports = WebAssembly.Module.imports(compileWat(fixture(file))).map((i) => i.name);
      expect(imports).not.toContain('proxy_get_log_level');
      expect(startVm(fixture(file)).vm.abiVersion).toBe(AbiVersion.V0_2_0);
    }
  });

  it("answers TinyGo's preopen scan with BADF so _start finishes without preopens", () => {
    const { vm } = start(shapeNamed('tinygo'));
    expect(vm.mem.u32(1036)).toBe(0);
  });

  it('lets emscripten malloc grow memory and notify the host while the host allocates', () => {
    const { vm } = start(shapeNamed('cpp-emscripten'));
    const longPath = `/${'a'.repeat(100_000)}`;
    const pagesBefore = vm.mem.size / 65536;
    const { host, result } = request(vm, longPath);
    expect(result).toBe(HeadersAction.CONTINUE);
    expect(vm.mem.u32(1044)).toBe(1);
    expect(vm.mem.size / 65536).toBeGreaterThan(pagesBefore);
    // The copy would take the map past its 60 KiB limit (MAX_HEADER_MAP_BYTES): refused, map unchanged.
    expect(host.maps[0]!.get('x-path')).toBeUndefined();
    expect(host.maps[0]!.get(':path')).toBe(longPath);
    expect(vm.mem.u32(1036)).toBe(1); // ~WasmData freed the one value the host returned
  });

  it("serves plugin_root_id to the AssemblyScript root's on_context_create", () => {
    const { vm } = start(shapeNamed('assemblyscript-abort'));
    vm.createRoot(PLUGIN);
    const ptr = vm.mem.u32(1040);
    const len = vm.mem.u32(1044);
    expect(vm.mem.latin1(ptr, len)).toBe('add_header');
    expect(vm.mem.u32(ptr - 4)).toBe(len); // a real AS ArrayBuffer of exactly len bytes
  });

  it('finds the AssemblyScript SDK callback under its misspelt name proxy_on_grpc_trailing_metadata', () => {
    const { vm } = start(shapeNamed('assemblyscript-abort'));
    expect(vm.callbacks.onGrpcReceiveTrailingMetadata).toBe(vm.instance.exports.proxy_on_grpc_trailing_metadata);
  });
});

describe('entry points (reference §2.1 step 5)', () => {
  /** A guest recording, in order, which entry points ran: [1024] count, [1028...] ids. */
  const recorder = `
  (func $record (param $id i32)
    (i32.store (i32.add (i32.const 1028) (i32.shl (i32.load (i32.const 1024)) (i32.const 2))) (local.get $id))
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1))))`;
  const calls = (vm: WasmVm): number[] =>
    Array.from({ length: vm.mem.u32(1024) }, (_, i) => vm.mem.u32(1028 + 4 * i));

  it('calls _initialize and then main(0, 0) when a reactor also exports main(i32, i32) -> i32', () => {
    const { vm } = startVm(guestWat({ body: `${recorder}
      (func (export "_initialize") (call $record (i32.const 1)))
      (func (export "main") (param $argc i32) (param $argv i32) (result i32)
        (call $record (i32.add (i32.const 2) (i32.add (local.get $argc) (local.get $argv))))
        (i32.const 0))` }));
    expect(calls(vm)).toEqual([1, 2]);
  });

  it('calls __main_void after _initialize when there is no main(i32, i32)', () => {
    const { vm } = startVm(guestWat({ body: `${recorder}
      (func (export "_initialize") (call $record (i32.const 1)))
      (func (export "__main_void") (result i32) (call $record (i32.const 3)) (i32.const 0))` }));
    expect(calls(vm)).toEqual([1, 3]);
  });

  it('calls _initialize and skips a hand-written _start, as for a Rust SDK 0.1.x module on wasip1', () => {
    const { vm } = startVm(guestWat({ body: `${recorder}
      (func (export "_start") (call $record (i32.const 4)))
      (func (export "_initialize") (call $record (i32.const 1)))` }));
    expect(calls(vm)).toEqual([1]);
  });

  it('runs the start section before _initialize', () => {
    const { vm } = startVm(guestWat({ body: `${recorder}
      (func $ctor (call $record (i32.const 5)))
      (start $ctor)
      (func (export "_initialize") (call $record (i32.const 1)))` }));
    expect(calls(vm)).toEqual([5, 1]);
  });
});
