/**
 * The plugin API of the admin listener:
 *
 *   GET    /plugins                       every plugin: versions, modules, health, counters
 *   GET    /plugins/NAME
 *   PUT    /plugins/NAME/module           swap the module (application/wasm body, or JSON: changes.ts)
 *   PUT    /plugins/NAME/configuration    { configuration }
 *   POST   /plugins/NAME/enable | disable
 *   POST   /plugins/NAME/canary           { module, percent, match, sticky, rollback, steps, holdMs, configuration }
 *   PATCH  /plugins/NAME/canary           { percent }
 *   POST   /plugins/NAME/promote | rollback
 *   GET    /clusters                      every cluster of the configuration in force, each endpoint's health
 *   GET    /functions                     every edge function: component sha256, source, instances
 *   PUT    /functions/NAME/component      swap a function's component (application/wasm body, x-module-signature)
 *   PATCH  /functions/NAME/canary         { percent }; POST /functions/NAME/promote | rollback
 *
 * Every call that changes something needs `Authorization: Bearer <token>` (admin.token, or the
 * variable admin.tokenEnv names); with no token configured, changes are off. Reads are open to
 * loopback clients and need the token from anywhere else. Answers are JSON: the plugin's report,
 * or `{ error: CODE, message }` with the error table's code (a refused module says why, with the
 * codes `validate` uses).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, isGatewayError } from '../errors.js';
import { parseCanaryRequest, parseConfiguration, parseModuleChange, parsePercent } from './changes.js';
import type { PluginControl } from './plugin-control.js';

/** Largest request body: a module, base64 in JSON at worst. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface PluginApiOptions {
  /** The bearer token in force, or null (changes off). Read per call: a reload may set it. */
  token(): string | null;
  readonly reads: AdminReads;
}

/** The reads of the admin API beside the plugins' (the same rule: open on loopback, the token from elsewhere). */
export interface AdminReads {
  /** GET /clusters: each cluster of the configuration in force and the health of its endpoints. */
  clusters(): unknown;
  /** The edge functions: GET /functions, and PUT /functions/NAME/component (absent: no functions). */
  readonly functions?: {
    list(): unknown;
    swap(name: string, bytes: Uint8Array, label: string, signature: string | null): Promise<unknown>;
    /** promote, rollback, or a new canary percent (0-100; 100 promotes). */
    canary(name: string, change: 'promote' | 'rollback' | number): unknown;
  };
}

/** One call of the plugin API, as HTTP gives it or as a box's primary forwards it to a worker. */
export interface AdminCall {
  readonly method: string;
  /** The path, without the query. */
  readonly path: string;
  readonly authorization?: string;
  readonly contentType?: string;
  /** x-module-signature, with an application/wasm body. */
  readonly signature?: string;
  /** The client is on loopback (reads need no token). */
  readonly loopback: boolean;
  readonly body: Uint8Array;
}

export interface AdminAnswer {
  readonly status: number;
  readonly body: unknown;
}

type Handler = (control: PluginControl, name: string, call: AdminCall) => Promise<unknown>;

function json(call: AdminCall): unknown {
  try {
    return JSON.parse(Buffer.from(call.body).toString('utf8'));
  } catch (err) {
    throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `the body is not JSON: ${(err as Error).message}`);
  }
}

const ACTIONS: Record<string, Partial<Record<string, Handler>>> = {
  module: {
    PUT: async (c, name, call) => (isWasm(call)
      ? c.swap(name, { bytes: new Uint8Array(call.body), signature: call.signature ?? null })
      : c.swap(name, parseModuleChange(json(call)))),
  },
  configuration: { PUT: async (c, name, call) => c.configure(name, parseConfiguration(json(call))) },
  enable: { POST: async (c, name) => c.enable(name, true) },
  disable: { POST: async (c, name) => c.enable(name, false) },
  canary: {
    POST: async (c, name, call) => c.canary(name, parseCanaryRequest(json(call))),
    PATCH: async (c, name, call) => c.setPercent(name, parsePercent(json(call))),
  },
  promote: { POST: async (c, name) => c.promote(name) },
  rollback: { POST: async (c, name) => c.rollback(name) },
};

function isWasm(call: AdminCall): boolean {
  return (call.contentType ?? '').split(';')[0].trim() === 'application/wasm';
}

/** The HTTP status of a refused change: the caller's mistake (4xx) or the gateway's (5xx). */
function statusOf(err: GatewayError): number {
  if (err.status < 500) return err.status;
  if (err.code === 'GW_ERR_CONFIG_INVALID') return 400;
  if (err.code === 'GW_ERR_MODULE_FETCH' || err.code === 'GW_ERR_MODULE_REGISTRY') return 502;
  if (err.code.startsWith('GW_ERR_MODULE_') || err.code.startsWith('GW_ERR_ABI_') || err.code.startsWith('GW_ERR_FUNCTION_')) return 422;
  return err.status;
}

function authorized(call: AdminCall, token: string | null): boolean {
  if (token === null) return false;
  const given = /^Bearer\s+(\S+)$/i.exec(call.authorization ?? '')?.[1];
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether `path` is the plugin API's (the admin server's own pages are the rest). */
export function isPluginPath(path: string): boolean {
  return path === '/plugins' || path.startsWith('/plugins/');
}

/** Whether `path` is the admin API's: the plugin API, GET /clusters and the functions API. */
export function isAdminApiPath(path: string): boolean {
  return isPluginPath(path) || path === '/clusters' || path.startsWith('/clusters/') || path === '/functions' || path.startsWith('/functions/');
}

/** GET /functions, PUT /functions/NAME/component: a swap builds the new component's pool beside the old one. */
async function functionCall(call: AdminCall, parts: string[], reads: AdminReads): Promise<unknown> {
  if (reads.functions === undefined) throw new GatewayError('GW_ERR_PLUGIN_UNKNOWN', 'this gateway runs no edge functions');
  if (call.method === 'GET' && parts.length === 1) return reads.functions.list();
  const name = parts.length === 3 ? decodeURIComponent(parts[1]!) : '';
  const action = `${call.method} ${parts[2] ?? ''}`;
  if (action === 'PUT component' && isWasm(call)) return reads.functions.swap(name, new Uint8Array(call.body), 'admin upload', call.signature ?? null);
  if (action === 'POST promote' || action === 'POST rollback') return reads.functions.canary(name, parts[2] as 'promote' | 'rollback');
  if (action === 'PATCH canary') return reads.functions.canary(name, parsePercent(json(call)));
  throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `${call.method} ${call.path}: use GET /functions, PUT /functions/NAME/component (application/wasm), PATCH /functions/NAME/canary { percent }, POST /functions/NAME/promote or …/rollback`);
}

/** Answers one call; never rejects for a GatewayError (it becomes `{ error: CODE, message }`). */
export async function pluginCall(control: PluginControl, call: AdminCall, token: string | null, reads: AdminReads): Promise<AdminAnswer> {
  const parts = call.path.split('/').filter((p) => p !== '');
  const reading = call.method === 'GET' || call.method === 'HEAD';
  try {
    if ((!reading || !call.loopback) && !authorized(call, token)) {
      throw new GatewayError('GW_ERR_ADMIN_UNAUTHORIZED', token === null
        ? 'changes through the admin API are off: set admin.token or the variable admin.tokenEnv names, and send it as "Authorization: Bearer <token>"'
        : 'this call needs "Authorization: Bearer <token>" with the admin token');
    }
    if (parts[0] === 'functions') return { status: 200, body: await functionCall(call, parts, reads) };
    if (parts[0] === 'clusters') {
      if (!reading || parts.length > 1) throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `${call.method} ${call.path}: /clusters is read only: GET /clusters`);
      return { status: 200, body: reads.clusters() };
    }
    const name = parts[1] === undefined ? undefined : decodeURIComponent(parts[1]);
    if (reading) {
      if (parts.length > 2) throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `GET ${call.path}: read /plugins or /plugins/NAME`);
      return { status: 200, body: name === undefined ? control.list() : control.get(name) };
    }
    const handler = parts.length === 3 ? ACTIONS[parts[2]]?.[call.method] : undefined;
    if (name === undefined || handler === undefined) {
      throw new GatewayError('GW_ERR_PLUGIN_CHANGE', `${call.method} ${call.path}: no such call; see the README section "Hot swap and canary"`);
    }
    return { status: 200, body: await handler(control, name, call) };
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    return { status: statusOf(err), body: { error: err.code, message: err.message } };
  }
}

/** The call an HTTP request makes (its body read, up to MAX_BODY_BYTES). */
export async function readCall(req: IncomingMessage): Promise<AdminCall> {
  const signature = req.headers['x-module-signature'];
  const address = req.socket.remoteAddress ?? '';
  return {
    method: req.method ?? 'GET',
    path: (req.url ?? '/').split('?')[0],
    authorization: req.headers.authorization,
    contentType: req.headers['content-type'],
    signature: typeof signature === 'string' ? signature : undefined,
    loopback: address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'),
    body: await readBody(req),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new GatewayError('GW_ERR_PLUGIN_CHANGE', `the body passes ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendAnswer(res: ServerResponse, answer: AdminAnswer): void {
  const body = `${JSON.stringify(answer.body, null, 2)}\n`;
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The admin server's route for the admin API: answers paths under /plugins and /clusters, returns false for the others. */
export function pluginApi(control: PluginControl, options: PluginApiOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    if (!isAdminApiPath((req.url ?? '/').split('?')[0])) return false;
    let call: AdminCall;
    try {
      call = await readCall(req);
    } catch (err) {
      if (!isGatewayError(err)) throw err;
      sendAnswer(res, { status: 413, body: { error: err.code, message: err.message } });
      return true;
    }
    sendAnswer(res, await pluginCall(control, call, options.token(), options.reads));
    return true;
  };
}
