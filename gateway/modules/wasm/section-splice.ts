/**
 * Replaces (or adds) one section of a module, keeping every other byte: for the small rewrites
 * of function components' core modules (memory-max.ts, export-globals.ts), which the ABI
 * instrumenter does not prepare.
 */
import { ByteWriter } from './leb.js';
import { findSection, sectionRank, type Section } from './sections.js';

/** Start of a section's id byte, from the start of its payload (before it: the id and a LEB size). */
function headerStart(bytes: Uint8Array, section: Section): number {
  let at = section.start - 1;
  while (at > 0 && (bytes[at - 1]! & 0x80) !== 0) at--;
  return at - 1;
}

/** `bytes` with section `id` holding `payload`: in place of the old one, or where its rank puts it. */
export function spliceSection(bytes: Uint8Array, sections: readonly Section[], id: number, payload: Uint8Array): Uint8Array {
  const old = findSection(sections, id);
  let from: number;
  let to: number;
  if (old !== undefined) {
    from = headerStart(bytes, old);
    to = old.end;
  } else {
    const after = sections.find((s) => s.id !== 0 && sectionRank(s.id) > sectionRank(id));
    from = to = after === undefined ? bytes.length : headerStart(bytes, after);
  }
  return new ByteWriter(bytes.length + payload.length + 16)
    .bytes(bytes.subarray(0, from)).u8(id).u32(payload.length).bytes(payload).bytes(bytes.subarray(to)).finish();
}
