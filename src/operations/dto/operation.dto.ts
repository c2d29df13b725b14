import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsUUID } from 'class-validator';
import { PageQueryDto } from '../../common/page-query.dto';
import { OperationAction, OperationStatus } from '../operation.entity';

export interface OperationErrorDto {
  code: string;
  message: string;
}

/** Modelled on GCE's Operation resource. */
export class OperationResponseDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({ format: 'uuid', nullable: true, type: String, example: '019abcde-1234-7000-8000-0123456789ab' })
  vm_id: string | null;

  @ApiProperty({ enum: OperationAction, enumName: 'OperationAction' })
  action: OperationAction;

  @ApiProperty({ enum: OperationStatus, enumName: 'OperationStatus' })
  status: OperationStatus;

  @ApiProperty({ example: 'calling_hypervisor', description: 'queued, calling_hypervisor, backoff (waiting to retry) or done' })
  stage: string;

  @ApiProperty({ example: 1, description: 'Hypervisor call attempts, including retries and resumptions after a crash' })
  attempts: number;

  // Inline rather than a $ref: OpenAPI 3.0 ignores `nullable` beside a $ref (allOf), so validators and generators read null as invalid.
  @ApiProperty({
    type: 'object',
    nullable: true,
    selfRequired: true,
    required: ['code', 'message'],
    properties: {
      code: { type: 'string', example: 'insufficient_capacity' },
      message: { type: 'string', example: 'No resources available to create a new virtual machine' },
    },
    example: null,
    description: 'Why the operation failed; null unless it failed',
  })
  error: OperationErrorDto | null;

  @ApiProperty({ nullable: true, type: Number, example: null, description: 'The HTTP status the failure maps to' })
  http_error_status_code: number | null;

  @ApiProperty({ format: 'uuid', nullable: true, type: String, description: 'The acting user; null for the system', example: '019abcde-1234-7000-8000-0123456789ab' })
  user_id: string | null;

  @ApiProperty({ nullable: true, type: String, description: 'The hypervisor VM a cleanup removed', example: null })
  hypervisor_vm_id: string | null;

  @ApiProperty({ nullable: true, type: String, example: '3f2a9c1e-7d0b-4a8e-9a5e-2f1c0b9d8e7a' })
  request_id: string | null;

  @ApiProperty({ example: '/operations/019abcde-0000-7000-8000-000000000000' })
  self_link: string;

  @ApiProperty({ nullable: true, type: String, example: '/vms/019abcde-0000-7000-8000-000000000000' })
  target_link: string | null;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  created_at: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  updated_at: string;

  @ApiProperty({ format: 'date-time', nullable: true, type: String, example: '2026-11-26T23:26:55.123Z' })
  started_at: string | null;

  @ApiProperty({ format: 'date-time', nullable: true, type: String, example: '2026-11-26T23:26:55.123Z' })
  finished_at: string | null;

  @ApiProperty({ format: 'date-time', nullable: true, type: String, example: null, description: 'While waiting_for_capacity: when the wait ends and the operation fails with insufficient_capacity' })
  deadline_at: string | null;

  @ApiProperty({ nullable: true, type: Number, example: null, description: 'While waiting_for_capacity: 1 for the head of its queue (GPU model and region)' })
  queue_position: number | null;
}

export class OperationPageDto {
  @ApiProperty({ type: [OperationResponseDto] })
  items: OperationResponseDto[];

  @ApiProperty({ nullable: true, type: String, example: null, description: 'Pass as ?cursor= for the next page; null on the last page' })
  next_cursor: string | null;
}

export class ListOperationsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ format: 'uuid', description: "Only this VM's operations" })
  @IsOptional()
  @IsUUID('all', { message: 'must be a UUID' })
  vm_id?: string;
}
