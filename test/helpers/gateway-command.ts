/**
 * The command that runs `edge-gateway` in the tests' child processes (GatewayProcess, runCli).
 *
 * By default: this Node (`process.execPath`) running gateway/cli.ts through tsx, as a developer
 * does. When EDGE_GATEWAY_TEST_NODE is set, it is a command prefix, split on whitespace, that
 * runs the built dist/gateway/cli.js instead: the test lanes (test/lanes/run.ts) set it to
 * `qemu-aarch64-static -L / /abs/path/arm64/node` so that the gateway runs on an arm64 Node,
 * where tsx (its esbuild is an x64 binary) cannot.
 *
 *   const [file, args] = gatewayCommand(['--expose-gc']);
 *   spawn(file, [...args, 'start', '--config', config]);
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** tsx's ESM loader, found through its package exports. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const ROOT = join(import.meta.dirname, '..', '..');

/**
 * How many times slower than usual the gateway's Node runs (EDGE_GATEWAY_TEST_TIME_SCALE, default
 * 1; the arm64 lane runs it under emulation): the helpers' bounded waits on a gateway child are
 * multiplied by it.
 */
export const GATEWAY_TIME_SCALE = timeScale(process.env.EDGE_GATEWAY_TEST_TIME_SCALE);

/** EDGE_GATEWAY_TEST_TIME_SCALE's text as a number: 1 when unset or blank, else at least 1. */
export function timeScale(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 1;
  const scale = Number(text);
  if (!Number.isFinite(scale) || scale < 1) throw new Error(`EDGE_GATEWAY_TEST_TIME_SCALE must be a number >= 1, not "${text}"`);
  return scale;
}

/** The program and the arguments before the CLI's own (`nodeArgs` go to Node, e.g. --expose-gc). */
export function gatewayCommand(nodeArgs: readonly string[] = [], prefix = process.env.EDGE_GATEWAY_TEST_NODE): [string, string[]] {
  if (prefix === undefined || prefix.trim() === '') return [process.execPath, [...nodeArgs, '--import', TSX, join(ROOT, 'gateway/cli.ts')]];
  const [program, ...programArgs] = prefix.trim().split(/\s+/);
  return [program, [...programArgs, ...nodeArgs, join(ROOT, 'dist/gateway/cli.js')]];
}
