/**
 * Exports every mutable global a core module defines, under `<prefix><index>`, so the host can
 * read and restore them: with the module's memories, they are the whole state of an instance
 * (functions/instance-snapshot.ts resets a function instance to its state after start-up instead
 * of making a new one).
 */
import { ByteWriter } from './leb.js';
import { readImportEntries } from './imports.js';
import { rewriteConstExpr } from './code-rewrite.js';
import { spliceSection } from './section-splice.js';
import { SectionId, expectEnd, findSection, readSections, readValType, sectionReader } from './sections.js';

export const GLOBAL_EXPORT_PREFIX = '__edge_global_';

export function exportMutableGlobals(bytes: Uint8Array): Uint8Array {
  const sections = readSections(bytes);
  const globals = findSection(sections, SectionId.GLOBAL);
  if (globals === undefined) return bytes;
  const imported = readImportEntries(bytes, sections).filter((i) => i.kind === 'global').length;
  const r = sectionReader(bytes, globals);
  const count = r.u32();
  const mutable: number[] = [];
  const scratch = new ByteWriter();
  for (let i = 0; i < count; i++) {
    const type = readValType(r);
    if (r.u8() === 1 && (type === 'i32' || type === 'i64' || type === 'f32' || type === 'f64')) mutable.push(imported + i);
    rewriteConstExpr(r, scratch, (f) => f);
  }
  expectEnd(r, 'global section');
  if (mutable.length === 0) return bytes;
  const exports = findSection(sections, SectionId.EXPORT);
  const er = exports === undefined ? null : sectionReader(bytes, exports);
  const existing = er === null ? 0 : er.u32();
  const w = new ByteWriter().u32(existing + mutable.length);
  if (er !== null) w.bytes(bytes.subarray(er.pos, exports!.end));
  for (const index of mutable) w.name(`${GLOBAL_EXPORT_PREFIX}${index}`).u8(3).u32(index);
  return spliceSection(bytes, sections, SectionId.EXPORT, w.finish());
}
