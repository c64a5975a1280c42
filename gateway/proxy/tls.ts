/**
 * TLS termination of a listener: its default certificate, a certificate per server name (SNI),
 * optional client-certificate verification (mTLS), TLS 1.2 and later by default, and ALPN (h2
 * where the listener speaks HTTP/2, http2.ts).
 *
 * The material is read and checked when the configuration loads (every file, each key against its
 * certificate, by building the secure contexts), so a bad certificate is refused with the field
 * at fault before anything serves. A reload reads it again and, only once the whole new
 * configuration is accepted, installs it on the running server (`server.setSecureContext` and the
 * SNI table): new handshakes get the new certificates, connections already open keep theirs.
 *
 * SNI names are exact (`api.example.com`) or one leading wildcard label (`*.example.com`, which
 * matches `a.example.com` but neither `example.com` nor `a.b.example.com`, as certificates do);
 * a name matching no entry, or a client sending none, gets the default certificate.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate, createHash } from 'node:crypto';
import type { ServerOptions } from 'node:https';
import { TLSSocket, createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';

type TlsConfig = NonNullable<ListenerConfig['tls']>;


function read(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new GatewayError('GW_ERR_TLS_CERTIFICATE', `${field}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** A context for `cert`/`key`, or GW_ERR_TLS_CERTIFICATE naming `field` (unparsable PEM, a key that is not the certificate's). */
function context(options: SecureContextOptions, field: string, files: string): SecureContext {
  try {
    return createSecureContext(options);
  } catch (err) {
    throw new GatewayError('GW_ERR_TLS_CERTIFICATE', `${field}: ${files}: ${(err as Error).message}`, { cause: err });
  }
}

interface Material {
  /** What setSecureContext and createServer take for the default certificate and client verification. */
  readonly options: SecureContextOptions & { minVersion: 'TLSv1.2' | 'TLSv1.3' };
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** `*.example.com` → its context, keyed by `.example.com`. */
  readonly wildcard: ReadonlyMap<string, SecureContext>;
}

function load(config: TlsConfig, at: string): Material {
  const ca = config.clientCaFile === undefined ? undefined : read(config.clientCaFile, `${at}.clientCaFile`);
  const options = {
    cert: read(config.certFile, `${at}.certFile`), key: read(config.keyFile, `${at}.keyFile`), ca, minVersion: config.minVersion,
  };
  context(options, at, `${config.certFile} / ${config.keyFile}`);
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  config.sni.forEach((entry, i) => {
    const field = `${at}.sni[${i}]`;
    const ctx = context({ cert: read(entry.certFile, `${field}.certFile`), key: read(entry.keyFile, `${field}.keyFile`), ca, minVersion: config.minVersion },
      field, `${entry.certFile} / ${entry.keyFile}`);
    for (const name of entry.serverNames) {
      const lower = name.toLowerCase();
      if (lower.startsWith('*.')) wildcard.set(lower.slice(1), ctx);
      else exact.set(lower, ctx);
    }
  });
  return { options, exact, wildcard };
}

export class ListenerTls {
  private material: Material;

  /** Reads and checks the listener's certificates; throws GW_ERR_TLS_CERTIFICATE naming the field. */
  constructor(private readonly config: TlsConfig, at: string) {
    this.material = load(config, at);
  }

  /** The https server's TLS options (client verification is fixed for the listener's life); `h2`: offer it through ALPN. */
  serverOptions(handshakeTimeoutMs: number, h2: boolean): ServerOptions {
    const verify = this.config.clientCaFile !== undefined;
    return {
      ...this.material.options,
      requestCert: verify,
      rejectUnauthorized: verify && this.config.requireClientCertificate,
      ALPNProtocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'],
      handshakeTimeout: handshakeTimeoutMs,
      SNICallback: (name, done) => done(null, this.forName(name)),
    };
  }

  private forName(name: string): SecureContext | undefined {
    const lower = name.toLowerCase();
    const exact = this.material.exact.get(lower);
    if (exact !== undefined) return exact;
    const dot = lower.indexOf('.');
    return dot > 0 ? this.material.wildcard.get(lower.slice(dot)) : undefined;
  }

  /** Installs `next`'s certificates for new handshakes of `server`. */
  install(next: ListenerTls, server: { setSecureContext(options: SecureContextOptions): void }): void {
    server.setSecureContext(next.material.options);
    this.material = next.material;
  }
}

/** The TLS of every listener of a configuration, by listener name (null: plain HTTP). */
export class ListenersTls {
  private readonly byName = new Map<string, ListenerTls | null>();

  /** Reads every listener's certificates; throws GW_ERR_TLS_CERTIFICATE naming the first field at fault. */
  constructor(listeners: readonly ListenerConfig[]) {
    listeners.forEach((l, i) => this.byName.set(l.name, l.tls === undefined ? null : new ListenerTls(l.tls, `listeners[${i}].tls`)));
  }

  get(name: string): ListenerTls | null {
    return this.byName.get(name) ?? null;
  }

  /**
   * For a reload: reads `next`'s certificates of every listener that was TLS and still is (a
   * listener's address, and whether it speaks TLS, change at the next restart only), throwing
   * GW_ERR_TLS_CERTIFICATE before anything changed; the step it returns installs them.
   */
  prepare(next: readonly ListenerConfig[]): (server: (name: string) => { setSecureContext(options: SecureContextOptions): void } | undefined) => void {
    const reread: Array<[ListenerTls, ListenerTls, string]> = [];
    next.forEach((l, i) => {
      const running = this.byName.get(l.name);
      if (running == null || l.tls === undefined) return;
      reread.push([running, new ListenerTls(l.tls, `listeners[${i}].tls`), l.name]);
    });
    return (server) => {
      for (const [running, fresh, name] of reread) {
        const s = server(name);
        if (s !== undefined) running.install(fresh, s);
      }
    };
  }
}

// ---- connection.* properties (Envoy's attribute names) ----------------------------------------

/** RFC 2253 order (most specific first, comma-separated), as Envoy prints subjects. */
function rfc2253(subject: string): string {
  return subject.split('\n').filter((p) => p !== '').reverse().join(',');
}

/** The first subject alternative name of `kind` (DNS, URI), as Envoy gives the first only. */
function firstSan(cert: X509Certificate | undefined, kind: 'DNS' | 'URI'): string | undefined {
  const prefix = `${kind}:`;
  return cert?.subjectAltName?.split(', ').find((s) => s.startsWith(prefix))?.slice(prefix.length);
}

/** Facts of a TLS connection for the connection.* properties; null for a plain one. */
export interface TlsFacts {
  readonly mtls: boolean;
  readonly version: string | null;
  readonly serverName: string | null;
  peer(): X509Certificate | undefined;
  local(): X509Certificate | undefined;
}

export function tlsFacts(socket: unknown): TlsFacts | null {
  if (!(socket instanceof TLSSocket)) return null;
  const peer = (): X509Certificate | undefined => socket.getPeerX509Certificate();
  return {
    mtls: socket.authorized && peer() !== undefined,
    version: socket.getProtocol(),
    serverName: typeof (socket as { servername?: unknown }).servername === 'string' ? (socket as unknown as { servername: string }).servername : null,
    peer,
    local: () => socket.getX509Certificate(),
  };
}

/** The value of connection.<name> for a TLS connection, or undefined (NOT_FOUND). */
export function tlsProperty(facts: TlsFacts, name: string): string | boolean | undefined {
  switch (name) {
    case 'mtls': return facts.mtls;
    case 'tls_version': return facts.version ?? undefined;
    case 'requested_server_name': return facts.serverName ?? undefined;
    case 'subject_peer_certificate': { const c = facts.peer(); return c === undefined ? undefined : rfc2253(c.subject); }
    case 'subject_local_certificate': { const c = facts.local(); return c === undefined ? undefined : rfc2253(c.subject); }
    case 'dns_san_peer_certificate': return firstSan(facts.peer(), 'DNS');
    case 'uri_san_peer_certificate': return firstSan(facts.peer(), 'URI');
    case 'dns_san_local_certificate': return firstSan(facts.local(), 'DNS');
    case 'uri_san_local_certificate': return firstSan(facts.local(), 'URI');
    case 'sha256_peer_certificate_digest': { const c = facts.peer(); return c === undefined ? undefined : createHash('sha256').update(c.raw).digest('hex'); }
    case 'peer_certificate': { const c = facts.peer(); return c === undefined ? undefined : encodeURIComponent(c.toString()); }
    default: return undefined;
  }
}
