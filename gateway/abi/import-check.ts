/**
 * The load-time check of a module's imports against what the host links (signatures.ts) and
 * against the plugin's capability list, run on the module's own import section before
 * instantiation and before the instrumentation adds its module. It collects every problem and
 * throws once, so an operator fixes a module or a configuration in one round:
 *   - GW_ERR_ABI_LINK: an import the host does not provide, a function import whose type differs
 *     (as V8 does in Envoy, where a JS host function would link any type), any non-function import
 *     (the host provides none), or an import from the reserved instrumentation module;
 *   - GW_ERR_ABI_CAPABILITY: hostcalls outside `allowedHostcalls` (bare names, whatever the import
 *     module), and names in `allowedHostcalls` the host does not know.
 * Link problems win the code when both kinds occur; the message lists both.
 */
import { GatewayError } from '../errors.js';
import {
  CAPABILITY_NAMES, HOST_SIGNATURES, INSTRUMENTATION_MODULE, NON_CAPABILITY_NAMES, formatFuncType, sameFuncType,
} from './signatures.js';
import type { TypedImport } from './wasm-types.js';

function linkProblem(imp: TypedImport): string | null {
  const where = `${imp.module}.${imp.name}`;
  if (imp.module === INSTRUMENTATION_MODULE) {
    return `${where}: the import module "${INSTRUMENTATION_MODULE}" is reserved for the host's instrumentation`;
  }
  const table = Object.hasOwn(HOST_SIGNATURES, imp.module) ? HOST_SIGNATURES[imp.module] : undefined;
  if (imp.kind !== 'function') {
    return `${where}: a ${imp.kind} import; the host provides functions only`;
  }
  const accepted = table !== undefined && Object.hasOwn(table, imp.name) ? table[imp.name] : undefined;
  if (accepted === undefined) {
    return table === undefined
      ? `${where}: the host provides no import module "${imp.module}"`
      : `${where}: the host provides no such function`;
  }
  // NB: an import read without its type (WebAssembly.Module.imports) is checked by name only.
  if (imp.type === undefined || accepted.some((t) => sameFuncType(t, imp.type!))) return null;
  return `${where}: expected ${accepted.map(formatFuncType).join(' or ')}, got ${formatFuncType(imp.type)}`;
}

/**
 * Throws a GatewayError listing every import of `moduleName` that cannot link, and every hostcall
 * it imports that `allowedHostcalls` does not list (absent: every hostcall is allowed; a list,
 * even an empty one, allows exactly its names).
 */
export function checkImports(moduleName: string, imports: readonly TypedImport[], allowedHostcalls?: readonly string[]): void {
  const link: string[] = [];
  const refused = new Set<string>();
  const allowed = allowedHostcalls === undefined ? null : new Set(allowedHostcalls);
  for (const imp of imports) {
    const problem = linkProblem(imp);
    if (problem !== null) {
      link.push(problem);
    } else if (allowed !== null && CAPABILITY_NAMES.has(imp.name) && !allowed.has(imp.name)) {
      refused.add(imp.name);
    }
  }
  const unknown = allowed === null ? []
    : [...allowed].filter((name) => !CAPABILITY_NAMES.has(name) && !NON_CAPABILITY_NAMES.has(name));
  if (link.length === 0 && refused.size === 0 && unknown.length === 0) return;

  const lines: string[] = [];
  if (link.length > 0) lines.push(`imports the host cannot link:\n    ${link.join('\n    ')}`);
  if (refused.size > 0) lines.push(`imports hostcalls that allowedHostcalls does not list: ${[...refused].join(', ')}`);
  if (unknown.length > 0) lines.push(`allowedHostcalls names hostcalls the host does not know: ${unknown.join(', ')}`);
  throw new GatewayError(link.length > 0 ? 'GW_ERR_ABI_LINK' : 'GW_ERR_ABI_CAPABILITY',
    `module ${moduleName}:\n  ${lines.join('\n  ')}`);
}

/**
 * The check as a VM runs it before instantiation: on the typed imports when the module layer gave
 * them; otherwise, when a capability list applies, on the names the JS API gives.
 * NB: those names are the compiled module's, which may be instrumented, so the host's own module
 * is left out there (typed imports are read from the original bytes and keep it).
 */
export function checkVmImports(moduleName: string, module: WebAssembly.Module, imports?: readonly TypedImport[],
  allowedHostcalls?: readonly string[]): void {
  if (imports !== undefined) {
    checkImports(moduleName, imports, allowedHostcalls);
  } else if (allowedHostcalls !== undefined) {
    const names = WebAssembly.Module.imports(module).filter((imp) => imp.module !== INSTRUMENTATION_MODULE);
    checkImports(moduleName, names, allowedHostcalls);
  }
}
