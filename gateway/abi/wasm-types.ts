/**
 * What the host learns about a module from its binary beyond what `WebAssembly.Module.imports`
 * tells (Node 20 gives import names and kinds, no types). The module layer reads these from the
 * bytes; the ABI host checks them against the signatures it provides.
 */

/** A value type as the binary format encodes it. */
export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

/** One entry of the import section. `type` is set for function imports. */
export interface TypedImport {
  readonly module: string;
  readonly name: string;
  readonly kind: 'function' | 'table' | 'memory' | 'global' | 'tag';
  readonly type?: FuncType;
}
