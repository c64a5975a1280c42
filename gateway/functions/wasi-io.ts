/**
 * wasi:io 0.2 (error, poll, streams) for one function instance, as jco's generated bindings call
 * them: resources are classes, a `result` error is thrown as its payload (a plain object, never an
 * Error: jco treats a thrown Error as a trap), blocking calls block the calling thread.
 *
 * Why not preview2-shim's streams: its streams and pollables are tied to its own I/O worker and
 * file descriptors, and jco checks every borrowed resource with `instanceof` against the class
 * given as the import. The streams here sit over the gateway's request and response, so every
 * stream and pollable a function sees comes from this file.
 *
 * Blocking: a function runs in a worker thread (function-worker.ts). A pollable that is not ready
 * blocks through a `Blocker`, which parks the thread until the main thread answers or a deadline
 * passes (Atomics.wait), so nothing here spins.
 */

/** Parks the thread until a host message arrived or `untilMs` (performance.now()) passed. */
export interface Blocker {
  wait(untilMs: number | null): void;
}

/** wasi:io/error's `error` resource. */
export class IoError {
  constructor(private readonly message: string) {}
  toDebugString(): string {
    return this.message;
  }
}

/** A stream error as jco expects it thrown: `closed`, or `last-operation-failed` with its IoError. */
export const CLOSED = Object.freeze({ tag: 'closed' as const });
export function failed(message: string): { tag: 'last-operation-failed'; val: IoError } {
  return { tag: 'last-operation-failed', val: new IoError(message) };
}

/**
 * wasi:io/poll's `pollable`. `isReady` says whether a blocking call would return now; `deadline`
 * is the performance.now() time at which a timer becomes ready (null: it waits for the host).
 */
export class Pollable {
  constructor(private readonly isReady: () => boolean, private readonly blocker: Blocker,
    readonly deadline: number | null = null) {}

  ready(): boolean {
    return this.isReady();
  }

  block(): void {
    while (!this.isReady()) this.blocker.wait(this.deadline);
  }
}

const ALWAYS = (): boolean => true;

export function readyPollable(blocker: Blocker): Pollable {
  return new Pollable(ALWAYS, blocker);
}

/** wasi:io/poll's `poll`: the indices of the ready pollables, blocking until there is one. */
export function pollList(list: readonly Pollable[], blocker: Blocker): Uint32Array {
  if (list.length === 0) throw new Error('wasi:io/poll.poll: an empty list would block for ever');
  for (;;) {
    const ready: number[] = [];
    let next: number | null = null;
    list.forEach((p, i) => {
      if (p.ready()) ready.push(i);
      else if (p.deadline !== null) next = next === null ? p.deadline : Math.min(next, p.deadline);
    });
    if (ready.length > 0) return Uint32Array.from(ready);
    blocker.wait(next);
  }
}

/**
 * Where an input stream's bytes come from: `take` hands at most `max` of the `pending` bytes that
 * have arrived, `done` says no more will come, `failure` a reason it broke.
 */
export interface ByteSource {
  take(max: number): Uint8Array;
  readonly pending: number;
  readonly done: boolean;
  readonly failure: string | null;
}

/** A source over bytes that are all there: a buffered request or response body. */
export class BufferSource implements ByteSource {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}
  take(max: number): Uint8Array {
    const chunk = this.bytes.subarray(this.offset, this.offset + max);
    this.offset += chunk.length;
    return chunk;
  }
  get pending(): number {
    return this.bytes.length - this.offset;
  }
  get done(): boolean {
    return this.offset >= this.bytes.length;
  }
  readonly failure = null;
}

/** wasi:io/streams' `input-stream`. */
export class InputStream {
  constructor(private readonly source: ByteSource, private readonly blocker: Blocker) {}

  read(len: bigint): Uint8Array {
    const chunk = this.source.take(clampLength(len));
    if (chunk.length === 0 && len > 0n) this.check();
    return chunk;
  }

  blockingRead(len: bigint): Uint8Array {
    this.subscribe().block();
    return this.read(len);
  }

  skip(len: bigint): bigint {
    return BigInt(this.read(len).length);
  }

  blockingSkip(len: bigint): bigint {
    return BigInt(this.blockingRead(len).length);
  }

  subscribe(): Pollable {
    // Ready when bytes are there, or when a read would report the end or a failure.
    return new Pollable(() => this.peek(), this.blocker);
  }

  private peek(): boolean {
    const s = this.source;
    return s.pending > 0 || s.done || s.failure !== null;
  }

  private check(): void {
    if (this.source.failure !== null) throw failed(this.source.failure);
    if (this.source.done) throw CLOSED;
  }
}

/** Where an output stream's bytes go. `write` may throw a failure message as an Error. */
export interface ByteSink {
  write(bytes: Uint8Array): void;
  /** Bytes the sink still accepts (the body limit left); writes past it fail. */
  readonly capacity: number;
}

/** The most an output stream accepts in one write: a bound on each chunk the host copies. */
const WRITE_CHUNK = 64 * 1024;

/** wasi:io/streams' `output-stream`. */
export class OutputStream {
  private closed = false;
  constructor(private readonly sink: ByteSink, private readonly blocker: Blocker) {}

  checkWrite(): bigint {
    this.open();
    return BigInt(Math.min(WRITE_CHUNK, Math.max(0, this.sink.capacity)));
  }

  write(contents: Uint8Array): void {
    this.open();
    try {
      this.sink.write(contents);
    } catch (err) {
      this.closed = true;
      throw failed((err as Error).message);
    }
  }

  blockingWriteAndFlush(contents: Uint8Array): void {
    // The host takes bytes at once: a large write is split only to keep each copy bounded.
    for (let at = 0; at < contents.length || at === 0; at += WRITE_CHUNK) {
      this.write(contents.subarray(at, at + WRITE_CHUNK));
      if (contents.length === 0) break;
    }
  }

  flush(): void {
    this.open();
  }

  blockingFlush(): void {
    this.open();
  }

  subscribe(): Pollable {
    return readyPollable(this.blocker);
  }

  writeZeroes(len: bigint): void {
    this.write(new Uint8Array(clampLength(len)));
  }

  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }

  splice(src: InputStream, len: bigint): bigint {
    const chunk = src.read(len);
    this.write(chunk);
    return BigInt(chunk.length);
  }

  blockingSplice(src: InputStream, len: bigint): bigint {
    const chunk = src.blockingRead(len);
    this.write(chunk);
    return BigInt(chunk.length);
  }

  /** Ends the stream: later writes report `closed` (its body was finished). */
  close(): void {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw CLOSED;
  }
}

function clampLength(len: bigint): number {
  return Number(len > BigInt(WRITE_CHUNK) ? BigInt(WRITE_CHUNK) : len < 0n ? 0n : len);
}
