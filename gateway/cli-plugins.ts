/**
 * The commands that drive live plugins: the admin API's client (plugins, swap, configure, enable,
 * disable, canary, promote, rollback), the module registry's (push) and signing (keygen, sign).
 * cli.ts dispatches here and exits with the code returned: 0 done, 1 refused or unreachable, 2 a
 * usage error.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfigFile } from './config/load.js';
import { registryRefSchema } from './config/schema.js';
import { ModuleRegistry } from './modules/registry.js';
import { sha256Hex } from './modules/sha256.js';
import { generateSigningKeys, loadTrustedKeys, readDetachedSignature, signSha256, verifyModuleSignature } from './modules/signature.js';

export const PLUGIN_COMMANDS = ['plugins', 'functions', 'swap', 'configure', 'enable', 'disable', 'canary', 'promote', 'rollback', 'push', 'keygen', 'sign'] as const;

export const PLUGIN_HELP = `
Live plugins (through the admin API; --admin URL, default $EDGE_GATEWAY_ADMIN or
http://127.0.0.1:9901; --token TOKEN, default $EDGE_GATEWAY_ADMIN_TOKEN):
  edge-gateway plugins [NAME] [--json]     what runs: modules, versions, health, canary
  edge-gateway swap NAME FILE [--signature SIG]
                                           replace a plugin's module (FILE.sig is sent when present)
  edge-gateway configure NAME JSON         give a plugin another configuration
  edge-gateway enable NAME | disable NAME  run or pass by a plugin on new streams
  edge-gateway canary NAME FILE [--percent P] [--steps 5,25,100] [--hold-ms MS]
               [--sticky header:NAME|cookie:NAME|client] [--match-header NAME[=VALUE]]
               [--match-cookie NAME[=VALUE]] [--signature SIG]
                                           run FILE for a share of the streams beside the stable version
  edge-gateway canary NAME --percent P     move the canary's share (100 promotes it)
  edge-gateway promote NAME | rollback NAME
Edge functions (the same commands with --function):
  edge-gateway functions [--json]          what runs: components, instances, canary
  edge-gateway swap NAME FILE --function   replace a function's component (FILE.sig is sent when present)
  edge-gateway canary NAME --percent P --function | promote NAME --function | rollback NAME --function
Fleet and signatures:
  edge-gateway push FILE --tag NAME:CHANNEL [--config FILE | --redis URL [--prefix P]] [--signature SIG]
                                           store FILE in the Redis module registry and move the tag
  edge-gateway keygen NAME                 write an ed25519 key pair: NAME.key (private), NAME.pub
  edge-gateway sign FILE --key NAME.key    write FILE.sig, the signature of FILE's sha256
`;

const OPTIONS = {
  admin: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' }, signature: { type: 'string' }, function: { type: 'boolean' },
  percent: { type: 'string' }, steps: { type: 'string' }, 'hold-ms': { type: 'string' }, sticky: { type: 'string' },
  'match-header': { type: 'string' }, 'match-cookie': { type: 'string' },
  tag: { type: 'string' }, config: { type: 'string', short: 'c' }, redis: { type: 'string' }, prefix: { type: 'string' }, key: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

function need(value: string | undefined, what: string): string {
  if (value === undefined || value === '') throw new UsageError(`${what} is required`);
  return value;
}

function number(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${what} must be a number, not "${value}"`);
  return n;
}

/** The signature to send with FILE: --signature, else FILE.sig when present. */
async function signatureFor(file: string, values: Values): Promise<string | null> {
  if (values.signature !== undefined) return readFileSync(values.signature, 'utf8').trim();
  return readDetachedSignature(file);
}

/** `header:NAME`, `cookie:NAME` or `client`. */
function sticky(value: string): Record<string, unknown> {
  if (value === 'client') return { client: true };
  const [kind, name] = [value.slice(0, value.indexOf(':')), value.slice(value.indexOf(':') + 1)];
  if ((kind === 'header' || kind === 'cookie') && name !== '') return { [kind]: name };
  throw new UsageError(`--sticky must be header:NAME, cookie:NAME or client, not "${value}"`);
}

/** `NAME` (present) or `NAME=VALUE` (exact). */
function match(value: string): { name: string; exact?: string } {
  const eq = value.indexOf('=');
  return eq < 0 ? { name: value } : { name: value.slice(0, eq), exact: value.slice(eq + 1) };
}

async function canaryBody(file: string, values: Values): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = { module: { wasm: Buffer.from(readFileSync(file)).toString('base64') } };
  const signature = await signatureFor(file, values);
  if (signature !== null) (body.module as Record<string, unknown>).signature = signature;
  if (values.percent !== undefined) body.percent = number(values.percent, '--percent');
  if (values.steps !== undefined) body.steps = values.steps.split(',').map((s) => number(s.trim(), '--steps'));
  if (values['hold-ms'] !== undefined) body.holdMs = number(values['hold-ms'], '--hold-ms');
  if (values.sticky !== undefined) body.sticky = sticky(values.sticky);
  const header = values['match-header'];
  const cookie = values['match-cookie'];
  if (header !== undefined || cookie !== undefined) {
    body.match = { ...(header === undefined ? {} : { header: match(header) }), ...(cookie === undefined ? {} : { cookie: match(cookie) }) };
  }
  return body;
}

interface Request {
  readonly method: string;
  readonly path: string;
  readonly body?: Uint8Array | Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

/** A PUT of FILE's bytes to `path`, with its signature (--signature, else FILE.sig) when there is one. */
async function upload(path: string, file: string, values: Values): Promise<Request> {
  const signature = await signatureFor(file, values);
  return {
    method: 'PUT', path, body: new Uint8Array(readFileSync(file)),
    headers: { 'content-type': 'application/wasm', ...(signature === null ? {} : { 'x-module-signature': signature }) },
  };
}

/** What a command asks of the admin API. */
async function request(command: string, args: readonly string[], values: Values): Promise<Request> {
  const name = encodeURIComponent(need(args[0], `edge-gateway ${command} NAME: NAME`));
  if (values.function === true) return functionRequest(command, name, args, values);
  switch (command) {
    case 'swap':
      return upload(`/plugins/${name}/module`, need(args[1], 'edge-gateway swap NAME FILE: FILE'), values);
    case 'configure': {
      const text = need(args[1], 'edge-gateway configure NAME JSON: JSON');
      let configuration: unknown;
      try {
        configuration = JSON.parse(text);
      } catch {
        configuration = text; // a plain string configuration
      }
      return { method: 'PUT', path: `/plugins/${name}/configuration`, body: { configuration } };
    }
    case 'enable': case 'disable': case 'promote': case 'rollback':
      return { method: 'POST', path: `/plugins/${name}/${command}` };
    case 'canary':
      if (args[1] === undefined) return { method: 'PATCH', path: `/plugins/${name}/canary`, body: { percent: number(need(values.percent, '--percent'), '--percent') } };
      return { method: 'POST', path: `/plugins/${name}/canary`, body: await canaryBody(args[1], values) };
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** The commands with --function: the functions' part of the admin API. */
async function functionRequest(command: string, name: string, args: readonly string[], values: Values): Promise<Request> {
  switch (command) {
    case 'swap':
      return upload(`/functions/${name}/component`, need(args[1], 'edge-gateway swap NAME FILE --function: FILE'), values);
    case 'promote': case 'rollback':
      return { method: 'POST', path: `/functions/${name}/${command}` };
    case 'canary':
      if (args[1] !== undefined) throw new UsageError('a function\'s canary component is set in the configuration; with --function, canary takes only --percent');
      return { method: 'PATCH', path: `/functions/${name}/canary`, body: { percent: number(need(values.percent, '--percent'), '--percent') } };
    default:
      throw new UsageError(`${command} does not apply to a function (--function works with swap, canary --percent, promote and rollback)`);
  }
}

async function callAdmin(values: Values, req: Request): Promise<{ status: number; body: unknown }> {
  const base = (values.admin ?? process.env.EDGE_GATEWAY_ADMIN ?? 'http://127.0.0.1:9901').replace(/\/+$/, '');
  const token = values.token ?? process.env.EDGE_GATEWAY_ADMIN_TOKEN;
  const json = req.body !== undefined && !(req.body instanceof Uint8Array);
  const res = await fetch(`${base}${req.path}`, {
    method: req.method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(json ? { 'content-type': 'application/json' } : {}), ...req.headers },
    body: req.body === undefined ? undefined : json ? JSON.stringify(req.body) : Buffer.from(req.body as Uint8Array),
  }).catch((err: Error) => {
    const cause = (err.cause as { code?: string; message?: string } | undefined);
    throw new Error(`cannot reach the admin API at ${base} (--admin URL or $EDGE_GATEWAY_ADMIN): ${cause?.code ?? cause?.message ?? err.message}`);
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** One line per plugin: its stable module and its canary. */
function summary(report: Record<string, unknown>): string {
  if ('instances' in report) return functionSummary(report);
  const stable = report.stable as Record<string, unknown>;
  const canary = report.canary as Record<string, unknown> | null;
  const state = report.enabled === false ? 'disabled' : stable.healthy === true ? 'healthy' : `failed (${String(stable.failure)})`;
  const version = (v: Record<string, unknown>): string => `${String(v.sha256).slice(0, 12)} ${String(v.source)}${v.signedBy === null ? '' : ` signed by ${String(v.signedBy)}`}`;
  const line = `${String(report.name)}: ${state}, stable ${version(stable)}`;
  return canary === null ? line : `${line}; canary ${version(canary)} at ${String(canary.percent)}%`;
}

/** A function's line: its component, where it came from, its instances and its canary. */
function functionSummary(report: Record<string, unknown>): string {
  const i = report.instances as Record<string, number>;
  const canary = report.canary as Record<string, unknown> | null;
  const line = `${String(report.name)}: component ${String(report.sha256).slice(0, 12)} ${String(report.source)}${report.signedBy === null ? '' : ` signed by ${String(report.signedBy)}`}, `
    + `instances ${i.configured} (ready ${i.ready}, busy ${i.busy}, queued ${i.queued})`;
  return canary === null ? line : `${line}; canary ${String(canary.sha256).slice(0, 12)} ${String(canary.source)} at ${String(canary.percent)}%`;
}

/** A WebAssembly component (an edge function's) starts "\0asm", version 0x0d 0x00, layer 0x01 0x00. */
const isComponent = (bytes: Uint8Array): boolean => [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00].every((b, i) => bytes[i] === b);

async function push(args: readonly string[], values: Values): Promise<number> {
  const file = need(args[0], 'edge-gateway push FILE: FILE');
  const tag = need(values.tag, '--tag NAME:CHANNEL');
  if (!registryRefSchema.safeParse(tag).success || /^[0-9a-fA-F]{64}$/.test(tag)) throw new UsageError(`--tag must be NAME:CHANNEL, not "${tag}"`);
  const config = values.config === undefined ? null : loadConfigFile(values.config);
  const registry = config?.modules.registry ?? (values.redis === undefined ? undefined : { url: values.redis, prefix: values.prefix ?? 'edge:', cluster: false });
  if (registry === undefined) throw new UsageError('--redis URL, or --config FILE with modules.registry, is required');
  const bytes = new Uint8Array(readFileSync(file));
  if (!WebAssembly.validate(bytes) && !isComponent(bytes)) throw new Error(`${file} is neither a valid WebAssembly module nor a component: nothing was pushed`);
  const signature = await signatureFor(file, values);
  const sha256 = sha256Hex(bytes);
  if (config !== null) {
    // Refused here as every node would refuse it: unsigned where required, or signed by no trusted key.
    verifyModuleSignature(file, sha256, signature, loadTrustedKeys(config.modules.trustedKeys), config.modules.requireSignature);
  }
  const client = ModuleRegistry.open({ url: registry.url, prefix: registry.prefix, cluster: registry.cluster, cacheDir: config?.modules.cacheDir ?? '.edge-gateway/modules' });
  try {
    await client.push(bytes, tag, signature);
  } finally {
    await client.close();
  }
  process.stdout.write(`pushed ${file} (${sha256}${signature === null ? ', unsigned' : ', signed'}) as ${tag}\n`);
  return 0;
}

function keygen(args: readonly string[]): number {
  const name = need(args[0], 'edge-gateway keygen NAME: NAME');
  if (existsSync(`${name}.key`)) throw new Error(`${name}.key exists: not overwritten`);
  const pair = generateSigningKeys();
  writeFileSync(`${name}.key`, pair.privateKeyPem, { mode: 0o600 });
  writeFileSync(`${name}.pub`, pair.publicKeyPem);
  process.stdout.write(`wrote ${name}.key (private: keep it off the gateways) and ${name}.pub (list it in modules.trustedKeys)\n`);
  return 0;
}

function sign(args: readonly string[], values: Values): number {
  const file = need(args[0], 'edge-gateway sign FILE: FILE');
  const key = readFileSync(need(values.key, '--key FILE'), 'utf8');
  const sha256 = sha256Hex(new Uint8Array(readFileSync(file)));
  writeFileSync(`${file}.sig`, `${signSha256(sha256, key)}\n`);
  process.stdout.write(`wrote ${file}.sig (ed25519 over sha256 ${sha256})\n`);
  return 0;
}

/** Runs a plugin command; the exit code. */
export async function pluginCommand(command: string, argv: readonly string[]): Promise<number> {
  let values: Values;
  let args: string[];
  try {
    const parsed = parseArgs({ args: [...argv], allowPositionals: true, options: OPTIONS });
    values = parsed.values;
    args = parsed.positionals;
    if (command === 'push') return await push(args, values);
    if (command === 'keygen') return keygen(args);
    if (command === 'sign') return sign(args, values);
    const req = command === 'plugins' ? { method: 'GET', path: args[0] === undefined ? '/plugins' : `/plugins/${encodeURIComponent(args[0])}` }
      : command === 'functions' ? { method: 'GET', path: '/functions' } : await request(command, args, values);
    const answer = await callAdmin(values, req);
    if (answer.status !== 200) {
      const err = answer.body as { error?: string; message?: string };
      process.stderr.write(`edge-gateway ${command}: HTTP ${answer.status} ${err.error ?? ''}: ${err.message ?? JSON.stringify(answer.body)}\n`);
      return 1;
    }
    if (values.json === true) process.stdout.write(`${JSON.stringify(answer.body, null, 2)}\n`);
    else process.stdout.write(`${(Array.isArray(answer.body) ? answer.body : [answer.body]).map((r) => summary(r as Record<string, unknown>)).join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`edge-gateway ${command}: ${(err as Error).message}\n`);
    return err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1;
  }
}
