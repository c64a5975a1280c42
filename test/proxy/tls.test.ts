import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, copyFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { certFile, makeCa, makeLeaf, type Ca, type Leaf } from '../helpers/certificates.js';
import { Guest } from '../helpers/guests.js';
import { runCli } from '../helpers/cli.js';
import { writeConfigFile } from '../helpers/gateway-process.js';

const CONNECTION_PROPERTIES = ['mtls', 'tls_version', 'requested_server_name', 'subject_peer_certificate', 'sha256_peer_certificate_digest', 'uri_san_peer_certificate', 'dns_san_local_certificate'];

/** Copies request.scheme and connection.* (hex) into request headers x-p-<name>. */
function propertyFilter(): string {
  const g = new Guest();
  const copy = (name: string, path: string): string => `(call $prop_header ${g.lit(path)} (i32.const 0) ${g.lit(`x-p-${name}`)})`;
  return g.build({
    log: false,
    on: { proxy_on_request_headers: `${copy('scheme', 'request\0scheme')} ${CONNECTION_PROPERTIES.map((p) => copy(p, `connection\0${p}`)).join(' ')} (i32.const 0)` },
  });
}

const hex = (value: string): string => Buffer.from(value).toString('hex');

let ca: Ca;
let otherCa: Ca;
let server: Leaf;
let api: Leaf;
let wild: Leaf;
let client: Leaf;
let stranger: Leaf;
let upstream: Upstream;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  ca = makeCa('edge-test-ca');
  otherCa = makeCa('nobody-trusts-me');
  server = makeLeaf(ca, 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  api = makeLeaf(ca, 'api.test');
  wild = makeLeaf(ca, 'wild.test', ['DNS:*.wild.test']);
  client = makeLeaf(ca, 'client-7', ['URI:spiffe://edge.test/client-7']);
  stranger = makeLeaf(otherCa, 'stranger');
  upstream = await startUpstream();
});
afterAll(async () => {
  for (const gw of gateways) await gw.close();
  await upstream.close();
});

async function tlsGateway(tls: Record<string, unknown>): Promise<TestGateway> {
  const gw = await startGateway({
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0, tls: { certFile: server.cert, keyFile: server.key, ...tls } }],
    clusters: [{ name: 'backend', endpoints: [upstream.url] }],
    plugins: [{ name: 'props', module: wasmFile(propertyFilter(), 'props') }],
    routes: [{ name: 'all', cluster: 'backend', filters: ['props'] }],
  });
  gateways.push(gw);
  return gw;
}

interface Answer { status: number; seen: Record<string, string | string[] | undefined> }

/** GET over HTTPS trusting the test CA, with `options` (a client certificate, a server name, TLS versions). */
function get(gw: TestGateway, options: Record<string, unknown> = {}): Promise<Answer> {
  const port = Number(new URL(gw.url).port);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/x', ca: readFileSync(ca.cert), servername: 'localhost', agent: false, ...options }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, seen: upstream.requests.at(-1)!.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The certificate the listener presents for `servername`. */
function presented(gw: TestGateway, servername: string): Promise<X509Certificate> {
  const port = Number(new URL(gw.url).port);
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!);
      socket.end();
    });
    socket.on('error', reject);
  });
}

const withCert = (leaf: Leaf): Record<string, unknown> => ({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) });

describe('a TLS listener', () => {
  it('terminates TLS 1.2 and later, and requests go on with https as their scheme', async () => {
    const gw = await tlsGateway({});
    const answer = await get(gw);
    expect(answer.status).toBe(200);
    expect(answer.seen['x-forwarded-proto']).toBe('https');
    expect(answer.seen['x-p-scheme']).toBe(hex('https'));
    expect(answer.seen['x-p-mtls']).toBe('00');
    expect(answer.seen['x-p-tls_version']).toMatch(new RegExp(`^(${hex('TLSv1.3')}|${hex('TLSv1.2')})$`));
    expect(answer.seen['x-p-requested_server_name']).toBe(hex('localhost'));
    expect(answer.seen['x-p-dns_san_local_certificate']).toBe(hex('localhost'));
    await expect(get(gw, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).rejects.toThrow();
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/edge_gateway_tls_handshake_errors_total\{listener="public",reason="[A-Z_]+"\} 1/);
  });

  it('presents the certificate of the server name the client asks for, exact or wildcard, else the default', async () => {
    const gw = await tlsGateway({ sni: [{ serverNames: ['api.test'], certFile: api.cert, keyFile: api.key }, { serverNames: ['*.wild.test'], certFile: wild.cert, keyFile: wild.key }] });
    expect((await presented(gw, 'api.test')).subject).toContain('CN=api.test');
    expect((await presented(gw, 'API.TEST')).subject).toContain('CN=api.test');
    expect((await presented(gw, 'a.wild.test')).subject).toContain('CN=wild.test');
    expect((await presented(gw, 'a.b.wild.test')).subject).toContain('CN=localhost');
    expect((await presented(gw, 'unknown.test')).subject).toContain('CN=localhost');
  });

  it('requires a client certificate from its CA when mTLS is on, and tells filters who the client is', async () => {
    const gw = await tlsGateway({ clientCaFile: ca.cert });
    await expect(get(gw)).rejects.toThrow();
    await expect(get(gw, withCert(stranger))).rejects.toThrow();
    const answer = await get(gw, withCert(client));
    expect(answer.status).toBe(200);
    expect(answer.seen['x-p-mtls']).toBe('01');
    expect(answer.seen['x-p-subject_peer_certificate']).toBe(hex('CN=client-7,O=Edge Test'));
    const der = new X509Certificate(readFileSync(client.cert)).raw;
    expect(answer.seen['x-p-sha256_peer_certificate_digest']).toBe(hex(createHash('sha256').update(der).digest('hex')));
    expect(answer.seen['x-p-uri_san_peer_certificate']).toBe(hex('spiffe://edge.test/client-7'));
  });

  it('asks for a client certificate without requiring one when told so', async () => {
    const gw = await tlsGateway({ clientCaFile: ca.cert, requireClientCertificate: false });
    const anonymous = await get(gw);
    expect(anonymous.status).toBe(200);
    expect(anonymous.seen['x-p-mtls']).toBe('00');
    expect(anonymous.seen['x-p-subject_peer_certificate']).toBe('!1');
    expect((await get(gw, withCert(stranger))).seen['x-p-mtls']).toBe('00');
    expect((await get(gw, withCert(client))).seen['x-p-mtls']).toBe('01');
  });

  it('takes new certificates on reload without dropping open connections, and keeps the old ones on a bad file', async () => {
    const cert = certFile('live.pem', readFileSync(server.cert, 'utf8'));
    const key = certFile('live.key', readFileSync(server.key, 'utf8'));
    const gw = await tlsGateway({ certFile: cert, keyFile: key });
    const config = (gw.gateway as unknown as { config: Record<string, unknown> }).config;
    const before = await presented(gw, 'localhost');
    // An open keep-alive connection, across the reload.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(gw, { agent })).status).toBe(200);

    const renewed = makeLeaf(ca, 'localhost', ['DNS:localhost']);
    copyFileSync(renewed.cert, cert);
    copyFileSync(renewed.key, key);
    await gw.gateway.reload(config as never);
    expect((await presented(gw, 'localhost')).serialNumber).not.toBe(before.serialNumber);
    expect((await presented(gw, 'localhost')).serialNumber).toBe(new X509Certificate(readFileSync(renewed.cert)).serialNumber);
    expect((await get(gw, { agent })).status).toBe(200);

    // A broken certificate is refused with the field at fault; the renewed one keeps serving.
    copyFileSync(certFile('broken.pem', '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n'), cert);
    await expect(gw.gateway.reload(config as never)).rejects.toMatchObject({ code: 'GW_ERR_TLS_CERTIFICATE', message: expect.stringMatching(/^listeners\[0\]\.tls: .*live\.pem/) });
    expect((await presented(gw, 'localhost')).serialNumber).toBe(new X509Certificate(readFileSync(renewed.cert)).serialNumber);
    agent.destroy();
  });

  it('refuses to start on a certificate that cannot be read or does not match its key, naming the field', async () => {
    const doc = (tls: Record<string, unknown>) => parseConfig({
      listeners: [{ name: 'public', address: '127.0.0.1', port: 0, tls }],
    }, 'tls.yaml');
    await expect(Gateway.create(doc({ certFile: '/nonexistent/cert.pem', keyFile: server.key })))
      .rejects.toMatchObject({ code: 'GW_ERR_TLS_CERTIFICATE', message: expect.stringMatching(/^listeners\[0\]\.tls\.certFile: cannot read \/nonexistent\/cert\.pem: ENOENT/) });
    await expect(Gateway.create(doc({ certFile: server.cert, keyFile: api.key })))
      .rejects.toMatchObject({ code: 'GW_ERR_TLS_CERTIFICATE', message: expect.stringMatching(/^listeners\[0\]\.tls: .*key values mismatch/) });
    await expect(Gateway.create(doc({ certFile: server.cert, keyFile: server.key, sni: [{ serverNames: ['api.test'], certFile: api.cert, keyFile: server.key }] })))
      .rejects.toMatchObject({ code: 'GW_ERR_TLS_CERTIFICATE', message: expect.stringMatching(/^listeners\[0\]\.tls\.sni\[0\]: /) });
    // validate says it as a configuration error: exit 2, the file and the field.
    const file = writeConfigFile({ listeners: [{ name: 'public', address: '127.0.0.1', port: 0, tls: { certFile: server.cert, keyFile: api.key } }] });
    const checked = await runCli(['validate', '--config', file]);
    expect(checked.code).toBe(2);
    expect(checked.stderr.startsWith(`invalid configuration ${file}:\n  ${file}: listeners[0].tls: GW_ERR_TLS_CERTIFICATE: `)).toBe(true);
  });
});
