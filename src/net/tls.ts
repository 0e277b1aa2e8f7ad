/**
 * Optional TLS on the data plane (`--tls`), keyed by the cluster secret: TLS 1.3 with an external
 * pre-shared key (RFC 8446 §2.2) derived from the secret, so there are no certificates to make or
 * distribute and a peer without the secret cannot even finish the handshake. OpenSSL still runs
 * an (EC)DHE exchange with the PSK (psk_dhe_ke), so past traffic stays secret if the cluster
 * secret leaks later.
 */
import { hkdfSync } from 'node:crypto';
import type tls from 'node:tls';

/** The one PSK identity dftfs uses; the key, not the name, is what authenticates. */
export const TLS_PSK_IDENTITY = 'dftfs-peer-v1';

/** The suites a SHA-256 PSK can be used with in TLS 1.3. */
const TLS13_PSK_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';

/** The 32-byte TLS key of a cluster secret (HKDF-SHA256; the HMAC handshake uses the secret itself). */
export function tlsKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'dftfs', 'dftfs-peer-tls-v1', 32));
}

export function serverTlsOptions(key: Buffer): tls.TlsOptions {
  return {
    minVersion: 'TLSv1.3',
    ciphers: TLS13_PSK_SUITES,
    pskCallback: (_socket, identity) => (identity === TLS_PSK_IDENTITY ? key : null),
  };
}

export function clientTlsOptions(key: Buffer): tls.ConnectionOptions {
  return {
    minVersion: 'TLSv1.3',
    ciphers: TLS13_PSK_SUITES,
    pskCallback: () => ({ psk: key, identity: TLS_PSK_IDENTITY }),
    // No certificate: the PSK authenticates the server, there is no host name to check.
    checkServerIdentity: () => undefined,
  };
}
