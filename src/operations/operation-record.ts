import { OperationAction, OperationStatus } from './operation.entity';

export interface OperationRecord {
  id: string;
  vmId: string | null;
  action: OperationAction;
  status: OperationStatus;
  stage: string;
  attempts: number;
  errorCode: string | null;
  errorMessage: string | null;
  userId: string | null;
  hypervisorVmId: string | null;
  requestId: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const OPEN_STATUSES: readonly OperationStatus[] = [OperationStatus.Pending, OperationStatus.Running];

export function isFinished(op: Pick<OperationRecord, 'status'>): boolean {
  return op.status === OperationStatus.Succeeded || op.status === OperationStatus.Failed;
}
