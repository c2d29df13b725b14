import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class FieldErrorDto {
  @ApiProperty({ example: 'cpu_cores', description: 'The offending field (a JSON property, query parameter or header)' })
  field: string;

  @ApiProperty({ example: 'must be an integer' })
  message: string;
}

export class CapacityAlternativeDto {
  @ApiProperty({ nullable: true, type: String, example: 'a100-80gb' })
  gpu_model: string | null;

  @ApiProperty({ example: 8, description: '0 for a fractional alternative (gpu_profile)' })
  gpu_count: number;

  @ApiPropertyOptional({ type: String, example: '1g.18gb', description: 'A vGPU size or MIG profile that fits now (for requests that asked for a gpu_profile)' })
  gpu_profile?: string;

  @ApiProperty({ example: 'us-east-1' })
  region: string;
}

/** RFC 9457 problem details, with vmplane's extension members. */
export class ProblemDetailsDto {
  @ApiProperty({ example: 'https://vmplane.dev/problems/validation_failed' })
  type: string;

  @ApiProperty({ example: 'Bad Request' })
  title: string;

  @ApiProperty({ example: 400 })
  status: number;

  @ApiProperty({ example: 'Invalid request: cpu_cores must be an integer' })
  detail: string;

  @ApiProperty({ example: '/vms' })
  instance: string;

  @ApiProperty({ example: 'validation_failed', description: 'A stable, machine-readable error code' })
  code: string;

  @ApiPropertyOptional({ example: 'req-3f2a9c' })
  request_id?: string;

  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'For validation_failed: at most 10 field errors' })
  errors?: FieldErrorDto[];

  @ApiPropertyOptional({ description: 'For validation_failed: how many field errors were not listed', example: 192 })
  more_errors?: number;

  @ApiPropertyOptional({ description: 'For payload_too_large: the largest body accepted, in bytes', example: 1048576 })
  limit_bytes?: number;

  @ApiPropertyOptional({ description: 'For unsupported_media_type: the media types this operation takes', example: ['application/json'], type: [String] })
  accepted?: string[];

  @ApiPropertyOptional({ description: 'For method_not_allowed: the methods this path takes (also in Allow)', example: ['GET', 'HEAD', 'POST'], type: [String] })
  allowed?: string[];

  @ApiPropertyOptional({ type: [CapacityAlternativeDto], description: 'For insufficient_capacity: what fits now' })
  alternatives?: CapacityAlternativeDto[];

  @ApiPropertyOptional({ description: 'For quota_exceeded: the limit that was hit', example: 'gpus' })
  limit?: string;

  @ApiPropertyOptional({ example: 8 })
  quota?: number;

  @ApiPropertyOptional({ example: 8 })
  used?: number;

  @ApiPropertyOptional({ example: 1 })
  requested?: number;

  @ApiPropertyOptional({ description: 'The VM the failed request created, when one was recorded', example: '019abcde-1234-7000-8000-0123456789ab' })
  vm_id?: string;

  @ApiPropertyOptional({ description: 'For not_found: the kind of resource', example: 'vm' })
  resource?: string;

  @ApiPropertyOptional({ description: 'For public_ip_in_use, host_exists on a rename and unsatisfiable: the request field at fault', example: 'public_ip' })
  field?: string;

  @ApiPropertyOptional({ description: 'For unsatisfiable: why no host could ever hold the request', example: 'no host has GPU model b200-192gb' })
  reason?: string;

  @ApiPropertyOptional({
    description: 'For unsatisfiable: what exists instead (regions, gpu_models, max_gpu_count or largest_host)',
    example: { gpu_models: ['a100-80gb', 'h100-80gb'] },
  })
  available?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'For user_has_vms: how many VMs the user still holds; for host_has_vms: how many live on the host', example: 2 })
  live_vms?: number;

  @ApiPropertyOptional({ description: 'For host_has_vms: how many shelved VMs are pinned to the host', example: 1 })
  shelved_vms?: number;

  @ApiPropertyOptional({ description: 'For host_removed: the removed host', example: '019abcde-1234-7000-8000-0123456789ab' })
  host_id?: string;

  @ApiPropertyOptional({ description: 'For invalid_state: the status the VM is in', example: 'created' })
  current_status?: string;

  @ApiPropertyOptional({ description: 'For invalid_state: the VM\'s power state', example: 'shut_off' })
  power_state?: string;

  @ApiPropertyOptional({ description: 'For invalid_state: the actions the VM accepts now', example: ['delete', 'start', 'shelve', 'resize'], type: [String] })
  allowed_actions?: string[];

  @ApiPropertyOptional({ description: 'For operation_in_progress: the operation the VM is busy with', example: '019abcde-1234-7000-8000-0123456789ab' })
  operation_id?: string;

  @ApiPropertyOptional({ description: 'For gpu_exists: the GPU UUIDs already registered', example: ['GPU-3b6c5a73-17c2-f319-c5b0-563912c55e13'], type: [String] })
  gpu_uuids?: string[];

  @ApiPropertyOptional({ description: 'For not_ready: each dependency and its state', example: { database: 'ok', hypervisor: 'not authenticated: Invalid API key' } })
  checks?: Record<string, string>;
}
