import { ImageEntity } from '../../src/images/image.entity';
import { ImagesRepository } from '../../src/images/images.repository';
import { SshKeyEntity } from '../../src/ssh-keys/ssh-key.entity';
import { SshKeysRepository } from '../../src/ssh-keys/ssh-keys.repository';
import { DB_KINDS, reportSkippedPostgres, useTestDatabase } from './support/database';
import { T0, ids, insertUser } from './support/fixtures';

function key(ownerId: string, name: string): SshKeyEntity {
  return Object.assign(new SshKeyEntity(), {
    id: ids.next(),
    ownerId,
    name,
    publicKey: `ssh-ed25519 AAAA${name} ${name}@host`,
    keyType: 'ed25519',
    fingerprint: `SHA256:${name}`,
    comment: `${name}@host`,
  });
}

describe.each(DB_KINDS)('SshKeysRepository and ImagesRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  let keys: SshKeysRepository;
  let images: ImagesRepository;
  beforeEach(() => {
    keys = new SshKeysRepository(db().dataSource.getRepository(SshKeyEntity));
    images = new ImagesRepository(db().dataSource.getRepository(ImageEntity));
  });

  it('every read and the delete are scoped to the owner: another user’s key is never found or deleted', async () => {
    const alice = await db().uow.transaction((tx) => insertUser(tx));
    const bob = await db().uow.transaction((tx) => insertUser(tx));
    const alicesLaptop = key(alice, 'laptop');
    await db().uow.transaction(async (tx) => {
      await keys.insert(tx, alicesLaptop);
      await keys.insert(tx, key(alice, 'desk'));
      await keys.insert(tx, key(bob, 'bobs'));
    });
    const found = await db().uow.read((tx) => keys.findByNames(tx, alice, ['laptop', 'bobs', 'nothing']));
    expect(found.map((k) => k.name)).toEqual(['laptop']);
    expect(found[0]).toMatchObject({ publicKey: alicesLaptop.publicKey, fingerprint: 'SHA256:laptop', comment: 'laptop@host', createdAt: T0 });
    expect((await db().uow.read((tx) => keys.listByOwner(tx, alice, 10))).map((k) => k.name)).toEqual(['desk', 'laptop']);
    expect(await db().uow.read((tx) => keys.countByOwner(tx, alice))).toBe(2);
    expect(await db().uow.read((tx) => keys.existsByName(tx, bob, 'laptop'))).toBe(false);

    expect(await db().uow.transaction((tx) => keys.delete(tx, bob, alicesLaptop.id))).toBe(false);
    expect(await db().uow.transaction((tx) => keys.delete(tx, alice, alicesLaptop.id))).toBe(true);
    expect(await db().uow.transaction((tx) => keys.delete(tx, alice, alicesLaptop.id))).toBe(false);
    expect((await db().uow.read((tx) => keys.listByOwner(tx, alice, 10))).map((k) => k.name)).toEqual(['desk']);
  });

  it('images: found by name, listed by name, timestamps stamped', async () => {
    for (const name of ['zeta', 'alpha']) {
      await db().uow.transaction((tx) => images.insert(tx, Object.assign(new ImageEntity(), { id: ids.next(), name, path: `/srv/${name}.qcow2`, format: 'qcow2' })));
    }
    expect(await db().uow.read((tx) => images.findByName(tx, 'alpha'))).toMatchObject({ name: 'alpha', path: '/srv/alpha.qcow2', format: 'qcow2', createdAt: T0, updatedAt: T0 });
    expect(await db().uow.read((tx) => images.findByName(tx, 'missing'))).toBeNull();
    expect((await db().uow.read((tx) => images.list(tx))).map((i) => i.name)).toEqual(['alpha', 'zeta']);
  });
});

reportSkippedPostgres('ssh keys and images');
