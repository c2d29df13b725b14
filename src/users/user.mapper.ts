import { isoTime } from '../common/iso-time';
import type { ResourceAmounts } from './users.repository';
import { UserResponseDto } from './dto/user.dto';
import { UserEntity } from './user.entity';

export function effectiveQuota(user: UserEntity, defaults: ResourceAmounts): ResourceAmounts {
  return {
    vcpus: user.quotaVcpus ?? defaults.vcpus,
    memoryMib: user.quotaMemoryMib ?? defaults.memoryMib,
    gpus: user.quotaGpus ?? defaults.gpus,
    vms: user.quotaVms ?? defaults.vms,
  };
}

export function toUserResponse(user: UserEntity, defaults: ResourceAmounts): UserResponseDto {
  const quota = effectiveQuota(user, defaults);
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    disabled: user.disabledAt !== null,
    quota: { vcpus: quota.vcpus, memory_mib: quota.memoryMib, gpus: quota.gpus, vms: quota.vms },
    usage: { vcpus: user.usedVcpus, memory_mib: user.usedMemoryMib, gpus: user.usedGpus, vms: user.usedVms },
    created_at: isoTime(user.createdAt),
    updated_at: isoTime(user.updatedAt),
  };
}
