#!/usr/bin/env node
/**
 * The `edge-gateway` command. The only module that may exit the process.
 *
 *   edge-gateway start --config FILE [--demo-upstream PORT]
 *   edge-gateway validate --config FILE      exit 2 with every error when invalid
 *   edge-gateway --version | --help
 *
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration file (an invalid one
 * is rejected with its errors and the running configuration keeps serving).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from './config/load.js';
import { startDemoUpstream } from './demo-upstream.js';
import { Gateway } from './gateway.js';

const HELP = `edge-gateway: a Proxy-Wasm API gateway

Usage:
  edge-gateway start --config FILE [--demo-upstream PORT]
  edge-gateway validate --config FILE
  edge-gateway --version
  edge-gateway --help

Commands:
  start      run the gateway; SIGHUP reloads FILE, SIGTERM/SIGINT drain and stop
  validate   check FILE without starting anything (exit 2 with the errors)

Options:
  -c, --config FILE          configuration file (YAML or JSON)
      --demo-upstream PORT   also run the demo upstream on 127.0.0.1:PORT (quick start)
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function start(file: string, demoPort: number | undefined): Promise<void> {
  if (demoPort !== undefined) await startDemoUpstream(demoPort);
  const gateway = await Gateway.create(loadConfigFile(file));
  await gateway.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'draining');
    gateway.shutdown().then(() => process.exit(0), (err: Error) => {
      gateway.logger.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      const config = loadConfigFile(file);
      gateway.reload(config).catch((err: Error) => gateway.logger.error({ err: err.message }, `reload rejected, the running configuration keeps serving: ${err.message}`));
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      gateway.logger.error({ file, problems }, `reload rejected, the running configuration keeps serving: ${(err as Error).message}`);
    }
  });
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      'demo-upstream': { type: 'string' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help || command === undefined) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (values.config === undefined) {
    process.stderr.write(`edge-gateway ${command}: --config FILE is required\n`);
    return 2;
  }
  if (command === 'validate') {
    try {
      loadConfigFile(values.config);
      process.stdout.write(`${values.config}: valid\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
  }
  if (command === 'start') {
    await start(values.config, values['demo-upstream'] === undefined ? undefined : Number(values['demo-upstream']));
    return -1; // keeps running
  }
  process.stderr.write(`edge-gateway: unknown command "${command}"\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
}, (err: Error) => {
  process.stderr.write(`edge-gateway: ${err.message}\n`);
  process.exit(1);
});
