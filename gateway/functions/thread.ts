/**
 * Starts a worker thread on a sibling file of this folder: the compiled .js next to it, or, when
 * the gateway runs from its TypeScript sources (the tests, tsx), the .ts through tsx's loader
 * registered inside the thread (a worker's `--import` does not reach its entry file on Node 20).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

const fromSources = import.meta.url.endsWith('.ts');

export function startThread(file: string, options: WorkerOptions): Worker {
  if (!fromSources) return new Worker(new URL(`./${file}.js`, import.meta.url), options);
  const target = JSON.stringify(new URL(`./${file}.ts`, import.meta.url).href);
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${target}); });`;
  return new Worker(boot, { ...options, eval: true });
}
