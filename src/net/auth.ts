/**
 * Peer authentication with a shared cluster secret: each side proves it knows the secret by an
 * HMAC over the other side's fresh nonce, so neither proof can be replayed. Without a secret both
 * proofs are empty and nothing is checked (a trusted network, the default).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const newNonce = () => randomBytes(16).toString('hex');

export function proof(secret: string | undefined, role: 'client' | 'server', nonce: string): string {
  if (!secret) return '';
  return createHmac('sha256', secret).update(`dftfs-peer-v1:${role}:${nonce}`).digest('hex');
}

export function checkProof(secret: string | undefined, role: 'client' | 'server', nonce: string, got: unknown): boolean {
  if (!secret) return true;
  if (typeof got !== 'string') return false;
  const want = Buffer.from(proof(secret, role, nonce), 'hex');
  const have = Buffer.from(got, 'hex');
  return have.length === want.length && timingSafeEqual(have, want);
}
