#!/usr/bin/env node
/**
 * The `edge-gateway` command. The only module that may exit the process.
 *
 *   edge-gateway start --config FILE [--node-id ID] [--workers N|auto] [--demo-upstream PORT]
 *   edge-gateway validate --config FILE      build everything start builds, bind nothing; exit 2 with every error
 *   edge-gateway schema                      print the JSON Schema of the configuration file
 *   edge-gateway plugins|swap|canary|promote|rollback|push|keygen|sign …   live plugins (cli-plugins.ts)
 *   edge-gateway --version | --help
 *
 * Exit codes: 0 valid / stopped cleanly; 2 usage errors and a configuration that cannot run
 * (invalid fields, and every module or plugin that fails to load or start, listed together); 1 a
 * runtime failure (a port in use, an unexpected error).
 *
 * Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration file (an invalid one
 * is rejected with its errors and the running configuration keeps serving).
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { configJsonSchemaText } from './config/json-schema.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import type { GatewayConfig } from './config/schema.js';
import { PLUGIN_COMMANDS, PLUGIN_HELP, pluginCommand } from './cli-plugins.js';
import { isGatewayError, type GatewayError } from './errors.js';
// NB: the gateway, its workers and the demo upstream are imported when a command needs them, so
// that the plugin commands (cli-plugins.ts) start in a fraction of the time.
import type { Gateway, ValidationSummary } from './gateway.js';
import { createLogger, linesWritten, logFatal, stdoutDestination } from './log.js';
import { VERSION } from './version.js';
import type { PluginsError } from './proxy/generation.js';

/** A PluginsError (proxy/generation.ts), known by name: the class is not loaded for every command. */
function isPluginsError(err: unknown): err is PluginsError {
  return err instanceof Error && err.name === 'PluginsError';
}

const HELP = `edge-gateway: a Proxy-Wasm API gateway

Usage:
  edge-gateway start --config FILE [--node-id ID] [--workers N|auto] [--demo-upstream PORT]
  edge-gateway validate --config FILE
  edge-gateway schema
  edge-gateway demo-upstream [--port PORT] [--address ADDRESS]
  edge-gateway --version
  edge-gateway --help

Commands:
  start      run the gateway; SIGHUP reloads FILE, SIGTERM/SIGINT drain and stop
  validate   build everything start builds (modules, pins, plugins, services) without
             binding a port; exit 2 with every error, 0 with a one-line summary
  schema     print the JSON Schema of the configuration file (config/gateway.schema.json)
  demo-upstream
             run only the demo upstream (it echoes each request as JSON) on ADDRESS:PORT
             (default 127.0.0.1:9000), as the compose file's upstream service does

Options:
  -c, --config FILE          configuration file (YAML or JSON)
      --node-id ID           this node's node.id, over the file's (Envoy's --service-node): nodes
                             sharing one file and one Redis need distinct ids (rate-limit counts per node)
      --workers N|auto       processes serving the listeners, over the file's workers (auto: one
                             per core); the primary keeps the admin listener and the signals
      --demo-upstream PORT   also run the demo upstream on 127.0.0.1:PORT (quick start)
${PLUGIN_HELP}`;

const REJECTED = 'reload rejected, the running configuration keeps serving';

/**
 * Plugin failures reported as configuration errors are: one `file: plugins[i] (name): CODE: …`
 * line each, under the same heading, so `validate`, `start` and SIGHUP say the same thing. A
 * setting the schema reserves but this version lacks (its message starts with the field) too.
 */
function asConfigError(file: string, err: unknown): unknown {
  if (isPluginsError(err)) return new ConfigError(file, err.problems);
  if (isGatewayError(err, 'GW_ERR_CONFIG_UNSUPPORTED') || isGatewayError(err, 'GW_ERR_TLS_CERTIFICATE')) {
    // `field: what`, told as `field: CODE: what` like the plugin lines.
    const at = err.message.indexOf(': ');
    return new ConfigError(file, [`${err.message.slice(0, at)}: ${err.code}${err.message.slice(at)}`], err.code);
  }
  return err;
}

/** Builds `file` as start does (modules, plugins, services), without listening, then disposes it. */
async function validate(file: string): Promise<number> {
  let summary: ValidationSummary;
  try {
    const config = loadConfigFile(file);
    // Silent: every failure carries what the guest said; guest chatter would bury the report.
    const logger = createLogger(config.log.level);
    logger.level = 'silent';
    const { Gateway } = await import('./gateway.js');
    summary = await Gateway.validate(config, { logger });
  } catch (err) {
    const reported = asConfigError(file, err);
    if (!(reported instanceof ConfigError)) throw err;
    process.stderr.write(`${reported.message}\n`);
    return 2;
  }
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  const services = summary.services === 0 ? '' : summary.services === 1 ? ' (1 as a service)' : ` (${summary.services} as services)`;
  const unused = summary.unused > 0 ? `, ${count(summary.unused, 'unused plugin')} not loaded` : '';
  const functions = summary.functions === 0 ? '' : `, ${count(summary.functions, 'function')} started`;
  process.stdout.write(`${file}: valid: ${count(summary.plugins, 'plugin')} started${services}${functions}, ${count(summary.routes, 'route')}${unused}\n`);
  return 0;
}

/** The configuration in `file`, with `nodeId` (--node-id) as node.id when given. */
function loadFor(file: string, nodeId: string | undefined): GatewayConfig {
  const config = loadConfigFile(file);
  return nodeId === undefined ? config : { ...config, node: { ...config.node, id: nodeId } };
}

/** A worker's own node id: per-node state (rate-limit's entries, a queue's consumer) is never shared by two processes. */
function forWorker(config: GatewayConfig, worker: number | null): GatewayConfig {
  return worker === null ? config : { ...config, node: { ...config.node, id: `${config.node.id}-${worker}` } };
}

/** SIGHUP: load and apply the file again; on any error the running configuration stays. */
async function reload(gateway: Gateway, file: string, load: () => GatewayConfig): Promise<void> {
  gateway.logger.info({ file }, 'reloading the configuration');
  try {
    await gateway.reload(load());
  } catch (err) {
    const problems = err instanceof ConfigError || isPluginsError(err) ? err.problems : [(err as Error).message];
    gateway.logger.error({ file, code: (err as GatewayError).code, problems }, `${REJECTED}: ${(err as Error).message}`);
  }
}

async function start(file: string, demoPort: number | undefined, nodeId: string | undefined, workers: Workers | undefined): Promise<void> {
  const [{ Gateway }, { announceWorker, boxLink, workerIndex }, { startDemoUpstream }] = await Promise.all([
    import('./gateway.js'), import('./workers/worker.js'), import('./demo-upstream.js'),
  ]);
  const worker = workerIndex();
  const destination = stdoutDestination();
  const load = (): GatewayConfig => forWorker(loadFor(file, nodeId), worker);
  const config = load();
  const count = worker === null ? workerCount(workers ?? config.workers) : 1;
  if (count > 1) {
    if (demoPort !== undefined) await startDemoUpstream(demoPort);
    // Loaded only for a box: a single process never needs the primary's code.
    const { runPrimary } = await import('./workers/primary.js');
    const box = await runPrimary(config, count, createLogger(config.log.level, destination));
    const code = await box.stopped;
    await linesWritten(destination);
    process.exit(code);
  }
  if (demoPort !== undefined && worker === null) await startDemoUpstream(demoPort);
  const options = worker === null ? {} : { worker: { box: config.sharedState.backend === 'memory' ? boxLink(config.node.id) : undefined } };
  // The lines logged so far go out before the fatal line main() writes (logFatal is synchronous).
  const gateway = await Gateway.create(config, { logDestination: destination, ...options }).catch(async (err: unknown) => {
    await linesWritten(destination);
    throw asConfigError(file, err);
  });
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
    if (!stopping) reloads = reloads.then(() => started).then(() => reload(gateway, file, load), () => undefined);
  });
  const bound = await started.catch(async (err: unknown) => {
    await linesWritten(destination);
    throw err;
  });
  if (worker !== null) announceWorker(gateway, bound);
}

/** A port number 0–65535 from its text, or null. */
function portNumber(text: string): number | null {
  const port = Number(text);
  return Number.isInteger(port) && port >= 0 && port <= 65535 ? port : null;
}

/** `demo-upstream`: only the demo upstream, until the process is stopped. */
async function demoUpstream(portText: string, host: string): Promise<number> {
  const port = portNumber(portText);
  if (port === null) {
    process.stderr.write(`edge-gateway demo-upstream: --port must be a port number, not "${portText}"\n`);
    return 2;
  }
  const { startDemoUpstream } = await import('./demo-upstream.js');
  const { address } = await startDemoUpstream(port, host);
  createLogger('info').info({ address: `${address.address}:${address.port}` }, 'demo upstream serving');
  return -1; // keeps running
}

type Workers = number | 'auto';

function workerCount(workers: Workers): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

async function main(argv: string[]): Promise<number> {
  const first = argv[0] as (typeof PLUGIN_COMMANDS)[number];
  if (PLUGIN_COMMANDS.includes(first)) return pluginCommand(first, argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'demo-upstream': { type: 'string' },
        port: { type: 'string' },
        address: { type: 'string' },
        'node-id': { type: 'string' },
        workers: { type: 'string' },
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
    process.stdout.write(`${VERSION}\n`);
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
  if (command !== 'start' && command !== 'validate' && command !== 'schema' && command !== 'demo-upstream') {
    process.stderr.write(`edge-gateway: unknown command "${command}"\n${HELP}`);
    return 2;
  }
  if (command === 'schema') {
    process.stdout.write(configJsonSchemaText());
    return 0;
  }
  if (command === 'demo-upstream') return demoUpstream(values.port ?? '9000', values.address ?? '127.0.0.1');
  if (values.config === undefined) {
    process.stderr.write(`edge-gateway ${command}: --config FILE is required\n`);
    return 2;
  }
  if (command === 'validate') return validate(values.config);
  const demo = values['demo-upstream'] === undefined ? undefined : portNumber(values['demo-upstream']);
  if (demo === null) {
    process.stderr.write(`edge-gateway start: --demo-upstream must be a port number, not "${values['demo-upstream']}"\n`);
    return 2;
  }
  const nodeId = values['node-id'];
  if (nodeId !== undefined && !/^[\x21-\x7e]{1,128}$/.test(nodeId)) {
    process.stderr.write(`edge-gateway start: --node-id must be 1 to 128 printable characters without spaces, not "${nodeId}"\n`);
    return 2;
  }
  const workers = values.workers === undefined ? undefined : values.workers === 'auto' ? 'auto' : Number(values.workers);
  if (workers !== undefined && workers !== 'auto' && !(Number.isInteger(workers) && workers >= 1 && workers <= 256)) {
    process.stderr.write(`edge-gateway start: --workers must be a number from 1 to 256 or auto, not "${values.workers}"\n`);
    return 2;
  }
  await start(values.config, demo, nodeId, workers).catch((err: Error) => {
    const problems = err instanceof ConfigError ? { problems: err.problems } : {};
    logFatal(isGatewayError(err) ? err.code : (err as NodeJS.ErrnoException).code ?? null, err.message, problems);
    throw err;
  });
  return -1; // keeps running
}

// exitCode, not exit(): the process ends once stdout and stderr are flushed (pipes may be async).
main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code;
}, (err: Error) => {
  process.stderr.write(`edge-gateway: ${err.message}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
