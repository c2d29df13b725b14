import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, createUser, login } from '../support/api';
import { ServerHandle, startServer } from '../support/server-process';
import { newSshPublicKey } from '../support/ssh-keys';

const VM = { name: 'guest', cpu_cores: 1, memory: 512, disk_size: 10 };

/** What a user asks for on create (issue 13): images, SSH keys, user data, and the console, on the simulator. */
describe('images, SSH keys, user data and the console (real server)', () => {
  let server: ServerHandle;
  let token: string;
  let admin: string;
  let other: string;
  let imagePath: string;
  let rawPath: string;
  const post = (path: string, body: object, as = token) => request(server.url).post(path).set(bearer(as)).send(body);
  const get = (path: string, as = token) => request(server.url).get(path).set(bearer(as));

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-images-'));
    imagePath = join(dir, 'tiny.qcow2');
    // What a qcow2 file starts with ("QFI" 0xfb); registration checks it.
    writeFileSync(imagePath, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(4092)]));
    rawPath = join(dir, 'tiny.raw');
    writeFileSync(rawPath, Buffer.alloc(4096));
    mkdirSync(join(dir, 'a-directory'));
    server = await startServer();
    token = await login(server.url);
    admin = await login(server.url, 'admin', 'adminpassword');
    other = await createUser(server.url, admin, 'keys-other');
  });
  afterAll(() => server?.stop());

  it('register an image, add a key, create a VM with both and user data: 201 shows them; the console names the VM and the key', async () => {
    const image = await post('/images', { name: 'tiny-1', path: imagePath, format: 'qcow2' }, admin);
    expect(image.status).toBe(201);
    expect(image.body).toMatchObject({ name: 'tiny-1', path: imagePath, format: 'qcow2' });
    expect((await get('/images')).body.items.map((i: { name: string }) => i.name)).toContain('tiny-1');

    const line = newSshPublicKey('alice@laptop');
    const key = await post('/ssh-keys', { name: 'laptop', public_key: `${line}\n` });
    expect(key.status).toBe(201);
    expect(key.body).toMatchObject({ name: 'laptop', type: 'ed25519', comment: 'alice@laptop', public_key: line });
    expect(key.body.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect((await get('/ssh-keys')).body.items).toEqual([key.body]);

    const userData = '#cloud-config\npackages: [htop]\n';
    const vm = await post('/vms', { ...VM, image: 'tiny-1', ssh_keys: ['laptop'], user_data: userData });
    expect(vm.status).toBe(201);
    expect(vm.body).toMatchObject({ status: 'created', image: 'tiny-1', ssh_keys: [{ name: 'laptop', fingerprint: key.body.fingerprint }], user_data_bytes: userData.length });
    expect(vm.body).not.toHaveProperty('user_data');
    const listed = (await get('/vms')).body.items.find((v: { id: string }) => v.id === vm.body.id);
    expect(listed).toMatchObject({ image: 'tiny-1', user_data_bytes: userData.length });
    expect(listed).not.toHaveProperty('user_data');
    const [row] = await server.query<{ user_data: string; image: string }>('SELECT user_data, image FROM vms WHERE id = $1', [vm.body.id]);
    expect(row).toEqual({ user_data: userData, image: 'tiny-1' });

    const console = await get(`/vms/${vm.body.id}/console`);
    expect(console.status).toBe(200);
    expect(console.headers['content-type']).toMatch(/^text\/plain/);
    expect(console.text).toContain(`vmplane-guest ready instance-id=${vm.body.id} keys=alice@laptop`);
    const tail = await get(`/vms/${vm.body.id}/console?bytes=20`);
    expect(Buffer.byteLength(tail.text)).toBeLessThanOrEqual(20);
    expect(console.text.endsWith(tail.text)).toBe(true);
    // An admin may read it; another member may not know it exists.
    expect((await get(`/vms/${vm.body.id}/console`, admin)).status).toBe(200);
    expect((await get(`/vms/${vm.body.id}/console`, other)).status).toBe(404);

    // Deleting the key later leaves the VM's copy alone.
    expect((await request(server.url).delete(`/ssh-keys/${key.body.id}`).set(bearer(token))).status).toBe(204);
    expect((await get(`/vms/${vm.body.id}`)).body.ssh_keys).toEqual([{ name: 'laptop', fingerprint: key.body.fingerprint }]);
    expect((await request(server.url).delete(`/vms/${vm.body.id}`).set(bearer(token))).body.status).toBe('deleted');
    const gone = await get(`/vms/${vm.body.id}/console`);
    expect(gone.status).toBe(409);
    expect(gone.body).toMatchObject({ code: 'invalid_state', current_status: 'deleted' });
  });

  it.each([
    ['an unknown image', () => ({ ...VM, name: 'bad-image', image: 'no-such-image' }), 'image', /no registered image: no-such-image/],
    ['an image name that is no name', () => ({ ...VM, name: 'bad-image-2', image: '../etc' }), 'image', /letters, digits/],
    ['user data over 16 KiB', () => ({ ...VM, name: 'big-data', user_data: 'é'.repeat(8193) }), 'user_data', /at most 16384 bytes/],
    ['a key name the user does not have', () => ({ ...VM, name: 'no-key', ssh_keys: ['nope'] }), 'ssh_keys', /no SSH key named nope/],
    ['too many keys', () => ({ ...VM, name: 'many-keys', ssh_keys: Array.from({ length: 33 }, (_, i) => `k${i}`) }), 'ssh_keys', /32/],
  ])('POST /vms with %s is a 400 naming the field', async (_what, body, field, message) => {
    const response = await post('/vms', body());
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(response.body.errors).toEqual([{ field, message: expect.stringMatching(message) }]);
  });

  it("someone else's key name is a 400 that does not reveal it exists; their key is a 404 to delete", async () => {
    const theirs = await post('/ssh-keys', { name: 'their-key', public_key: newSshPublicKey('bob@desk') }, other);
    expect(theirs.status).toBe(201);
    const response = await post('/vms', { ...VM, name: 'steal', ssh_keys: ['their-key'] });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ field: 'ssh_keys', message: 'you have no SSH key named their-key (see GET /ssh-keys)' }]);
    expect((await request(server.url).delete(`/ssh-keys/${theirs.body.id}`).set(bearer(token))).status).toBe(404);
    expect((await get('/ssh-keys')).body.items.map((k: { name: string }) => k.name)).not.toContain('their-key');
    expect((await get('/ssh-keys', other)).body.items.map((k: { name: string }) => k.name)).toEqual(['their-key']);
  });

  it.each([
    ['a truncated key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6 x', /not an OpenSSH public key/],
    ['plain text', 'hello world', /not an OpenSSH public key/],
    ['a private key', '-----BEGIN OPENSSH PRIVATE KEY-----', /private key/],
    ['two lines', `${'ssh-ed25519 AAAA'}\nssh-ed25519 BBBB`, /control characters/],
  ])('POST /ssh-keys with %s is a 400 naming public_key', async (_what, publicKey, message) => {
    const response = await post('/ssh-keys', { name: 'bad', public_key: publicKey });
    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ field: 'public_key', message: expect.stringMatching(message) }]);
  });

  it('a duplicate key name is a 409; the same name for another user is fine', async () => {
    expect((await post('/ssh-keys', { name: 'dup', public_key: newSshPublicKey('a') })).status).toBe(201);
    const again = await post('/ssh-keys', { name: 'dup', public_key: newSshPublicKey('b') });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'ssh_key_exists' });
    expect((await post('/ssh-keys', { name: 'dup', public_key: newSshPublicKey('c') }, other)).status).toBe(201);
  });

  it('images: members may list but not register; a bad path is a 400 naming path; a duplicate name is a 409', async () => {
    expect((await post('/images', { name: 'member-image', path: rawPath, format: 'raw' })).status).toBe(403);
    expect((await get('/images')).status).toBe(200);
    for (const [path, message] of [
      ['relative/path.qcow2', /absolute path/],
      ['/nonexistent/image.qcow2', /does not exist/],
      [join(imagePath, '..', 'a-directory'), /not a regular file/],
    ] as const) {
      const response = await post('/images', { name: 'bad-path', path, format: 'qcow2' }, admin);
      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'path', message: expect.stringMatching(message) }]);
    }
    const format = await post('/images', { name: 'bad-format', path: imagePath, format: 'vmdk' }, admin);
    expect(format.body.errors).toEqual([{ field: 'format', message: expect.stringMatching(/qcow2, raw/) }]);
    // The format must be what the file is: a qcow2 file starts with QFI\xfb, and a raw one must not.
    const notQcow2 = await post('/images', { name: 'not-qcow2', path: rawPath, format: 'qcow2' }, admin);
    expect({ status: notQcow2.status, errors: notQcow2.body.errors }).toEqual({ status: 400, errors: [{ field: 'format', message: expect.stringMatching(/^is qcow2, but .* is not a qcow2 image/) }] });
    const notRaw = await post('/images', { name: 'not-raw', path: imagePath, format: 'raw' }, admin);
    expect({ status: notRaw.status, errors: notRaw.body.errors }).toEqual({ status: 400, errors: [{ field: 'format', message: expect.stringMatching(/^is raw, but .* is a qcow2 image/) }] });
    expect((await post('/images', { name: 'twice', path: rawPath, format: 'raw' }, admin)).status).toBe(201);
    const again = await post('/images', { name: 'twice', path: rawPath, format: 'raw' }, admin);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'image_exists' });
  });

  it('console: a VM with no hypervisor VM (still provisioning, or failed) is a 409 invalid_state; ?bytes= out of range is a 400', async () => {
    const pending = (await post('/vms', { ...VM, name: 'pending' })).body;
    await server.execute(`UPDATE vms SET status = 'provisioning', hypervisor_id = NULL WHERE id = $1`, [pending.id]);
    const response = await get(`/vms/${pending.id}/console`);
    expect(response.status).toBe(409);
    expect(response.body).toMatchObject({ code: 'invalid_state', current_status: 'provisioning' });
    await server.execute(`UPDATE vms SET status = 'failed' WHERE id = $1`, [pending.id]);
    expect((await get(`/vms/${pending.id}/console`)).body).toMatchObject({ code: 'invalid_state', current_status: 'failed' });
    const vm = (await post('/vms', { ...VM, name: 'console-bytes' })).body;
    for (const bytes of ['0', '65537', 'abc']) {
      const bad = await get(`/vms/${vm.id}/console?bytes=${bytes}`);
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0].field).toBe('bytes');
    }
  });

  it('the Idempotency-Key body hash covers image, ssh_keys and user_data', async () => {
    const body = { ...VM, name: 'idem', user_data: '#cloud-config\n' };
    const send = (b: object) => request(server.url).post('/vms').set(bearer(token)).set('Idempotency-Key', 'idem-user-data').send(b);
    const first = await send(body);
    expect(first.status).toBe(201);
    expect((await send(body)).headers['idempotent-replayed']).toBe('true');
    for (const changed of [{ ...body, user_data: '#cloud-config\n# other\n' }, { ...body, ssh_keys: [] }, { ...body, image: 'tiny-1' }]) {
      const again = await send(changed);
      expect(again.status).toBe(422);
      expect(again.body.code).toBe('idempotency_key_reused');
    }
  });

  it('DEFAULT_IMAGE: a create without image gets it; one that is not registered is a 400 naming image', async () => {
    const other = await startServer({ env: { DEFAULT_IMAGE: 'default-img' } });
    try {
      const member = await login(other.url);
      const boss = await login(other.url, 'admin', 'adminpassword');
      const refused = await request(other.url).post('/vms').set(bearer(member)).send({ ...VM, name: 'no-default' });
      expect(refused.status).toBe(400);
      expect(refused.body.errors).toEqual([{ field: 'image', message: expect.stringMatching(/absent, and DEFAULT_IMAGE default-img is not a registered image/) }]);
      expect((await request(other.url).post('/images').set(bearer(boss)).send({ name: 'default-img', path: imagePath, format: 'qcow2' })).status).toBe(201);
      const made = await request(other.url).post('/vms').set(bearer(member)).send({ ...VM, name: 'with-default' });
      expect(made.status).toBe(201);
      expect(made.body.image).toBe('default-img');
    } finally {
      await other.stop();
    }
  });

  it('hosts take a hypervisor_uri, validated as a libvirt URI and shown to admins', async () => {
    const host = { name: 'uri-host', region: 'uri-1', cpu_cores: 8, memory_mib: 16384, disk_gib: 100 };
    const made = await post('/hosts', { ...host, hypervisor_uri: 'qemu+ssh://ops@gpu-17/system' }, admin);
    expect(made.status).toBe(201);
    expect(made.body.hypervisor_uri).toBe('qemu+ssh://ops@gpu-17/system');
    expect((await get(`/hosts/${made.body.id}`, admin)).body.hypervisor_uri).toBe('qemu+ssh://ops@gpu-17/system');
    const bad = await post('/hosts', { ...host, name: 'uri-host-2', hypervisor_uri: 'qemu:///system; rm -rf /' }, admin);
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([{ field: 'hypervisor_uri', message: expect.stringMatching(/libvirt URI/) }]);
    const imported = await request(server.url)
      .post('/hosts/import?name=uri-host-3&cpu_cores=8&memory_mib=16384&disk_gib=100&hypervisor_uri=bogus')
      .set(bearer(admin))
      .set('Content-Type', 'application/xml')
      .send('<nvidia_smi_log></nvidia_smi_log>');
    expect(imported.status).toBe(400);
    expect(imported.body.errors[0].field).toBe('hypervisor_uri');
  });
});
