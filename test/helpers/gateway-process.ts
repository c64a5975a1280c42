/**
 * A real `edge-gateway start` in a child process (through tsx, as the CLI tests run it, or on the
 * Node that EDGE_GATEWAY_TEST_NODE names: gateway-command.ts): its JSON log lines, its addresses,
 * whether it is still alive, and a bounded wait on a log line. For tests whose point is that the
 * process survives (an exception in the data plane would end the child, not the test runner).
 *
 *   const gw = await GatewayProcess.start(writeConfigFile(doc));
 *   expect(gw.alive()).toBe(true);
 *   await gw.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GATEWAY_TIME_SCALE, gatewayCommand } from './gateway-command.js';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'edge-gw-proc-'));
let counter = 0;

export type LogLine = Record<string, unknown> & { msg: string };

/** Writes a configuration document (JSON is YAML) with 127.0.0.1:0 listener and admin defaults. */
export function writeConfigFile(doc: Record<string, unknown>): string {
  const file = join(dir, `gateway-${counter++}.yaml`);
  writeFileSync(file, JSON.stringify({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    admin: { address: '127.0.0.1', port: 0 },
    ...doc,
  }, null, 2));
  return file;
}

export class GatewayProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  url = '';
  adminUrl = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private partial = '';

  private constructor(config: string, nodeArgs: readonly string[], args: readonly string[] = []) {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const [program, programArgs] = gatewayCommand(nodeArgs);
    this.child = spawn(program, [...programArgs, 'start', '--config', config, ...args], { cwd: ROOT, env });
    this.child.stdout!.on('data', (c: Buffer) => {
      const parts = (this.partial + c.toString('utf8')).split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) if (line.trim() !== '') this.lines.push(JSON.parse(line) as LogLine);
    });
    this.child.stderr!.on('data', (c: Buffer) => { this.stderr += c.toString('utf8'); });
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** Spawns the gateway (`nodeArgs` go before the CLI, e.g. --expose-gc) without waiting for it. */
  static launch(config: string, nodeArgs: readonly string[] = []): GatewayProcess {
    return new GatewayProcess(config, nodeArgs);
  }

  /** Starts the gateway (`args` after `start --config FILE`) and waits (bounded) for its "edge-gateway started" line. */
  static async start(config: string, nodeArgs: readonly string[] = [], args: readonly string[] = []): Promise<GatewayProcess> {
    const gw = new GatewayProcess(config, nodeArgs, args);
    try {
      await gw.started();
    } catch (err) {
      await gw.stop();
      throw err;
    }
    return gw;
  }

  /** Waits (bounded) for the "edge-gateway started" line and reads the bound addresses from it. */
  async started(timeoutMs = 20_000): Promise<this> {
    const line = await this.waitFor((l) => l.msg === 'edge-gateway started', 'edge-gateway started', timeoutMs);
    const listeners = line.listeners as Record<string, string>;
    this.url = `http://127.0.0.1:${listeners.public.split(':').pop()}`;
    this.adminUrl = `http://127.0.0.1:${String(line.admin).split(':').pop()}`;
    return this;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends `signal` to the child (its own pid), e.g. SIGHUP for a reload. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line matching `pred`, polling every 5 ms for up to `timeoutMs` (times GATEWAY_TIME_SCALE). */
  async waitFor(pred: (line: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs * GATEWAY_TIME_SCALE;
    for (;;) {
      const found = this.lines.find(pred);
      if (found !== undefined) return found;
      if (!this.alive() || Date.now() > deadline) {
        throw new Error(`no log line "${what}" (exit ${this.child.exitCode} ${this.child.signalCode}); stderr: ${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Kills the child (by its own pid) if it still runs, and waits for it to be gone. */
  async stop(): Promise<void> {
    if (this.alive()) this.child.kill('SIGKILL');
    await this.exited;
  }
}
