/**
 * Runs `edge-gateway …` (gateway/cli.ts through tsx, or on the Node that EDGE_GATEWAY_TEST_NODE
 * names: gateway-command.ts) to completion, bounded, as a user would.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { GATEWAY_TIME_SCALE, gatewayCommand } from './gateway-command.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface CliExit { code: number | null; stdout: string; stderr: string }

/**
 * `env` is added to the test runner's environment (without its NODE_OPTIONS); `cwd` defaults to the
 * repository; `timeoutMs` (15 s) is multiplied by GATEWAY_TIME_SCALE.
 */
export function runCli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliExit> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  delete env.NODE_OPTIONS;
  return new Promise((resolve, reject) => {
    const [program, programArgs] = gatewayCommand();
    const child = spawn(program, [...programArgs, ...args], { cwd: options.cwd ?? ROOT, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString('utf8'); });
    const ms = (options.timeoutMs ?? 15_000) * GATEWAY_TIME_SCALE;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`edge-gateway ${args.join(' ')} did not exit in ${ms} ms`)); }, ms);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}
