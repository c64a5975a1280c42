/**
 * Real X.509 material for TLS tests, made with openssl (on every machine of this project): a CA,
 * leaf certificates it signs (server names as SANs, or a client), and a second CA that nobody
 * trusts. Everything lives in a temp directory; paths are returned.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'edge-gw-certs-'));
let counter = 0;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface Ca { readonly cert: string; readonly key: string }
export interface Leaf { readonly cert: string; readonly key: string }

/** A self-signed CA named `name`. */
export function makeCa(name: string): Ca {
  const base = join(dir, `${name}-${counter++}`);
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/O=Edge Test/CN=${name}`, '-keyout', `${base}.key`, '-out', `${base}.pem`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  return { cert: `${base}.pem`, key: `${base}.key` };
}

/** A leaf signed by `ca`: CN `cn`, the given DNS/URI SANs, for serverAuth and clientAuth. */
export function makeLeaf(ca: Ca, cn: string, sans: readonly string[] = [`DNS:${cn}`]): Leaf {
  const base = join(dir, `${cn.replace(/[^a-z0-9]/gi, '_')}-${counter++}`);
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/O=Edge Test/CN=${cn}`,
    '-keyout', `${base}.key`, '-out', `${base}.csr`);
  writeFileSync(`${base}.ext`, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl('x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2',
    '-extfile', `${base}.ext`, '-out', `${base}.pem`);
  return { cert: `${base}.pem`, key: `${base}.key` };
}

/** A file in the certificate directory with `text` (a broken PEM, say). */
export function certFile(name: string, text: string): string {
  const file = join(dir, `${counter++}-${name}`);
  writeFileSync(file, text);
  return file;
}
