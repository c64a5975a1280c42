#!/usr/bin/env node
// Prints the imports (with signatures), exports and sections of build/*.wasm.
// Signatures need V8's type reflection, so this re-runs itself with the flag.
'use strict';
if (!process.execArgv.includes('--experimental-wasm-type-reflection')) {
  const r = require('child_process').spawnSync(process.execPath,
    ['--experimental-wasm-type-reflection', __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status);
}
const fs = require('fs');
const path = require('path');
const dir = path.resolve(__dirname, '..', 'build');
const files = process.argv.slice(2).length ? process.argv.slice(2)
  : ['headers', 'callout', 'local-reply'].map((n) => path.join(dir, `${n}.wasm`));

const sig = (t) => t ? `(${t.parameters.join(', ')}) -> ${t.results.length ? t.results.join(', ') : '()'}` : '';
// Section ids present, read from the binary (8 = start).
function sectionIds(buf) {
  const ids = [];
  let i = 8;
  const leb = () => { let r = 0, s = 0, b; do { b = buf[i++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return r >>> 0; };
  while (i < buf.length) { const id = buf[i++]; const len = leb(); ids.push(id); i += len; }
  return ids;
}
for (const file of files) {
  const buf = fs.readFileSync(file);
  const m = new WebAssembly.Module(buf);
  console.log(`== ${path.basename(file)}`);
  console.log('imports:');
  for (const im of WebAssembly.Module.imports(m)) console.log(`  ${im.module}.${im.name} ${im.kind} ${sig(im.type)}`);
  console.log('exports:');
  for (const ex of WebAssembly.Module.exports(m)) console.log(`  ${ex.name} ${ex.kind} ${ex.kind === 'function' ? sig(ex.type) : ''}`.trimEnd());
  const ids = sectionIds(buf);
  console.log(`start section: ${ids.includes(8) ? 'yes' : 'no'}`);
  console.log(`custom sections: ${WebAssembly.Module.customSections(m, 'name').length ? 'name' : '(none)'}`);
}
