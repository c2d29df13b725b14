import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HypervisorCommandError } from '../errors';

export interface SeedContent {
  /** The VM id: cloud-init runs its per-instance modules once per instance id. */
  instanceId: string;
  /** The VM's name; made into a valid hostname. */
  name: string;
  userData: string | null;
  sshKeys: string[];
}

/** A DNS label (RFC 1123) made from any VM name; cloud-init would otherwise set whatever it is given. */
export function hostnameFor(name: string, instanceId: string): string {
  const label = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || `vm-${instanceId.slice(0, 8)}`;
}

/** JSON strings are YAML double-quoted scalars, so nothing in a value can break out of it. */
const yamlString = (value: string) => JSON.stringify(value);

export function buildMetaData(seed: SeedContent): string {
  return `instance-id: ${yamlString(seed.instanceId)}\nlocal-hostname: ${yamlString(hostnameFor(seed.name, seed.instanceId))}\n`;
}

/**
 * The user data with the SSH keys merged in. Without user data, a
 * cloud-config that holds the keys. With user data of any kind, a MIME
 * multipart whose second part is a cloud-config holding the keys and telling
 * cloud-init to append them to the user's own list (merge_how), so the user's
 * YAML is never parsed or rewritten by us.
 */
export function buildUserData(seed: SeedContent): string {
  const keysConfig = (mergeHow: boolean) =>
    [
      '#cloud-config',
      ...(mergeHow ? ['merge_how:', '  - name: list', '    settings: [append]', '  - name: dict', '    settings: [no_replace, recurse_list]'] : []),
      ...(seed.sshKeys.length > 0 ? ['ssh_authorized_keys:', ...seed.sshKeys.map((k) => `  - ${yamlString(k)}`)] : []),
      '',
    ].join('\n');
  if (!seed.userData) return keysConfig(false);
  if (seed.sshKeys.length === 0) return seed.userData;

  let boundary: string;
  do boundary = `vmplane-${randomBytes(12).toString('hex')}`;
  while (seed.userData.includes(boundary));
  const ascii = /^[\x00-\x7f]*$/.test(seed.userData);
  const userPart = [
    `Content-Type: ${mimeTypeOf(seed.userData)}; charset="utf-8"`,
    'MIME-Version: 1.0',
    `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
    'Content-Disposition: attachment; filename="user-data"',
    '',
    ascii ? seed.userData : (Buffer.from(seed.userData, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\n'),
  ].join('\n');
  const keysPart = [
    'Content-Type: text/cloud-config; charset="us-ascii"',
    'MIME-Version: 1.0',
    'Content-Transfer-Encoding: 7bit',
    'Content-Disposition: attachment; filename="vmplane-ssh-keys.cfg"',
    '',
    keysConfig(true),
  ].join('\n');
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    'MIME-Version: 1.0',
    '',
    `--${boundary}`,
    userPart,
    `--${boundary}`,
    keysPart,
    `--${boundary}--`,
    '',
  ].join('\n');
}

/** cloud-init's content types, by the first line of a part (its user-data formats documentation). */
function mimeTypeOf(userData: string): string {
  const first = userData.slice(0, userData.indexOf('\n') >>> 0);
  if (first.startsWith('#cloud-config')) return 'text/cloud-config';
  if (first.startsWith('#!')) return 'text/x-shellscript';
  if (first.startsWith('#cloud-boothook')) return 'text/cloud-boothook';
  if (first.startsWith('#include')) return 'text/x-include-url';
  if (first.startsWith('## template: jinja')) return 'text/jinja2';
  return 'text/plain';
}

/**
 * Makes the NoCloud seed, an ISO 9660 image labelled `cidata`, with
 * genisoimage (an argument array, in a private temporary folder), hands its
 * path and size to `use`, and removes it afterwards.
 */
export async function withSeedIso<T>(seed: SeedContent, use: (path: string, bytes: number) => Promise<T>, genisoimage = 'genisoimage'): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'vmplane-seed-'));
  try {
    await writeFile(join(dir, 'user-data'), buildUserData(seed), { mode: 0o600 });
    await writeFile(join(dir, 'meta-data'), buildMetaData(seed), { mode: 0o600 });
    const iso = join(dir, 'seed.iso');
    await new Promise<void>((resolve, reject) =>
      execFile(genisoimage, ['-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', join(dir, 'user-data'), join(dir, 'meta-data')], { timeout: 30_000 }, (error, _out, stderr) => {
        if (!error) return resolve();
        const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${genisoimage} is not installed on the control plane` : `${genisoimage} failed: ${stderr.trim().slice(0, 500)}`;
        reject(new HypervisorCommandError(why));
      }),
    );
    return await use(iso, (await stat(iso)).size);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
