/**
 * The WASI 0.2 interfaces a function may import, by name. Kept apart from wasi-imports.ts, which
 * implements them in the function's worker thread: the main thread checks a component's imports
 * against this list when it loads, and must not load what implements them (preview2-shim's
 * modules cost ~10 MB of resident memory in a gateway that may run no function at all).
 */

/** The interfaces (without version) the gateway provides. */
export const PROVIDED = [
  'wasi:http/types', 'wasi:http/outgoing-handler',
  'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams',
  'wasi:cli/environment', 'wasi:cli/exit', 'wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:cli/stderr',
  'wasi:cli/terminal-input', 'wasi:cli/terminal-output',
  'wasi:cli/terminal-stdin', 'wasi:cli/terminal-stdout', 'wasi:cli/terminal-stderr',
  'wasi:clocks/monotonic-clock', 'wasi:clocks/wall-clock',
  'wasi:random/random', 'wasi:random/insecure', 'wasi:random/insecure-seed',
  'wasi:filesystem/types', 'wasi:filesystem/preopens',
] as const;

/** An import name without its `@version`: 0.2.x versions are compatible. */
export const unversioned = (name: string): string => name.replace(/@[^/]*$/, '');
