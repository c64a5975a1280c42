// Compiles AssemblyScript filters with asc in a worker thread, one job per message (see build.ts,
// which owns the flags). Plain JavaScript so that it runs as a worker under tsx, vitest or bare
// node alike. A job is { root, entry, flags }; the answer { ok, wasm, files, stderr } carries the
// binary and every source file asc read (relative to root) with its text, for the build cache.
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parentPort } from 'node:worker_threads';
import asc from 'assemblyscript/asc';

async function compile({ root, entry, flags }) {
  const files = {};
  let wasm = null;
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main([entry, ...flags, '--baseDir', root, '--outFile', 'out.wasm'], {
    stdout: asc.createMemoryStream(),
    stderr,
    async readFile(name, baseDir) {
      const file = join(baseDir, name);
      try {
        const text = await readFile(file, 'utf8');
        files[relative(root, file)] = text;
        return text;
      } catch {
        return null;
      }
    },
    writeFile(name, contents) {
      if (name.endsWith('out.wasm')) wasm = contents;
    },
    listFiles: () => null,
  });
  return { ok: !error && wasm !== null, wasm, files, stderr: stderr.toString() + (error ? String(error.message) : '') };
}

parentPort.on('message', async (job) => {
  try {
    parentPort.postMessage(await compile(job));
  } catch (err) {
    parentPort.postMessage({ ok: false, wasm: null, files: {}, stderr: String(err?.stack ?? err) });
  }
});
