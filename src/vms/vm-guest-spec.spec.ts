import type { UnitOfWork } from '../database/unit-of-work';
import type { FleetRepository } from '../fleet/fleet.repository';
import { HostEntity } from '../fleet/host.entity';
import type { ImagesRepository } from '../images/images.repository';
import { VmGuestSpecs } from './vm-guest-spec';
import { VmEntity } from './vm.entity';

describe('VmGuestSpecs: the host URI a hypervisor call goes to', () => {
  const rowUri = 'qemu+ssh://row/system';
  let reads: string[];
  let specs: VmGuestSpecs;

  beforeEach(() => {
    reads = [];
    const uow = { read: <T>(work: (tx: unknown) => Promise<T>) => work({}) } as unknown as UnitOfWork;
    const fleet = {
      hypervisorUriOf: async (_tx: unknown, id: string) => {
        reads.push(id);
        return rowUri;
      },
    } as unknown as FleetRepository;
    const images = { findByName: async () => null } as unknown as ImagesRepository;
    specs = new VmGuestSpecs(uow, fleet, images);
  });

  function vmOn(hostId: string | null, host?: Partial<HostEntity>): VmEntity {
    return Object.assign(new VmEntity(), { id: 'vm-1', hostId, host: host ? Object.assign(new HostEntity(), host) : undefined, diskRef: null, image: null, sshKeys: null, userData: null });
  }

  it('uses the URI read with the VM (a plan or a joined host) without another read', async () => {
    const vm = vmOn('h-1', { id: 'h-1', name: 'gpu-01', hypervisorUri: 'qemu+ssh://plan/system' });
    expect(await specs.targetOf(vm)).toEqual({ host: 'gpu-01', uri: 'qemu+ssh://plan/system' });
    expect((await specs.of(vm)).uri).toBe('qemu+ssh://plan/system');
    expect(reads).toEqual([]);
  });

  it('keeps a null URI (the driver default) as read, without another read', async () => {
    const vm = vmOn('h-1', { id: 'h-1', name: 'gpu-01', hypervisorUri: null });
    expect((await specs.targetOf(vm)).uri).toBeNull();
    expect(reads).toEqual([]);
  });

  it("reads the host's row when the VM carries no host, only part of one, or a host it has since left", async () => {
    expect((await specs.targetOf(vmOn('h-1'))).uri).toBe(rowUri);
    expect((await specs.of(vmOn('h-1', { id: 'h-1', name: 'gpu-01' }))).uri).toBe(rowUri);
    expect((await specs.of(vmOn('h-2', { id: 'h-1', name: 'gpu-01', hypervisorUri: 'qemu+ssh://old/system' }))).uri).toBe(rowUri);
    expect(reads).toEqual(['h-1', 'h-1', 'h-2']);
  });

  it('an unplaced VM has no URI and costs no read', async () => {
    expect((await specs.of(vmOn(null))).uri).toBeNull();
    expect(reads).toEqual([]);
  });
});
