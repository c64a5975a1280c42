/**
 * Loading a configuration file: read, parse (YAML or JSON), validate against the schema and the
 * cross-references, and freeze. Every problem is reported at once, each as
 * `<file>: <field path>: <what is wrong>`, e.g. `gateway.yaml: routes[2].cluster: unknown cluster "bakend"`.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { GatewayError, type ErrorCode } from '../errors.js';
import { configSchema, type GatewayConfig } from './schema.js';
import { crossCheck, sectionsOf } from './validate.js';

/**
 * The error for a configuration that cannot be used; `problems` lists each finding. `code` is
 * for findings made beyond the schema (GW_ERR_CONFIG_UNSUPPORTED from the shared-state factory).
 */
export class ConfigError extends GatewayError {
  constructor(readonly file: string, readonly problems: readonly string[], code?: ErrorCode) {
    super(code ?? (problems.length === 1 && problems[0].startsWith('cannot read') ? 'GW_ERR_CONFIG_READ' : 'GW_ERR_CONFIG_INVALID'),
      `invalid configuration ${file}:\n  ${problems.map((p) => `${file}: ${p}`).join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
  return out === '' ? '(top level)' : out;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function schemaProblems(issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(`${fieldPath([...issue.path, key])}: unknown field`);
    } else if (issue.code === 'invalid_type' && issue.input === undefined) {
      out.push(`${fieldPath(issue.path)}: required (${issue.expected})`);
    } else {
      out.push(`${fieldPath(issue.path)}: ${issue.message}`);
    }
  }
  return out;
}

/**
 * Validates a parsed document; `file` is only used in messages. The cross-references are checked
 * even when the schema fails (on what still parses), so one run lists every problem.
 */
export function parseConfig(doc: unknown, file: string): GatewayConfig {
  const result = configSchema.safeParse(doc, { reportInput: true });
  const problems = result.success ? crossCheck({ ...result.data, registry: result.data.modules.registry !== undefined }) : [...schemaProblems(result.error.issues), ...crossCheck(sectionsOf(doc))];
  if (problems.length > 0 || !result.success) throw new ConfigError(file, problems);
  return deepFreeze(result.data);
}

/** Reads and validates a YAML or JSON configuration file. */
export function loadConfigFile(file: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => {
      const at = lines.linePos(e.pos[0]);
      return `line ${at.line}, column ${at.col}: syntax error: ${e.message.split('\n')[0]}`;
    }));
  }
  return parseConfig(doc.toJS(), file);
}
