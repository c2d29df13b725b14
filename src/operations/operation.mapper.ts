import { isoTime } from '../common/iso-time';
import { statusForCode } from '../common/problem-details';
import { OperationResponseDto } from './dto/operation.dto';
import type { OperationEntity } from './operation.entity';

/** `queuePosition`: for a waiting operation, where it stands in its queue (read separately, for one operation). */
export function toOperationResponse(op: OperationEntity, queuePosition: number | null = null): OperationResponseDto {
  return {
    id: op.id,
    vm_id: op.vmId,
    action: op.action,
    status: op.status,
    stage: op.stage,
    attempts: op.attempts,
    error: op.errorCode ? { code: op.errorCode, message: op.errorMessage ?? '' } : null,
    http_error_status_code: op.errorCode ? statusForCode(op.errorCode) : null,
    user_id: op.userId,
    hypervisor_vm_id: op.hypervisorVmId,
    request_id: op.requestId,
    self_link: `/operations/${op.id}`,
    target_link: op.vmId ? `/vms/${op.vmId}` : null,
    created_at: isoTime(op.createdAt),
    updated_at: isoTime(op.updatedAt),
    started_at: op.startedAt ? isoTime(op.startedAt) : null,
    finished_at: op.finishedAt ? isoTime(op.finishedAt) : null,
    deadline_at: op.deadlineAt ? isoTime(op.deadlineAt) : null,
    queue_position: queuePosition,
  };
}
