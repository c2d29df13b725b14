import { parseKey } from 'sshpk';

/** A public key as OpenSSH reads it; `line` is the re-serialised `type base64 [comment]`. */
export interface ParsedSshKey {
  type: string;
  bits: number;
  fingerprint: string;
  comment: string | null;
  line: string;
}

export class SshKeyParseError extends Error {}

const MIN_RSA_BITS = 2048;
/** cloud-init copies the comment into authorized_keys verbatim; printable ASCII keeps it one line in any encoding. */
const COMMENT = /^[\x20-\x7e]{0,255}$/;

/**
 * Parses one OpenSSH public key line with sshpk (the parser node-ssh and
 * Joyent's tools use); raises SshKeyParseError with the parser's reason.
 */
export function parseSshPublicKey(text: string): ParsedSshKey {
  const trimmed = text.trim();
  if (/[\r\n]/.test(trimmed)) throw new SshKeyParseError('must be one key on one line');
  if (/PRIVATE KEY/.test(trimmed)) throw new SshKeyParseError('is a private key; send the public key (the .pub file)');
  let key;
  try {
    key = parseKey(trimmed, 'ssh');
  } catch (error) {
    throw new SshKeyParseError(`is not an OpenSSH public key: ${(error as Error).message}`);
  }
  if (key.type === 'rsa' && key.size < MIN_RSA_BITS) throw new SshKeyParseError(`is a ${key.size}-bit RSA key; at least ${MIN_RSA_BITS} bits are needed`);
  const comment = key.comment && key.comment !== '(unnamed)' ? key.comment.trim() : '';
  if (!COMMENT.test(comment)) throw new SshKeyParseError('has a comment that is not 0–255 printable ASCII characters');
  key.comment = comment;
  return {
    type: key.type,
    bits: key.size,
    fingerprint: key.fingerprint('sha256').toString(),
    comment: comment === '' ? null : comment,
    line: key.toString('ssh').trim(),
  };
}
