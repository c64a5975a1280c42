/**
 * The changes the admin API accepts, checked with the configuration's own schemas so that a
 * module source or a canary rule means the same in a request as in the file.
 *
 * A module comes as wasm bytes (an application/wasm body, or base64 in `wasm`), as a source of the
 * configuration (`{ file }`, `{ url, sha256 }`, `{ redis }`, as such or under `source`), or as the
 * sha256 of a module the store already holds; `signature` (base64 ed25519) may come with any of them.
 */
import { z } from 'zod';
import { canaryRuleSchema, moduleSourceSchema, type CanaryRuleConfig, type ModuleSourceConfig, type PluginConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';

export type ModuleChange =
  /** `name`: where the bytes came from, for /plugins and logs (default: an admin upload). */
  | { readonly bytes: Uint8Array; readonly signature?: string | null; readonly name?: string }
  | { readonly source: ModuleSourceConfig; readonly signature?: string | null }
  | { readonly sha256: string; readonly signature?: string | null };

export interface CanaryRequest {
  readonly module: ModuleChange;
  readonly configuration?: PluginConfig['configuration'];
  readonly rule: CanaryRuleConfig;
}

const signature = z.string().min(1).optional();
const base64 = z.string().min(1).regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');
const moduleBody = z.union([
  z.object({ wasm: base64, signature }).strict(),
  z.object({ sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits'), signature }).strict(),
  z.object({ source: moduleSourceSchema, signature }).strict(),
], { error: 'must be { wasm: base64 }, { sha256 } or { source: <a module source of the configuration> }, each with an optional signature' });

const canaryBody = canaryRuleSchema.extend({
  module: moduleBody,
  configuration: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
}).strict();

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : what}: ${i.message}`);
  throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `${what}: ${problems.join('; ')}`);
}

function moduleChange(body: z.output<typeof moduleBody>): ModuleChange {
  if ('wasm' in body) return { bytes: new Uint8Array(Buffer.from(body.wasm, 'base64')), signature: body.signature };
  if ('source' in body) return { source: body.source, signature: body.signature };
  return { sha256: body.sha256.toLowerCase(), signature: body.signature };
}

/** `{ file }`, `{ url, sha256 }` and `{ redis }` are taken as they are written in the configuration, as well as under `source`. */
function sourceShorthand(json: unknown): unknown {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return json;
  const { signature, ...rest } = json as Record<string, unknown>;
  const given = 'file' in rest || 'url' in rest || 'redis' in rest;
  return given ? { source: rest, ...(signature === undefined ? {} : { signature }) } : json;
}

export function parseModuleChange(json: unknown): ModuleChange {
  return moduleChange(parse(moduleBody, sourceShorthand(json), 'module change'));
}

export function parseCanaryRequest(json: unknown): CanaryRequest {
  const body = json !== null && typeof json === 'object' ? { ...json as object, module: sourceShorthand((json as { module?: unknown }).module) } : json;
  const { module, configuration, ...rule } = parse(canaryBody, body, 'canary');
  return { module: moduleChange(module), configuration, rule };
}

export function parseConfiguration(json: unknown): PluginConfig['configuration'] {
  return parse(z.object({ configuration: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]) }).strict(), json, 'configuration change').configuration;
}

export function parsePercent(json: unknown): number {
  return parse(z.object({ percent: z.number().min(0).max(100) }).strict(), json, 'canary change').percent;
}
