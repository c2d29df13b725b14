import { isoTime } from '../common/iso-time';
import { defaultLimits, type QuotaDefaults, type ResourceAmounts } from './users.repository';
import { UserResponseDto } from './dto/user.dto';
import { UserEntity } from './user.entity';

export function effectiveQuota(user: UserEntity, defaults: QuotaDefaults): ResourceAmounts {
  const fallback = defaultLimits(defaults);
  return {
    vcpus: user.quotaVcpus ?? fallback.vcpus,
    memoryMib: user.quotaMemoryMib ?? fallback.memoryMib,
    gpuMilli: user.quotaGpuMilli ?? fallback.gpuMilli,
    vms: user.quotaVms ?? fallback.vms,
  };
}

/** GPUs as the API shows them: whole GPUs (fractional when a profile is held) and the exact milli-GPUs. */
function gpuAmounts(milli: number): { gpus: number; gpu_milli: number } {
  return { gpus: milli / 1000, gpu_milli: milli };
}

export function toUserResponse(user: UserEntity, defaults: QuotaDefaults): UserResponseDto {
  const quota = effectiveQuota(user, defaults);
  return {
    id: user.id,
    username: user.username,
    role: user.role,
    disabled: user.disabledAt !== null,
    quota: { vcpus: quota.vcpus, memory_mib: quota.memoryMib, ...gpuAmounts(quota.gpuMilli), vms: quota.vms },
    usage: { vcpus: user.usedVcpus, memory_mib: user.usedMemoryMib, ...gpuAmounts(user.usedGpuMilli), vms: user.usedVms },
    created_at: isoTime(user.createdAt),
    updated_at: isoTime(user.updatedAt),
  };
}
