#!/usr/bin/env node
// Builds assembly/<name>.ts into build/<name>.wasm (+ .wat for reading) with the
// pinned assemblyscript@0.17.14 from this folder's node_modules. Offline and
// deterministic: same sources + same lockfile => byte-identical .wasm files.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const asc = path.join(root, 'node_modules', 'assemblyscript', 'bin', 'asc');
const filters = ['headers', 'callout', 'local-reply'];

fs.mkdirSync(path.join(root, 'build'), { recursive: true });
for (const name of filters) {
  execFileSync(process.execPath, [
    asc, `assembly/${name}.ts`,
    '--binaryFile', `build/${name}.wasm`,
    '--textFile', `build/${name}.wat`,
    // required by the SDK: `throw`/abort logs at critical and calls wasi_unstable.proc_exit(255)
    '--use', 'abort=abort_proc_exit',
    // -O (= -O3s) optimises; --debug keeps the "name" custom section.
    '--optimize',
    '--debug',
  ], { cwd: root, stdio: 'inherit' });
  const size = fs.statSync(path.join(root, 'build', `${name}.wasm`)).size;
  console.log(`build/${name}.wasm ${size} bytes`);
}
