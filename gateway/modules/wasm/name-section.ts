/**
 * The `name` custom section after function indices shifted: function names (1), local names (2)
 * and label names (3) are keyed by function index and are remapped; the budget import gets a name
 * so backtraces read well; subsections without function indices are kept; unknown ones dropped.
 * V8 takes wasm frame names from here, so trap backtraces keep naming the guest's functions.
 */
import { ByteReader, ByteWriter } from './leb.js';
import type { FuncRemap } from './code-rewrite.js';

const KEEP_AS_IS = new Set([0, 4, 5, 6, 7, 8, 9, 10, 11]);

/** The rewritten payload (after the section name), or null when it is malformed (engines ignore such a section too). */
export function rewriteNames(bytes: Uint8Array, start: number, end: number, remap: FuncRemap, added: { index: number; name: string }): Uint8Array | null {
  try {
    const r = new ByteReader(bytes, start, end);
    const out = new ByteWriter(end - start + 64);
    while (!r.atEnd) {
      const id = r.u8();
      const size = r.u32();
      const sub = new ByteReader(bytes, r.pos, r.pos + size);
      r.skip(size);
      if (KEEP_AS_IS.has(id)) out.u8(id).sized(sub.take(size));
      else if (id === 1) out.u8(id).sized(functionNames(sub, remap, added));
      else if (id === 2 || id === 3) out.u8(id).sized(indirectNames(sub, remap));
    }
    return out.finish();
  } catch {
    return null;
  }
}

function functionNames(r: ByteReader, remap: FuncRemap, added: { index: number; name: string }): Uint8Array {
  const count = r.u32();
  const out = new ByteWriter(r.end - r.pos + 64);
  out.u32(count + 1);
  let placed = false;
  for (let i = 0; i < count; i++) {
    const index = remap(r.u32());
    const name = r.take(r.u32());
    // Name maps are sorted by index: the import goes where its index falls.
    if (!placed && index >= added.index) {
      out.u32(added.index).name(added.name);
      placed = true;
    }
    out.u32(index).sized(name);
  }
  if (!placed) out.u32(added.index).name(added.name);
  if (!r.atEnd) r.fail('function names: trailing bytes');
  return out.finish();
}

function indirectNames(r: ByteReader, remap: FuncRemap): Uint8Array {
  const count = r.u32();
  const out = new ByteWriter(r.end - r.pos + 16);
  out.u32(count);
  for (let i = 0; i < count; i++) {
    out.u32(remap(r.u32()));
    const inner = r.u32();
    out.u32(inner);
    for (let j = 0; j < inner; j++) out.u32(r.u32()).sized(r.take(r.u32()));
  }
  if (!r.atEnd) r.fail('indirect names: trailing bytes');
  return out.finish();
}
