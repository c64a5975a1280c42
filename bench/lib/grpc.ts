/**
 * gRPC by hand over node:http2 for bench/grpc.ts, after test/helpers/grpc.ts (bench/ stands alone,
 * so the framing is copied, not imported): the 5-byte length prefix, the echo method's path and
 * request message, and a unary client call for the bench's checks. The load itself is h2load
 * (bench/lib/h2load.ts), which cannot read trailers, so the server counts what it answered.
 */
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';

/** The unary echo method of bench/lib/grpc-server.ts. */
export const ECHO_PATH = '/bench.v1.Echo/Echo';

/**
 * The request message, 64 bytes: a protobuf `{ 1: string, 2: int64 }` as a small unary call
 * carries. The server answers it with the same bytes, and any other message with status 3.
 */
export const ECHO_MESSAGE: Buffer = (() => {
  const text = Buffer.from('edge-gateway gRPC bench: one unary echo call, 64 B');
  const head = Buffer.from([0x0a, text.length]);
  const id = Buffer.from([0x10, 0xd2, 0x85, 0xd8, 0xcc, 0x04]); // field 2, varint 1234567890
  const body = Buffer.concat([head, text, id]);
  return Buffer.concat([body, Buffer.alloc(64 - body.length, 0x20)]);
})();

/** One gRPC message with its 5-byte prefix (not compressed). */
export function frame(message: Buffer): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** The messages of a whole body (length-prefixed); `null` when it does not split into whole ones. */
export function deframe(body: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let at = 0;
  while (body.length - at >= 5) {
    const len = body.readUInt32BE(at + 1);
    if (body.length - at < 5 + len) return null;
    out.push(body.subarray(at + 5, at + 5 + len));
    at += 5 + len;
  }
  return at === body.length ? out : null;
}

/** What a unary call got back. */
export interface UnaryAnswer {
  headers: IncomingHttpHeaders;
  /** The status came in the response headers, which ended the stream (trailers-only). */
  trailersOnly: boolean;
  messages: Buffer[] | null;
  /** grpc-status from the trailers (or the trailers-only head); -1 when there was none. */
  status: number;
}

/** An h2c session to `port` on loopback that ignores its own errors (the calls report theirs). */
export function h2Session(port: number): ClientHttp2Session {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  return session;
}

/** One unary echo call with `metadata`, bounded by 5 s. */
export function unaryCall(session: ClientHttp2Session, metadata: Record<string, string> = {}): Promise<UnaryAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': ECHO_PATH, 'content-type': 'application/grpc', te: 'trailers', ...metadata });
    const answer: UnaryAnswer = { headers: {}, trailersOnly: false, messages: null, status: -1 };
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), 5000);
    stream.on('response', (headers, flags) => {
      answer.headers = headers;
      answer.trailersOnly = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      if (answer.trailersOnly) answer.status = Number(headers['grpc-status'] ?? -1);
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('trailers', (t) => { answer.status = Number(t['grpc-status'] ?? -1); });
    stream.on('end', () => {
      clearTimeout(timer);
      answer.messages = deframe(Buffer.concat(chunks));
      resolve(answer);
    });
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.end(frame(ECHO_MESSAGE));
  });
}
