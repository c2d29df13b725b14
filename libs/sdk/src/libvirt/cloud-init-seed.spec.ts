import { buildMetaData, buildUserData, hostnameFor } from './cloud-init-seed';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop';
const KEY_B = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAB ci "deploy" key';
const seed = { instanceId: '0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b', name: 'Trainer #1', userData: null, sshKeys: [KEY_A, KEY_B] };

describe('the cloud-init NoCloud seed', () => {
  it('names the instance by the VM id and the host by a DNS label made from the VM name', () => {
    expect(buildMetaData(seed)).toBe('instance-id: "0190a3c4-5b6d-7e8f-9a0b-1c2d3e4f5a6b"\nlocal-hostname: "trainer-1"\n');
    expect(hostnameFor('---', 'abcdef0123')).toBe('vm-abcdef01');
    expect(hostnameFor('x'.repeat(80), 'id')).toHaveLength(63);
  });

  it('without user data, is a cloud-config whose keys are quoted scalars', () => {
    expect(buildUserData(seed)).toBe(`#cloud-config\nssh_authorized_keys:\n  - ${JSON.stringify(KEY_A)}\n  - ${JSON.stringify(KEY_B)}\n`);
    expect(buildUserData({ ...seed, sshKeys: [] })).toBe('#cloud-config\n');
  });

  it('with user data and no keys, is the user data unchanged', () => {
    expect(buildUserData({ ...seed, userData: '#!/bin/sh\necho hi\n', sshKeys: [] })).toBe('#!/bin/sh\necho hi\n');
  });

  it('with user data and keys, is a MIME multipart whose keys part appends to the user\'s own keys', () => {
    const userData = '#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA mine\npackages: [htop]\n';
    const mime = buildUserData({ ...seed, userData });
    const boundary = /boundary="([^"]+)"/.exec(mime)![1];
    const parts = mime.split(`--${boundary}`);
    expect(parts).toHaveLength(4);
    expect(parts[3]).toBe('--\n');
    expect(parts[1]).toContain('Content-Type: text/cloud-config');
    expect(parts[1]).toContain(userData);
    expect(parts[2]).toContain('Content-Type: text/cloud-config');
    expect(parts[2]).toContain('  - name: list\n    settings: [append]');
    expect(parts[2]).toContain(`  - ${JSON.stringify(KEY_A)}`);
    expect(buildUserData({ ...seed, userData: '#!/bin/bash\ntrue\n' })).toContain('Content-Type: text/x-shellscript');
  });

  it('carries non-ASCII user data base64-encoded, so no 8-bit byte reaches the MIME parser raw', () => {
    const mime = buildUserData({ ...seed, userData: '#cloud-config\nwrite_files: [{path: /etc/motd, content: "héllo ✓"}]\n' });
    expect(mime).toContain('Content-Transfer-Encoding: base64');
    expect(mime).toMatch(/^[\x00-\x7f]*$/);
  });
});
