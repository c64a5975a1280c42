/**
 * The import section with types: what `WebAssembly.Module.imports` does not tell on Node 20
 * (names and kinds only). Function imports carry their FuncType from the type section, so the
 * ABI host can check each hostcall's signature before linking.
 */
import type { TypedImport } from '../../abi/wasm-types.js';
import { ByteReader } from './leb.js';
import { expectEnd, findSection, readFuncTypes, readLimits, readSections, readValType, sectionReader, SectionId, skipRefType,
  type Limits, type Section } from './sections.js';

const KINDS = ['function', 'table', 'memory', 'global', 'tag'] as const;

/** One import as the instrumenter needs it: where it sits, and memory limits for memories. */
export interface ImportEntry extends TypedImport {
  /** Type index of a function or tag import. */
  readonly typeIndex?: number;
  readonly limits?: Limits;
}

/** Every import of `bytes` in order; throws GW_ERR_MODULE_INVALID naming the offset for malformed bytes. */
export function readImports(bytes: Uint8Array): TypedImport[] {
  const sections = readSections(bytes);
  return readImportEntries(bytes, sections).map(({ module, name, kind, type }) => (type ? { module, name, kind, type } : { module, name, kind }));
}

export function readImportEntries(bytes: Uint8Array, sections: readonly Section[]): ImportEntry[] {
  const section = findSection(sections, SectionId.IMPORT);
  if (section === undefined) return [];
  const types = readFuncTypes(bytes, findSection(sections, SectionId.TYPE));
  const r = sectionReader(bytes, section);
  const count = r.u32();
  const out: ImportEntry[] = [];
  for (let i = 0; i < count; i++) {
    const module = r.name();
    const name = r.name();
    const at = r.pos;
    const kind = KINDS[r.u8()];
    if (kind === undefined) r.fail(`import ${module}.${name} has an unknown kind`, at);
    out.push(readDescriptor(r, types.length, kind, module, name, (index) => types[index]));
  }
  expectEnd(r, 'import section');
  return out;
}

function readDescriptor(r: ByteReader, typeCount: number, kind: ImportEntry['kind'], module: string, name: string,
  typeOf: (index: number) => ImportEntry['type']): ImportEntry {
  switch (kind) {
    case 'function': {
      const at = r.pos;
      const typeIndex = r.u32();
      if (typeIndex >= typeCount) r.fail(`import ${module}.${name} uses type ${typeIndex} of ${typeCount}`, at);
      return { module, name, kind, typeIndex, type: typeOf(typeIndex) };
    }
    case 'table':
      skipRefType(r);
      readLimits(r);
      return { module, name, kind };
    case 'memory':
      return { module, name, kind, limits: readLimits(r) };
    case 'global':
      readValType(r);
      if (r.u8() > 1) r.fail(`import ${module}.${name}: global mutability is not 0 or 1`, r.pos - 1);
      return { module, name, kind };
    case 'tag': {
      if (r.u8() !== 0) r.fail(`import ${module}.${name}: tag attribute is not 0`, r.pos - 1);
      const typeIndex = r.u32();
      return { module, name, kind, typeIndex };
    }
  }
}

