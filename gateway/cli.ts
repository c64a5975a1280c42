#!/usr/bin/env node
/**
 * The `edge-gateway` command. The only module that may exit the process.
 *
 *   edge-gateway start --config FILE [--demo-upstream PORT]
 *   edge-gateway validate --config FILE      exit 2 with every error when invalid
 *   edge-gateway schema                      print the JSON Schema of the configuration file
 *   edge-gateway --version | --help
 *
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration file (an invalid one
 * is rejected with its errors and the running configuration keeps serving).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configJsonSchemaText } from './config/json-schema.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { startDemoUpstream } from './demo-upstream.js';
import type { GatewayError } from './errors.js';
import { Gateway } from './gateway.js';
import { linesWritten, stdoutDestination } from './log.js';

const HELP = `edge-gateway: a Proxy-Wasm API gateway

Usage:
  edge-gateway start --config FILE [--demo-upstream PORT]
  edge-gateway validate --config FILE
  edge-gateway schema
  edge-gateway --version
  edge-gateway --help

Commands:
  start      run the gateway; SIGHUP reloads FILE, SIGTERM/SIGINT drain and stop
  validate   check FILE without starting anything (exit 2 with the errors)
  schema     print the JSON Schema of the configuration file (config/gateway.schema.json)

Options:
  -c, --config FILE          configuration file (YAML or JSON)
      --demo-upstream PORT   also run the demo upstream on 127.0.0.1:PORT (quick start)
`;

/** package.json is one level up from gateway/cli.ts, two from dist/gateway/cli.js. */
function version(): string {
  const candidates = ['../package.json', '../../package.json'].map((p) => new URL(p, import.meta.url));
  for (const url of candidates) {
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'edge-gateway') return pkg.version;
    } catch {
      // not this one
    }
  }
  throw new Error('package.json of edge-gateway not found');
}

const REJECTED = 'reload rejected, the running configuration keeps serving';

/** SIGHUP: load and apply the file again; on any error the running configuration stays. */
async function reload(gateway: Gateway, file: string): Promise<void> {
  gateway.logger.info({ file }, 'reloading the configuration');
  try {
    await gateway.reload(loadConfigFile(file));
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    gateway.logger.error({ file, code: (err as GatewayError).code, problems }, `${REJECTED}: ${(err as Error).message}`);
  }
}

async function start(file: string, demoPort: number | undefined): Promise<void> {
  if (demoPort !== undefined) await startDemoUpstream(demoPort);
  const destination = stdoutDestination();
  const gateway = await Gateway.create(loadConfigFile(file), { logDestination: destination });
  // NB: the handlers go in before the listeners bind: whoever reads "edge-gateway started" may
  // signal at once, and a signal without a handler would kill the process.
  const started = gateway.start();
  let stopping = false;
  let reloads = Promise.resolve();
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'draining');
    // A reload still building is refused by the draining gateway and disposes of itself.
    started.catch(() => undefined).then(() => gateway.shutdown()).then(() => 0, (err: Error) => {
      gateway.logger.error({ err: err.message }, 'shutdown failed');
      return 1;
    }).then(async (code) => {
      await linesWritten(destination);
      process.exit(code);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // One reload at a time, in signal order; none once draining.
  process.on('SIGHUP', () => {
    if (!stopping) reloads = reloads.then(() => started).then(() => reload(gateway, file), () => undefined);
  });
  await started;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'demo-upstream': { type: 'string' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`edge-gateway: ${(err as Error).message}\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === undefined) {
    process.stderr.write(`edge-gateway: a command is required\n${HELP}`);
    return 2;
  }
  if (command !== 'start' && command !== 'validate' && command !== 'schema') {
    process.stderr.write(`edge-gateway: unknown command "${command}"\n${HELP}`);
    return 2;
  }
  if (command === 'schema') {
    process.stdout.write(configJsonSchemaText());
    return 0;
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
  const demo = values['demo-upstream'] === undefined ? undefined : Number(values['demo-upstream']);
  if (demo !== undefined && !(Number.isInteger(demo) && demo >= 0 && demo <= 65535)) {
    process.stderr.write(`edge-gateway start: --demo-upstream must be a port number, not "${values['demo-upstream']}"\n`);
    return 2;
  }
  await start(values.config, demo);
  return -1; // keeps running
}

// exitCode, not exit(): the process ends once stdout and stderr are flushed (pipes may be async).
main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code;
}, (err: Error) => {
  process.stderr.write(`edge-gateway: ${err.message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
