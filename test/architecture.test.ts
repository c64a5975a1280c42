/**
 * The layering rules of the design, checked on every module reference of every file of gateway/:
 * abi/ knows only WebAssembly, node:crypto and the shared leaves; lower layers never import upper
 * ones; the entry points sit on top. References are read with the TypeScript parser, so every
 * form counts (static, side-effect, type-only, `export … from`, dynamic `import()`, `import("…")`
 * types, `require`) and nothing in a comment or a string does.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../gateway/errors.js';

const root = join(import.meta.dirname, '..');
const gatewayDir = join(root, 'gateway');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** A module reference; `spec` is null for a dynamic import or require of a computed name. */
interface Reference {
  readonly spec: string | null;
  readonly line: number;
}

const literal = (node: ts.Node | undefined): string | null => (node !== undefined && ts.isStringLiteralLike(node) ? node.text : null);

/** Every module reference in `text`, whatever its form. */
function referencesOf(text: string, fileName = 'file.ts'): Reference[] {
  const file = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Reference[] = [];
  const add = (node: ts.Node, spec: string | null): void => {
    out.push({ spec, line: file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1 });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
      add(node, literal(node.moduleSpecifier));
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, literal(node.moduleReference.expression));
    } else if (ts.isCallExpression(node)
      && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      add(node, literal(node.arguments[0]));
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, literal(node.argument.literal));
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

/** Where a file or a relative reference lands: its folder under gateway/ or its top-level file name. */
function unitOf(path: string): string {
  return relative(gatewayDir, path).replace(/\.js$/, '.ts').split('/')[0];
}

const LAYERS = ['abi', 'modules', 'shared-state', 'config', 'proxy', 'admin', 'control', 'functions'];
const NODE = ['node:crypto', 'node:events', 'node:fs', 'node:fs/promises', 'node:http', 'node:net', 'node:stream', 'node:util'];

/**
 * For each folder or top-level file of gateway/, the packages and the units of gateway/ it may
 * reference. Every file of gateway/ must fall under one of them.
 */
const RULES: Record<string, { packages: string[]; units: string[]; computed?: string }> = {
  // abi/ logs through the AbiLogger port; log.ts (pino) implements it and so is not abi's to import.
  abi: { packages: ['node:crypto'], units: ['abi', 'errors.ts'] },
  modules: { packages: ['node:crypto', 'node:fs', 'node:fs/promises', 'lru-cache', 'undici', 'ioredis'], units: ['modules', 'abi', 'errors.ts', 'log.ts'] },
  'shared-state': { packages: ['ioredis', 'node:crypto'], units: ['shared-state', 'abi', 'errors.ts', 'log.ts'] },
  config: { packages: ['node:crypto', 'node:fs', 'yaml', 'zod', 're2js'], units: ['config', 'errors.ts'] },
  proxy: {
    // node:fs for the listeners' certificate files (tls.ts), read at load and reload only.
    packages: ['node:http', 'node:https', 'node:http2', 'node:tls', 'node:net', 'node:fs', 'node:crypto', 'node:stream', 'node:zlib', 'undici', 'http-proxy-3'],
    units: ['proxy', 'abi', 'modules', 'config', 'functions', 'errors.ts', 'log.ts'],
  },
  // Edge functions: jco's bindings in worker threads beside abi/, not inside it. The one computed
  // import is the bindings jco wrote for a component (function-worker.ts).
  functions: {
    packages: ['node:worker_threads', 'node:fs/promises', 'node:path', 'node:url', '@bytecodealliance/jco-transpile', '@bytecodealliance/preview2-shim/random', '@bytecodealliance/preview2-shim/clocks'],
    units: ['functions', 'modules', 'config', 'errors.ts'],
    computed: 'function-worker.ts',
  },
  // Edge functions wired to the clusters' callouts, the metrics and the log.
  'edge-functions.ts': { packages: ['prom-client'], units: ['admin', 'config', 'control', 'functions', 'proxy', 'errors.ts', 'log.ts'] },
  admin: { packages: ['node:http', 'prom-client'], units: ['admin', 'abi', 'errors.ts', 'log.ts'] },
  // Live plugins: the admin API's changes, canaries, watched files and registry tags, above the
  // data plane it changes and the module sources it reads.
  control: { packages: ['node:http', 'node:crypto', 'node:fs/promises', 'zod'], units: ['control', 'proxy', 'modules', 'config', 'admin', 'abi', 'errors.ts', 'log.ts'] },
  // The leaves everyone may import: errors.ts imports nothing; log.ts adapts pino to abi's port.
  'errors.ts': { packages: [], units: [] },
  'log.ts': { packages: ['node:events', 'pino'], units: ['abi', 'errors.ts'] },
  'demo-upstream.ts': { packages: ['node:http', 'node:net'], units: [] },
  'version.ts': { packages: ['node:fs'], units: [] },
  // Pieces of the composition root: the access log and request metrics, binding and closing servers.
  'traffic-observer.ts': { packages: ['node:http'], units: ['admin', 'proxy', 'log.ts'] },
  'server-binding.ts': { packages: ['node:http', 'node:net'], units: ['log.ts'] },
  // The composition root builds every layer; the entry points sit above it.
  'gateway.ts': { packages: [...NODE, 'pino'], units: [...LAYERS, 'errors.ts', 'log.ts', 'traffic-observer.ts', 'server-binding.ts', 'edge-functions.ts', 'version.ts'] },
  'index.ts': { packages: [], units: [...LAYERS, 'errors.ts', 'log.ts', 'gateway.ts'] },
  // The box of `workers: N`: the primary beside the composition root (admin, hub, signals), the
  // worker's side of it above the gateway it runs.
  workers: { packages: ['node:cluster', 'node:net', 'node:os', 'prom-client'], units: ['workers', 'admin', 'config', 'shared-state', 'control', 'errors.ts', 'log.ts', 'gateway.ts'] },
  'cli.ts': { packages: [...NODE, 'node:os'], units: [...LAYERS, 'errors.ts', 'log.ts', 'gateway.ts', 'demo-upstream.ts', 'workers', 'cli-plugins.ts', 'version.ts'] },
  // The admin API's client, the registry's push and signing: no gateway is built.
  'cli-plugins.ts': { packages: ['node:fs', 'node:util'], units: ['config', 'modules', 'errors.ts'] },
};

/** What `file` references against its rule, as "file:line → spec". */
function offendingReferences(file: string): string[] {
  const rule = RULES[unitOf(file)];
  const at = (line: number, spec: string): string => `${relative(root, file)}:${line} → ${spec}`;
  return referencesOf(readFileSync(file, 'utf8'), file).flatMap(({ spec, line }) => {
    if (spec === null) return file.endsWith(`/${rule.computed}`) ? [] : [at(line, 'a computed module name (the rules cannot check it)')];
    if (spec.startsWith('.')) return rule.units.includes(unitOf(join(file, '..', spec))) ? [] : [at(line, spec)];
    return rule.packages.includes(spec) ? [] : [at(line, spec)];
  });
}

const files = sources(gatewayDir);

describe('the layering of gateway/', () => {
  it('has a rule for every folder and top-level file of gateway/', () => {
    expect(files.map(unitOf).filter((unit) => RULES[unit] === undefined)).toEqual([]);
  });

  for (const unit of Object.keys(RULES)) {
    it(`keeps ${unit}${unit.endsWith('.ts') ? '' : '/'} to its allowed imports`, () => {
      const own = files.filter((file) => unitOf(file) === unit);
      expect(own.length, `no file of gateway/ is in ${unit}`).toBeGreaterThan(0);
      expect(own.flatMap(offendingReferences)).toEqual([]);
    });
  }

  it('leaves exiting the process to cli.ts', () => {
    const exits = files.filter((file) => unitOf(file) !== 'cli.ts' && /\bprocess\.(exit|abort)\s*\(/.test(readFileSync(file, 'utf8')));
    expect(exits.map((file) => relative(root, file))).toEqual([]);
  });
});

describe('the import reader of this test', () => {
  it('sees every import form and nothing in comments or strings', () => {
    const text = [
      "import a from './a.js';",
      "import './side-effect.js';",
      "import type { T } from './type-only.js';",
      "export * from './star.js';",
      "export { x } from './named.js';",
      "export type { Y } from './type-export.js';",
      "const lazy = await import('./dynamic.js');",
      'const computed = await import(name);',
      "type Q = typeof import('./import-type.js');",
      "import z = require('./import-equals.js');",
      "const r = require('./require.js');",
      "// import c from './in-a-comment.js';",
      "const s = \"import d from './in-a-string.js'\";",
      'export { local };',
    ].join('\n');
    expect(referencesOf(text).map((r) => r.spec)).toEqual([
      './a.js', './side-effect.js', './type-only.js', './star.js', './named.js', './type-export.js', './dynamic.js', null,
      './import-type.js', './import-equals.js', './require.js',
    ]);
  });
});

const MAX_LINES = 400;

/** Lines as `wc -l` counts them. */
const linesOf = (file: string): number => readFileSync(file, 'utf8').split('\n').length - 1;

describe('the size of gateway/ files', () => {
  it(`keeps every file of gateway/ at ${MAX_LINES} lines or fewer`, () => {
    const over = files.filter((file) => linesOf(file) > MAX_LINES).map((file) => relative(root, file));
    expect(over).toEqual([]);
  });
});

describe('the error table', () => {
  it('documents every error code in the README', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const missing = Object.keys(ErrorCodes).filter((code) => !readme.includes(`\`${code}\``));
    expect(missing).toEqual([]);
  });
});
