/**
 * Builds every filter into filters/dist/<name>.wasm. Examples written in WAT are assembled with
 * wabt; nothing else is needed on the machine.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import wabtInit from 'wabt';

const here = import.meta.dirname;
const out = join(here, 'dist');
mkdirSync(out, { recursive: true });

const wabt = await wabtInit();
for (const file of readdirSync(join(here, 'examples')).filter((f) => f.endsWith('.wat'))) {
  const source = join(here, 'examples', file);
  const parsed = wabt.parseWat(source, readFileSync(source, 'utf8'), { bulk_memory: true });
  parsed.validate();
  const target = join(out, `${basename(file, '.wat')}.wasm`);
  writeFileSync(target, parsed.toBinary({ write_debug_names: true }).buffer);
  parsed.destroy();
  console.log(`built ${target}`);
}
