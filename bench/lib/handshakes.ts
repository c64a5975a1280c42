/**
 * The load generator of the handshake row of bench/transport.ts, in a process of its own (pinned
 * to the other core by the parent). It takes one JSON argument
 * ({ port, parallel, warmupS, durationS, headers }) and runs `parallel` loops, each of which, over
 * and over: opens a TCP connection, makes a full TLS handshake (no session offered, so none is
 * resumed; ALPN http/1.1 only), sends one GET / with the browser-like headers and
 * `connection: close`, reads the answer until the server closes, and starts again.
 *
 * Like bench/lib/load.ts it prints `{"phase":"measure"}` when the measured window starts, then
 * one JSON line: the connections completed in the window (each a handshake and a 200), their
 * rate, p50/p99 of connect → closed, and the failures (in any phase). The certificate is not verified here (the
 * bench's checks verify it); what the proxy does is the same either way.
 */
import { connect } from 'node:tls';

interface Spec {
  port: number;
  parallel: number;
  warmupS: number;
  durationS: number;
  headers: Record<string, string>;
}

export interface HandshakeResult {
  handshakes: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError: string;
}

const spec = JSON.parse(process.argv[2]) as Spec;
const head = Object.entries(spec.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nhost: localhost\r\n${head}connection: close\r\n\r\n`, 'latin1');

/** One connection: resolves when the server has answered 200 and closed. Bounded at 5 s. */
function once(): Promise<void> {
  return new Promise((resolve, reject) => {
    let status = '';
    let bytes = 0;
    const socket = connect({ host: '127.0.0.1', port: spec.port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] },
      () => socket.write(REQUEST));
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (chunk: Buffer) => {
      if (status.length < 12) status += chunk.toString('latin1', 0, 12 - status.length);
      bytes += chunk.length;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (status === 'HTTP/1.1 200' && bytes > 1024) resolve();
      else reject(new Error(`answered "${status}" with ${bytes} bytes`));
    });
  });
}

const measureAt = performance.now() + spec.warmupS * 1000;
const endAt = measureAt + spec.durationS * 1000;
/** connect → closed of the connections that ended inside the measured window, ms. */
const samples: number[] = [];
let errors = 0;
let firstError = '';

async function loop(): Promise<void> {
  while (performance.now() < endAt) {
    const start = performance.now();
    try {
      await once();
      const end = performance.now();
      if (end >= measureAt && end <= endAt) samples.push(end - start);
    } catch (err) {
      errors++;
      firstError ||= (err as Error).message;
    }
  }
}

// The window is fixed in time, as the parent reads the proxy's CPU at these two lines: the rate
// is the connections that ended inside it (those in flight at either edge are a wash).
setTimeout(() => process.stdout.write(`${JSON.stringify({ phase: 'measure' })}\n`), spec.warmupS * 1000);
setTimeout(() => {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]);
  const result: HandshakeResult = {
    handshakes: samples.length, perSec: samples.length / spec.durationS, p50Ms: at(0.5), p99Ms: at(0.99), errors, firstError,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}, (spec.warmupS + spec.durationS) * 1000);
await Promise.all(Array.from({ length: spec.parallel }, loop));
