import { generateKeyPairSync } from 'node:crypto';
import { parseKey } from 'sshpk';

/** A fresh OpenSSH public key line (`ssh-ed25519 AAAA… comment`), as ~/.ssh/id_ed25519.pub holds. */
export function newSshPublicKey(comment: string, type: 'ed25519' | 'rsa' = 'ed25519', rsaBits = 2048): string {
  const { publicKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: rsaBits }) : generateKeyPairSync('ed25519');
  const key = parseKey(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'pem');
  key.comment = comment;
  return key.toString('ssh');
}
