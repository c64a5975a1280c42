import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfig } from '../../gateway/config/load.js';
import { isGatewayError } from '../../gateway/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'edge-gw-config-'));
const moduleFile = join(dir, 'filter.wasm');
writeFileSync(moduleFile, 'not checked at load time');

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The ConfigError `fn` throws (the test fails when it does not throw one). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const base = {
  listeners: [{ name: 'public', address: '127.0.0.1', port: 8080 }],
  clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9000'] }],
  plugins: [{ name: 'stamp', module: moduleFile }],
};

const yamlText = `# a comment
node: { id: edge-7, cluster: west }
listeners:
  - { name: public, address: 127.0.0.1, port: 8080 }
clusters:
  - name: backend
    endpoints: [ "http://127.0.0.1:9000" ]
plugins:
  - name: stamp
    module: ${moduleFile}
    configuration: { add: { x-edge: "1" } }
    vmConfiguration: "verbatim: text"
services: [ stamp ]
routes:
  - name: api
    match: { pathPrefix: /api, host: "*.example.com", methods: [ GET, POST ] }
    cluster: backend
    filters: [ stamp ]
`;

describe('loading a configuration file', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a YAML file and the same document as JSON to the same configuration', () => {
    const fromYaml = loadConfigFile(write('gateway.yaml', yamlText));
    const fromJson = loadConfigFile(write('gateway.json', JSON.stringify({
      node: { id: 'edge-7', cluster: 'west' },
      listeners: [{ name: 'public', address: '127.0.0.1', port: 8080 }],
      clusters: [{ name: 'backend', endpoints: ['http://127.0.0.1:9000'] }],
      plugins: [{ name: 'stamp', module: moduleFile, configuration: { add: { 'x-edge': '1' } }, vmConfiguration: 'verbatim: text' }],
      services: ['stamp'],
      routes: [{ name: 'api', match: { pathPrefix: '/api', host: '*.example.com', methods: ['GET', 'POST'] }, cluster: 'backend', filters: ['stamp'] }],
    }, null, 2)));
    expect(fromJson).toEqual(fromYaml);
    expect(fromYaml.node).toEqual({ id: 'edge-7', cluster: 'west' });
    expect(fromYaml.plugins[0].configuration).toEqual({ add: { 'x-edge': '1' } });
    expect(fromYaml.plugins[0].vmConfiguration).toBe('verbatim: text');
    expect(fromYaml.routes[0]).toEqual({
      name: 'api', match: { pathPrefix: '/api', host: '*.example.com', methods: ['GET', 'POST'] }, cluster: 'backend',
      filters: ['stamp'], bodyLimitBytes: 1048576,
    });
    expect(fromYaml.admin).toEqual({ address: '127.0.0.1', port: 9901, tokenEnv: 'EDGE_GATEWAY_ADMIN_TOKEN' });
  });

  it('returns a deeply frozen configuration', () => {
    const config = loadConfigFile(write('frozen.yaml', yamlText));
    const add = (config.plugins[0].configuration as { add: Record<string, string> }).add;
    for (const value of [config, config.node, config.listeners, config.listeners[0], config.clusters[0].endpoints,
      config.plugins[0], config.plugins[0].configuration, add, config.routes[0].match, config.routes[0].match.methods!]) {
      expect(Object.isFrozen(value)).toBe(true);
    }
    expect(() => { (config.routes as unknown as unknown[]).push({}); }).toThrow(TypeError);
    expect(() => { add['x-edge'] = '2'; }).toThrow(TypeError);
  });

  it('names the file and the field of an unknown cluster', () => {
    const file = write('bakend.yaml', `listeners: [ { name: public, port: 8080 } ]
clusters: [ { name: backend, endpoints: [ "http://127.0.0.1:9000" ] } ]
routes:
  - { name: a, cluster: backend }
  - { name: b, cluster: backend }
  - { name: c, cluster: bakend }
`);
    const err = configError(() => loadConfigFile(file));
    expect(err.problems).toEqual(['routes[2].cluster: unknown cluster "bakend"']);
    expect(err.message).toBe(`invalid configuration ${file}:\n  ${file}: routes[2].cluster: unknown cluster "bakend"`);
    expect(err.file).toBe(file);
    expect(isGatewayError(err, 'GW_ERR_CONFIG_INVALID')).toBe(true);
  });

  it('names each unknown key with its full path', () => {
    const err = configError(() => parseConfig({ ...base, listeners: [{ name: 'l', port: 1, tcp: true }], admin: { bind: 'x' }, extra: 1 }, 'k.yaml'));
    expect(err.problems).toEqual(['listeners[0].tcp: unknown field', 'admin.bind: unknown field', 'extra: unknown field']);
  });

  it('says which required field is missing', () => {
    const err = configError(() => parseConfig({ clusters: [{ endpoints: ['http://a'] }], routes: [{ name: 'r' }] }, 'req.yaml'));
    expect(err.problems).toEqual([
      'listeners: required (array)',
      'clusters[0].name: required (string)',
      'routes[0]: give exactly one of cluster, function',
    ]);
  });

  it('reports duplicate names of listeners, clusters, plugins and routes, and a port used twice', () => {
    const err = configError(() => parseConfig({
      listeners: [{ name: 'l', port: 8080 }, { name: 'l', port: 8080 }, { name: 'm', port: 0 }, { name: 'n', port: 0 }],
      clusters: [...base.clusters, ...base.clusters],
      plugins: [...base.plugins, ...base.plugins],
      routes: [{ name: 'r', cluster: 'backend' }, { name: 'r', cluster: 'backend' }],
    }, 'dup.yaml'));
    expect(err.problems).toEqual([
      'listeners[1].name: duplicate name "l"',
      'clusters[1].name: duplicate name "backend"',
      'plugins[1].name: duplicate name "stamp"',
      'routes[1].name: duplicate name "r"',
      'listeners[1].port: 0.0.0.0:8080 is already used by listeners[0]',
    ]);
  });

  it('reports unknown plugins in route filters and in services', () => {
    const err = configError(() => parseConfig({
      ...base,
      services: ['stamp', 'token-sync'],
      routes: [{ name: 'r', cluster: 'backend', filters: ['stamp', 'add-headers'] }],
    }, 'plugins.yaml'));
    expect(err.problems).toEqual([
      'services[1]: unknown plugin "token-sync"',
      'routes[0].filters[1]: unknown plugin "add-headers"',
    ]);
  });

  it('reports a bad regular expression in a path and in a header matcher', () => {
    const err = configError(() => parseConfig({
      ...base,
      routes: [{ name: 'r', cluster: 'backend', match: { pathRegex: '^/(a', headers: [{ name: 'x', regex: '[' }] } }],
    }, 're.yaml'));
    expect(err.problems).toEqual([
      'routes[0].match.pathRegex: not a valid RE2 pattern (no lookarounds or backreferences): error parsing regexp: missing closing ): `^/(a`',
      'routes[0].match.headers[0].regex: not a valid RE2 pattern (no lookarounds or backreferences): error parsing regexp: missing closing ]: `[`',
    ]);
  });

  it('refuses what RE2 cannot run in linear time (lookarounds, backreferences) and a pattern over the size limit, naming the field', () => {
    const err = configError(() => parseConfig({
      ...base,
      routes: [
        { name: 'ahead', cluster: 'backend', match: { pathRegex: '/(?!admin).*' } },
        { name: 'behind', cluster: 'backend', match: { headers: [{ name: 'x', regex: '(?<=a)b' }] } },
        { name: 'backref', cluster: 'backend', match: { pathRegex: '/(a+)/\\1' } },
        { name: 'huge', cluster: 'backend', match: { headers: [{ name: 'y', exact: '1' }, { name: 'x', regex: '(a|b){1000}' }] } },
      ],
    }, 're2.yaml'));
    expect(err.problems).toEqual([
      'routes[0].match.pathRegex: not a valid RE2 pattern (no lookarounds or backreferences): error parsing regexp: invalid or unsupported Perl syntax: `(?!`',
      'routes[1].match.headers[0].regex: not a valid RE2 pattern (no lookarounds or backreferences): error parsing regexp: invalid named capture: `(?<=a)b`',
      'routes[2].match.pathRegex: not a valid RE2 pattern (no lookarounds or backreferences): error parsing regexp: invalid escape sequence: `\\1`',
      expect.stringMatching(/^routes\[3\]\.match\.headers\[1\]\.regex: pattern too complex: RE2 program size \d+, the limit is 1000$/),
    ]);
  });

  it('reports more than one path matcher, and a header matcher without exactly one condition', () => {
    const err = configError(() => parseConfig({
      ...base,
      routes: [{ name: 'r', cluster: 'backend', match: { path: '/a', pathPrefix: '/a', headers: [{ name: 'x' }, { name: 'y', exact: '1', present: true }] } }],
    }, 'match.yaml'));
    expect(err.problems).toEqual([
      'routes[0].match: give at most one of path, pathPrefix, pathRegex',
      'routes[0].match.headers[0]: give exactly one of exact, regex, present',
      'routes[0].match.headers[1]: give exactly one of exact, regex, present',
    ]);
  });

  it('reports a module file that does not exist, given as a path or as { file }', () => {
    const missing = join(dir, 'missing.wasm');
    const err = configError(() => parseConfig({
      ...base,
      plugins: [{ name: 'a', module: missing }, { name: 'b', module: { file: missing } }, { name: 'c', module: moduleFile }],
    }, 'mod.yaml'));
    expect(err.problems).toEqual([`plugins[0].module: GW_ERR_MODULE_READ: file not found: ${missing}`, `plugins[1].module: GW_ERR_MODULE_READ: file not found: ${missing}`]);
  });

  it('reports a YAML syntax error with the file name and the line', () => {
    const file = write('syntax.yaml', 'listeners:\n  - { name: public, port: 8080\nroutes: []\n');
    const err = configError(() => loadConfigFile(file));
    expect(err.problems).toEqual([
      'line 3, column 1: syntax error: Flow map in block collection must be sufficiently indented and end with a }',
    ]);
    expect(err.message).toBe(`invalid configuration ${file}:\n  ${file}: ${err.problems[0]}`);
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
  });

  it('reports a key given twice as a syntax error', () => {
    const file = write('twice.yaml', 'listeners: []\nlisteners: []\n');
    expect(configError(() => loadConfigFile(file)).problems).toEqual(['line 2, column 1: syntax error: Map keys must be unique']);
  });

  it('reports a JSON syntax error with the file name', () => {
    const file = write('broken.json', '{ "listeners": [ { "name": "public", "port": 8080 }\n');
    const err = configError(() => loadConfigFile(file));
    expect(err.problems).toEqual([
      'line 2, column 1: syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
      'line 2, column 1: syntax error: Flow map must end with a }',
    ]);
    expect(err.message).toBe(`invalid configuration ${file}:\n  ${file}: ${err.problems[0]}\n  ${file}: ${err.problems[1]}`);
  });

  it('reports a file that cannot be read with its own code', () => {
    const file = join(dir, 'absent.yaml');
    const err = configError(() => loadConfigFile(file));
    expect(err.code).toBe('GW_ERR_CONFIG_READ');
    expect(err.problems).toEqual([`cannot read the file: ENOENT: no such file or directory, open '${file}'`]);
  });

  it('reports an empty file as a document that is not an object', () => {
    const err = configError(() => loadConfigFile(write('empty.yaml', '')));
    expect(err.problems).toEqual(['(top level): Invalid input: expected object, received null']);
  });

  it('reports every problem at once: schema findings and broken references together', () => {
    const missing = join(dir, 'nope.wasm');
    const file = write('many.yaml', `listeners:
  - { name: public, port: 8080, tcp: true }
clusters:
  - { name: backend, endpoints: [ "http://127.0.0.1:9000/path" ] }
  - { name: other, endpoints: [ "http://127.0.0.1:9001" ] }
plugins:
  - { name: stamp, module: ${missing} }
  - { name: deny, module: ${moduleFile}, failurePolicy: sometimes }
services: [ stamp, ghost ]
routes:
  - { name: a, cluster: backend, filters: [ deny, nope ] }
  - { name: b, cluster: other, match: { path: /x, pathRegex: "(" } }
  - { name: c, cluster: bakend }
bogus: 1
`);
    const err = configError(() => loadConfigFile(file));
    expect(err.problems).toEqual([
      'listeners[0].tcp: unknown field',
      'clusters[0].endpoints[0]: must be an http(s) origin such as "http://127.0.0.1:9000" (no path)',
      'plugins[1].failurePolicy: Invalid option: expected one of "closed"|"open"|"reload"',
      'bogus: unknown field',
      `plugins[0].module: GW_ERR_MODULE_READ: file not found: ${missing}`,
      'services[1]: unknown plugin "ghost"',
      'routes[0].filters[1]: unknown plugin "nope"',
      'routes[1].match: give at most one of path, pathPrefix, pathRegex',
      'routes[1].match.pathRegex: not a valid RE2 pattern (no lookarounds or backreferences): error parsing regexp: missing closing ): `(`',
      'routes[2].cluster: unknown cluster "bakend"',
    ]);
    expect(err.message.split('\n')).toEqual([`invalid configuration ${file}:`, ...err.problems.map((p) => `  ${file}: ${p}`)]);
  });

  it('does not call a cluster or plugin unknown when the schema rejected it: its own problem is reported', () => {
    const err = configError(() => parseConfig({
      ...base,
      clusters: [{ name: 'backend', endpoints: [] }],
      plugins: [{ name: 'stamp', module: moduleFile, failurePolicy: 'x' }],
      routes: [{ name: 'r', cluster: 'backend', filters: ['stamp'] }],
    }, 'rejected.yaml'));
    expect(err.problems).toEqual([
      'clusters[0].endpoints: Too small: expected array to have >=1 items',
      'plugins[0].failurePolicy: Invalid option: expected one of "closed"|"open"|"reload"',
    ]);
  });
});
