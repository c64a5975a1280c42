/**
 * The certificate of the transport bench (bench/transport.ts): one self-signed EC P-256
 * certificate for `localhost` and 127.0.0.1, made with openssl in the bench's temporary folder
 * (removed by cleanUp), so the gateway and nginx serve the very same key.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempFile } from './processes.js';

export interface Certificate {
  certFile: string;
  keyFile: string;
  /** The certificate's PEM: the only CA the bench's checks trust. */
  pem: string;
}

export function makeCertificate(): Certificate {
  const dir = dirname(tempFile('openssl.txt', ''));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`openssl req failed (${r.status}): ${r.stderr}`);
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8') };
}
