/**
 * Loading a configuration file: read, parse (YAML or JSON), validate against the schema and the
 * cross-references, and freeze. Every problem is reported at once, each as
 * `<file>: <field path>: <what is wrong>`, e.g. `gateway.yaml: routes[2].cluster: unknown cluster "bakend"`.
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { GatewayError } from '../errors.js';
import { configSchema, type GatewayConfig } from './schema.js';
import { crossCheck } from './validate.js';

/** The error for a configuration that cannot be used; `problems` lists each finding. */
export class ConfigError extends GatewayError {
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super(problems.length === 1 && problems[0].startsWith('cannot read') ? 'GW_ERR_CONFIG_READ' : 'GW_ERR_CONFIG_INVALID',
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

/** Validates a parsed document; `file` is only used in messages. */
export function parseConfig(doc: unknown, file: string): GatewayConfig {
  const result = configSchema.safeParse(doc);
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((issue) => `${fieldPath(issue.path)}: ${issue.message}`));
  }
  const problems = crossCheck(result.data);
  if (problems.length > 0) throw new ConfigError(file, problems);
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
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `syntax: ${e.message.split('\n')[0]}`));
  }
  return parseConfig(doc.toJS(), file);
}
