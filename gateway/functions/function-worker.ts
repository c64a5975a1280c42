/**
 * A function's worker thread: holds one instance of the component at a time and serves one
 * request on it. Instances are made here, between requests, so a request takes a ready one.
 *
 * Why a thread: a guest's outgoing request blocks inside the guest call (wasi:io/poll has no
 * async form in Node 20's WebAssembly), while the answer comes from the main thread's cluster
 * pools. The thread parks on Atomics.wait until the main thread answers (messages.ts). It also
 * lets the main thread stop a guest that loops or overruns its time, by terminating the thread.
 *
 * After a request that ended cleanly the instance is put back to its state right after start-up
 * (`reuse: snapshot`, instance-snapshot.ts), kept as it is (`keep`), or replaced (`fresh`, and
 * after any request that failed).
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { CallAnswer, FromWorker, ToWorker, WireRequest, WorkerSetup } from './messages.js';
import { httpInterfaces, type PendingCall } from './wasi-http.js';
import { wasiImports } from './wasi-imports.js';
import type { Blocker } from './wasi-io.js';
import { InstanceSnapshot } from './instance-snapshot.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const signal = new Int32Array(setup.signal);
const pending = new Map<number, PendingCall>();
let nextCall = 1;
/** Outgoing requests one request may have in flight, and log lines it may write. */
const MAX_OUTGOING = 64;
const MAX_LOG_LINES = 100;
let logLines = 0;
/** The request being served (0: none). */
let current = 0;

/** While the thread warms up (warmUp), what the guest says goes nowhere. */
let warming = false;
const post = (message: FromWorker): void => {
  if (!warming || message.type === 'broken') port.postMessage(message);
};

function deliver(): boolean {
  let any = false;
  for (let m = receiveMessageOnPort(setup.calls); m !== undefined; m = receiveMessageOnPort(setup.calls)) {
    const answer = m.message as CallAnswer;
    const call = pending.get(answer.call);
    if (call === undefined) continue;
    pending.delete(answer.call);
    call.answer = answer;
    any = true;
  }
  return any;
}

/**
 * Response bytes not yet posted: chunks written in one stretch of guest code go as one message,
 * and the last ones with the end, so a client never sees all the bytes before the end is known.
 * They go out whenever the guest blocks (a write followed by a wait is a stream) or past 64 KiB.
 */
let held: Uint8Array[] = [];
let heldBytes = 0;
const HOLD_BYTES = 64 * 1024;

function takeHeld(): Uint8Array | null {
  if (heldBytes === 0) return null;
  const chunk = held.length === 1 ? held[0]! : new Uint8Array(Buffer.concat(held));
  held = [];
  heldBytes = 0;
  return chunk;
}

/** The response head, held back with the first bytes: a guest that fails before any goes out gets a clean 503. */
let heldHead: { status: number; headers: string[] } | null = null;

function flushHead(): void {
  if (heldHead === null) return;
  post({ type: 'head', id: current, ...heldHead });
  heldHead = null;
}

function flushHeld(): void {
  flushHead();
  const chunk = takeHeld();
  if (chunk !== null && !warming) port.postMessage({ type: 'data', id: current, chunk }, [chunk.buffer as ArrayBuffer]);
}

/** What a failed request had not sent yet: it goes nowhere. */
function dropHeld(): void {
  heldHead = null;
  held = [];
  heldBytes = 0;
}

const blocker: Blocker = {
  wait(untilMs: number | null): void {
    flushHeld();
    const seen = Atomics.load(signal, 0);
    if (deliver()) return;
    const timeout = untilMs === null ? Infinity : Math.max(0, untilMs - performance.now());
    Atomics.wait(signal, 0, seen, timeout);
    deliver();
  },
};

let ended = false;
const http = httpInterfaces({
  blocker,
  bodyLimit: setup.bodyLimit,
  allowedHosts: new Set(setup.allowedHosts),
  respond: (status, headers) => { heldHead = { status, headers }; },
  data: (chunk) => {
    if (chunk.length === 0) return;
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= HOLD_BYTES) flushHeld();
  },
  end: (trailers) => {
    ended = true;
    flushHead();
    const chunk = takeHeld();
    if (!warming) port.postMessage({ type: 'end', id: current, trailers, chunk }, chunk === null ? [] : [chunk.buffer as ArrayBuffer]);
  },
  fail: (message) => { ended = true; dropHeld(); post({ type: 'fail', id: current, message }); },
  fetch(request: WireRequest, timeoutMs: number | null): PendingCall {
    if (warming) return { answer: { call: 0, ok: false, code: 'HTTP-request-denied', message: 'no outgoing requests while the thread warms up' } };
    // A guest fanning out in a loop gets refusals past this many in flight, not a flood of callouts.
    if (pending.size >= MAX_OUTGOING) return { answer: { call: 0, ok: false, code: 'connection-limit-reached', message: `over ${MAX_OUTGOING} outgoing requests in flight` } };
    const call = { answer: null };
    const id = nextCall++;
    pending.set(id, call);
    post({ type: 'fetch', id: current, call: id, request, timeoutMs });
    return call;
  },
});

const { instantiate } = await import(setup.glueUrl) as {
  instantiate(getCoreModule: (name: string) => WebAssembly.Module, imports: Record<string, unknown>, instantiateCore?: never): Record<string, unknown>;
};
const imports = wasiImports({
  blocker,
  environment: setup.environment,
  http,
  log: (stream, text) => {
    // A guest printing in a loop must not flood the log: a bounded number of lines per request.
    if (++logLines <= MAX_LOG_LINES) post({ type: 'log', stream, text });
    else if (logLines === MAX_LOG_LINES + 1) post({ type: 'log', stream, text: `… further output of this request dropped (over ${MAX_LOG_LINES} lines)` });
  },
}, setup.imports);

type Handler = { handle(request: unknown, outparam: unknown): void };
let handler: Handler | null = null;

function handlerOf(exports: Record<string, unknown>): Handler {
  const key = Object.keys(exports).find((k) => k === 'incomingHandler' || k.startsWith('wasi:http/incoming-handler'));
  if (key === undefined) throw new Error('the component does not export wasi:http/incoming-handler');
  return exports[key] as Handler;
}

const state = new InstanceSnapshot();

/** Makes a new instance; false when it could not be made (the worker then says `broken`). */
function instantiateNew(): boolean {
  try {
    state.clear();
    handler = handlerOf(instantiate((name) => setup.modules[name]!, imports, state.instantiateCore as never));
    if (setup.reuse === 'snapshot') state.capture();
    return true;
  } catch (err) {
    post({ type: 'broken', message: (err as Error).message ?? String(err) });
    handler = null;
    return false;
  }
}

function fresh(): void {
  const started = performance.now();
  if (!instantiateNew()) return;
  post({ type: 'ready', ms: performance.now() - started, reused: false });
}

/**
 * The thread's first instance serves one request of its own first, unseen (its output, logs and
 * outgoing requests go nowhere): jco's bindings run cold the first time (~100 ms), and a snapshot
 * puts the instance back as it was, so the first real request finds them warm.
 */
function warmUp(): void {
  const started = performance.now();
  if (!instantiateNew()) return;
  if (setup.reuse === 'snapshot') {
    warming = true;
    const clean = serveOnce(0, { method: 'GET', scheme: 'http', authority: 'localhost', pathWithQuery: '/', headers: [], body: new Uint8Array(0) });
    warming = false;
    if (clean) state.restore();
    else if (!instantiateNew()) return;
  }
  post({ type: 'ready', ms: performance.now() - started, reused: false });
}

/** Runs one request on the instance; true when it ended cleanly (the instance may be used again). */
function serveOnce(id: number, request: WireRequest): boolean {
  current = id;
  ended = false;
  logLines = 0;
  const { request: incoming, outparam } = http.incoming(request);
  let clean = false;
  try {
    handler!.handle(incoming, outparam);
    if (!outparam.used) post({ type: 'fail', id, message: 'the function returned without a response' });
    else if (!ended) {
      dropHeld();
      post({ type: 'fail', id, message: 'the function returned before it finished its response body' });
    }
    else clean = true;
  } catch (err) {
    dropHeld();
    if (!ended) post({ type: 'fail', id, message: (err as Error).message ?? String(err) });
  }
  pending.clear();
  current = 0;
  return clean;
}

function serve(id: number, request: WireRequest): void {
  const clean = serveOnce(id, request);
  if (clean && setup.reuse === 'keep') {
    post({ type: 'done', id, reused: true });
    post({ type: 'ready', ms: 0, reused: true });
  } else if (clean && setup.reuse === 'snapshot') {
    post({ type: 'done', id, reused: false });
    const started = performance.now();
    state.restore();
    post({ type: 'ready', ms: performance.now() - started, reused: false });
  } else {
    post({ type: 'done', id, reused: false });
    fresh();
  }
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'request') serve(message.id, message.request);
});

warmUp();
