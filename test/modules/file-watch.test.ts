import { appendFileSync, closeSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { watchModuleFile, type FileWatchOptions, type ModuleFileWatch } from '../../gateway/modules/file-watch.js';
import { sha256Hex } from '../../gateway/modules/sha256.js';
import { eventually } from '../helpers/eventually.js';

const root = mkdtempSync(join(tmpdir(), 'file-watch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const watches: ModuleFileWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
});

const FAST: FileWatchOptions = { debounceMs: 60, settleMs: 40 };
/** Long enough for any check started by an earlier write to have finished (debounce + settle, thrice). */
const QUIET_MS = 3 * (60 + 40);

/**
 * A valid module: the 8-byte header and one custom section (id 0, size, name length, name,
 * payload). Different names give different modules; every prefix longer than 8 bytes and shorter
 * than the whole is invalid (the section runs past the end).
 */
function wasm(name: string, payloadBytes = 40): Uint8Array {
  const nameBytes = [...new TextEncoder().encode(name)];
  const section = [nameBytes.length, ...nameBytes, ...new Array<number>(payloadBytes).fill(0x2a)];
  if (section.length > 127) throw new Error('keep the section size a one-byte LEB128');
  return new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 0, section.length, ...section]);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh directory holding `m.wasm` with `initial` in it, watched with a recorder. */
function watched(initial: Uint8Array, options: FileWatchOptions = FAST): { file: string; changes: Uint8Array[]; shas: string[]; skips: string[]; watch: ModuleFileWatch } {
  const dir = mkdtempSync(join(root, 'case-'));
  const file = join(dir, 'm.wasm');
  writeFileSync(file, initial);
  const changes: Uint8Array[] = [];
  const shas: string[] = [];
  const skips: string[] = [];
  const watch = watchModuleFile(file, sha256Hex(initial), (bytes, sha) => {
    changes.push(bytes);
    shas.push(sha);
  }, (reason) => skips.push(reason), options);
  watches.push(watch);
  return { file, changes, shas, skips, watch };
}

describe('watching a module file', () => {
  it('delivers a rewritten file once, with its sha256', async () => {
    const w = watched(wasm('v1'));
    const v2 = wasm('v2');
    writeFileSync(w.file, v2);
    expect(await eventually(() => w.changes.length > 0)).toBe(true);
    await sleep(QUIET_MS);
    expect(w.changes).toEqual([v2]);
    expect(w.shas).toEqual([sha256Hex(v2)]);
    expect(w.skips).toEqual([]);
  });

  it('delivers a file replaced by a rename over it', async () => {
    const w = watched(wasm('v1'));
    const v2 = wasm('v2');
    writeFileSync(`${w.file}.tmp`, v2);
    renameSync(`${w.file}.tmp`, w.file);
    expect(await eventually(() => w.changes.length > 0)).toBe(true);
    await sleep(QUIET_MS);
    expect(w.changes).toEqual([v2]);
  });

  it('delivers a file written in two halves with a pause shorter than the debounce once, whole', async () => {
    const w = watched(wasm('v1'), { debounceMs: 150, settleMs: 40 });
    const v2 = wasm('v2', 100);
    const fd = openSync(w.file, 'w');
    writeSync(fd, v2.subarray(0, 50));
    await sleep(20);
    writeSync(fd, v2.subarray(50));
    closeSync(fd);
    expect(await eventually(() => w.changes.length > 0)).toBe(true);
    await sleep(3 * (150 + 40));
    expect(w.changes).toEqual([v2]);
    expect(w.skips).toEqual([]);
  });

  it('reads a file that keeps growing in pauses longer than the debounce only once it holds still', async () => {
    // Each pause outlasts the debounce, so only the settle (two stats 150 ms apart) sees the writer.
    const w = watched(wasm('v1'), { debounceMs: 20, settleMs: 150 });
    const v2 = wasm('v2', 100);
    writeFileSync(w.file, v2.subarray(0, 14));
    for (let at = 14; at < v2.byteLength; at += 14) {
      await sleep(50);
      appendFileSync(w.file, v2.subarray(at, at + 14));
    }
    expect(await eventually(() => w.changes.length > 0)).toBe(true);
    await sleep(3 * (20 + 150));
    expect(w.skips).toEqual([]);
    expect(w.changes).toEqual([v2]);
  });

  it('skips a file left half written and delivers the complete write that follows', async () => {
    const w = watched(wasm('v1'));
    const v2 = wasm('v2');
    writeFileSync(w.file, v2.subarray(0, v2.byteLength - 5));
    expect(await eventually(() => w.skips.length > 0)).toBe(true);
    expect(w.skips[0]).toBe(`module file ${w.file} is not a valid module (${v2.byteLength - 5} bytes, perhaps half written); waiting for the next change`);
    expect(w.changes).toEqual([]);
    writeFileSync(w.file, v2);
    expect(await eventually(() => w.changes.length > 0)).toBe(true);
    await sleep(QUIET_MS);
    expect(w.changes).toEqual([v2]);
  });

  it('does not deliver bytes equal to the initial ones or to the last delivered', async () => {
    const v1 = wasm('v1');
    const w = watched(v1);
    writeFileSync(w.file, v1);
    await sleep(QUIET_MS);
    const v2 = wasm('v2');
    writeFileSync(w.file, v2);
    expect(await eventually(() => w.changes.length > 0)).toBe(true);
    writeFileSync(w.file, v2);
    await sleep(QUIET_MS);
    const v3 = wasm('v3');
    writeFileSync(w.file, v3);
    expect(await eventually(() => w.changes.length > 1)).toBe(true);
    await sleep(QUIET_MS);
    expect(w.changes).toEqual([v2, v3]);
    expect(w.skips).toEqual([]);
  });

  it('ignores other files in the same directory', async () => {
    const w = watched(wasm('v1'));
    writeFileSync(join(w.file, '..', 'other.wasm'), wasm('other'));
    await sleep(QUIET_MS);
    expect(w.changes).toEqual([]);
    expect(w.skips).toEqual([]);
  });

  it('makes no callback after close, neither for a pending change nor for a check in flight', async () => {
    const pending = watched(wasm('v1'));
    writeFileSync(pending.file, wasm('v2'));
    await sleep(10);
    pending.watch.close();
    // Closed during the settle: the debounce fired at 60 ms, the second stat is due at 260 ms.
    const inFlight = watched(wasm('v1'), { debounceMs: 60, settleMs: 200 });
    writeFileSync(inFlight.file, wasm('v2'));
    await sleep(160);
    inFlight.watch.close();
    inFlight.watch.close();
    await sleep(400);
    expect([pending.changes, pending.skips, inFlight.changes, inFlight.skips]).toEqual([[], [], [], []]);
  });

  it('refuses to watch a file whose directory does not exist, naming it', () => {
    const file = join(root, 'missing', 'm.wasm');
    expect(() => watchModuleFile(file, null, () => {}, () => {})).toThrow(expect.objectContaining({ code: 'GW_ERR_MODULE_READ', message: expect.stringMatching(new RegExp(`^cannot watch module file ${file}: ENOENT`)) }));
  });
});
