/**
 * ABI version detection (reference §1.1): a module declares its ABI by exporting an empty function
 * `proxy_abi_version_X_Y_Z`; as in cpp-host, the first marker in export order wins.
 */
import { AbiVersion } from './enums.js';

const MARKERS: ReadonlyMap<string, AbiVersion> = new Map([
  ['proxy_abi_version_0_1_0', AbiVersion.V0_1_0],
  ['proxy_abi_version_0_2_0', AbiVersion.V0_2_0],
  ['proxy_abi_version_0_2_1', AbiVersion.V0_2_1],
]);

/** The declared ABI version, or null when the module exports no known marker. */
export function detectAbiVersion(module: WebAssembly.Module): AbiVersion | null {
  for (const exp of WebAssembly.Module.exports(module)) {
    if (exp.kind !== 'function') continue;
    const version = MARKERS.get(exp.name);
    if (version !== undefined) return version;
  }
  return null;
}
