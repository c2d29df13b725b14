import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKey } from 'sshpk';
import { SshKeyParseError, parseSshPublicKey } from './ssh-public-key';

function opensshLine(type: 'ed25519' | 'rsa', comment: string, bits = 2048): string {
  const { publicKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519');
  const key = parseKey(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'pem');
  key.comment = comment;
  return key.toString('ssh');
}

function reasonFor(text: string): string {
  try {
    parseSshPublicKey(text);
  } catch (error) {
    if (error instanceof SshKeyParseError) return error.message;
    throw error;
  }
  throw new Error('parsed');
}

function hasSshKeygen(): boolean {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    return true;
  } catch (error) {
    return (error as { status?: number }).status !== undefined && (error as { code?: string }).code !== 'ENOENT';
  }
}

describe(parseSshPublicKey.name, () => {
  it('parses an ed25519 key: type, SHA256 fingerprint, comment, and the line as OpenSSH writes it', () => {
    const line = opensshLine('ed25519', 'alice@laptop');
    const parsed = parseSshPublicKey(`  ${line}\n`);
    expect(parsed).toEqual({ type: 'ed25519', bits: 256, fingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/), comment: 'alice@laptop', line });
  });

  it('a key without a comment keeps none', () => {
    const line = opensshLine('ed25519', 'x').replace(/ x$/, '');
    expect(parseSshPublicKey(line)).toMatchObject({ comment: null, line });
  });

  (hasSshKeygen() ? it : it.skip)('the fingerprint is the one ssh-keygen -lf prints', () => {
    const line = opensshLine('rsa', 'bob@desk', 2048);
    const dir = mkdtempSync(join(tmpdir(), 'sshkey-'));
    writeFileSync(join(dir, 'k.pub'), `${line}\n`);
    const printed = execFileSync('ssh-keygen', ['-lf', join(dir, 'k.pub')]).toString();
    expect(printed.split(' ')[1]).toBe(parseSshPublicKey(line).fingerprint);
  });

  it.each([
    ['plain text', 'hello world', /^is not an OpenSSH public key: /],
    ['a truncated key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6 x', /^is not an OpenSSH public key: .*(length|truncated)/],
    ['a private key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----', /^must be one key on one line$/],
    ['a private key on one line', '-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA', /^is a private key/],
    ['two keys', `${opensshLine('ed25519', 'a')}\n${opensshLine('ed25519', 'b')}`, /^must be one key on one line$/],
    ['a 1024-bit RSA key', opensshLine('rsa', 'old', 1024), /^is a 1024-bit RSA key; at least 2048 bits are needed$/],
    ['a comment outside printable ASCII', `${opensshLine('ed25519', 'x').replace(/ x$/, '')} caf\u00e9`, /comment/],
  ])('refuses %s with the reason', (_what, text, reason) => {
    expect(reasonFor(text)).toMatch(reason);
  });
});
