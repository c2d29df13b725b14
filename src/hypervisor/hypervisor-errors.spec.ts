import {
  AuthenticationError,
  Client,
  DeviceBusyError,
  HostUnreachableError,
  HypervisorCommandError,
  InvalidVmSpecError,
  InvalidVmStateError,
  LibvirtClient,
  NoResourcesAvailableError,
  TransientHypervisorError,
  VmNotFoundError,
} from '@vmplane/sdk';
import { loadConfig } from '../config/app-config';
import { HypervisorCallError, classifyHypervisorError, isRetryable } from './hypervisor-errors';
import { createHypervisorClient } from './hypervisor.module';

describe(classifyHypervisorError.name, () => {
  it('names each SDK error by its class, and a host that did not answer by its host', () => {
    const cases: [unknown, string][] = [
      [new NoResourcesAvailableError('x'), 'no_resources'],
      [new AuthenticationError('x'), 'authentication'],
      [new DeviceBusyError(['g']), 'device_busy'],
      [new VmNotFoundError('v'), 'vm_not_found'],
      [new InvalidVmStateError('v', 'shut_off', 'reboot'), 'invalid_state'],
      [new InvalidVmSpecError('x'), 'invalid_spec'],
      [new TransientHypervisorError('x'), 'transient'],
      [new HypervisorCommandError('virsh define: bad'), 'client'],
      [new TypeError('boom'), 'unknown'],
      [42, 'unknown'],
    ];
    for (const [error, kind] of cases) expect(classifyHypervisorError(error).kind).toBe(kind);
    expect(classifyHypervisorError(new HostUnreachableError('gpu-17', 'qemu+ssh://gpu-17/system', 'Connection refused'))).toEqual({
      kind: 'host_unreachable',
      host: 'gpu-17',
      message: 'Host gpu-17 (qemu+ssh://gpu-17/system) did not answer: Connection refused',
    });
  });
});

describe(isRetryable.name, () => {
  it('retries what may pass, and never a state, a spec or credentials that will not change', () => {
    expect(isRetryable('create', 'no_resources')).toBe(true);
    expect(isRetryable('create', 'host_unreachable')).toBe(true);
    expect(isRetryable('create', 'device_busy')).toBe(false);
    expect(isRetryable('start', 'transient')).toBe(true);
    expect(isRetryable('start', 'no_resources')).toBe(false);
    expect(isRetryable('reboot', 'invalid_state')).toBe(false);
    expect(isRetryable('resize', 'no_resources')).toBe(true);
    expect(isRetryable('delete', 'client')).toBe(true);
    expect(isRetryable('delete', 'authentication')).toBe(false);
    expect(isRetryable('delete', 'invalid_spec')).toBe(false);
  });
});

describe(createHypervisorClient.name, () => {
  const env = { JWT_SECRET: 'x'.repeat(32), SDK_STATE_PATH: ':memory:' };

  it('builds the simulator by default and the libvirt driver when HYPERVISOR_DRIVER=libvirt', () => {
    const simulator = createHypervisorClient(loadConfig({ ...env, SDK_API_KEY: 'key' }));
    expect(simulator).toBeInstanceOf(Client);
    simulator.close?.();
    const libvirt = createHypervisorClient(loadConfig({ ...env, HYPERVISOR_DRIVER: 'libvirt' }));
    expect(libvirt).toBeInstanceOf(LibvirtClient);
    expect(libvirt.authenticate()).toBe(true);
  });
});

describe('what a VM owner reads of a hypervisor failure (HypervisorCallError.message)', () => {
  const owner = (error: unknown) => new HypervisorCallError(classifyHypervisorError(error), 1);

  it('keeps what went wrong and hides the fleet: URIs with users and key files, user@host, addresses, paths', () => {
    const unreachable = owner(
      new HostUnreachableError('h100-07', 'qemu+ssh://vmplane@10.1.2.3:22/system?keyfile=/etc/vmplane/id_ed25519', 'ssh: connect to host 10.1.2.3 port 22: Connection refused'),
    );
    expect(unreachable.message).toBe('The hypervisor host did not answer: ssh: connect to host <address> port 22: Connection refused');
    expect(unreachable.detail).toContain('qemu+ssh://vmplane@10.1.2.3:22/system?keyfile=/etc/vmplane/id_ed25519');

    const command = owner(new HypervisorCommandError("qemu-img create -b '/var/lib/libvirt/images/vmplane/vmplane-image-x' -F qcow2: Image is not in qcow2 format"));
    expect(command.message).toBe("qemu-img create -b '<path>' -F qcow2: Image is not in qcow2 format");
    expect(owner(new HypervisorCommandError('error: failed to connect as admin@gpu-host.internal: denied')).message).toBe('error: failed to connect as <user@host>: denied');
  });

  it('leaves messages without internals as they are', () => {
    for (const text of ['No resources available to create a new virtual machine', "host doesn't support passthrough of 1g.18gb (3/7 slices)", 'create failed after 3 attempt(s): x']) {
      expect(owner(new HypervisorCommandError(text)).message).toBe(text);
    }
  });
});
