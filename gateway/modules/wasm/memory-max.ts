/**
 * Caps the memories a core module defines: each gets `maxPages` as its maximum (or keeps a lower
 * one), so `memory.grow` past the cap fails inside the guest instead of taking the host's memory.
 * Used for the core modules of function components, which the ABI instrumenter does not prepare.
 * A memory that needs more than the cap to start is refused by name.
 */
import { GatewayError } from '../../errors.js';
import { ByteWriter } from './leb.js';
import { spliceSection } from './section-splice.js';
import { SectionId, findSection, readLimits, readSections, sectionReader } from './sections.js';

export function capDefinedMemories(bytes: Uint8Array, maxPages: number, label: string): Uint8Array {
  const sections = readSections(bytes);
  const section = findSection(sections, SectionId.MEMORY);
  if (section === undefined) return bytes;
  const r = sectionReader(bytes, section);
  const count = r.u32();
  const payload = new ByteWriter().u32(count);
  for (let i = 0; i < count; i++) {
    const limits = readLimits(r);
    if (limits.is64 || limits.shared) throw new GatewayError('GW_ERR_ABI_MEMORY', `${label}: memory ${i} is ${limits.is64 ? '64-bit' : 'shared'}, which the host cannot cap`);
    if (limits.min > maxPages) throw new GatewayError('GW_ERR_ABI_MEMORY', `${label}: memory ${i} needs ${limits.min} pages at start, over the cap of ${maxPages}`);
    payload.u8(0x01).u32(limits.min).u32(Math.min(limits.max ?? maxPages, maxPages));
  }
  return spliceSection(bytes, sections, SectionId.MEMORY, payload.finish());
}
