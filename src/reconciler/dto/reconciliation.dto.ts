import { ApiProperty } from '@nestjs/swagger';

export enum DriftKind {
  Orphan = 'orphan',
  FailedVmOnHypervisor = 'failed_vm_on_hypervisor',
  MissingFromHypervisor = 'missing_from_hypervisor',
  StuckVm = 'stuck_vm',
}

export class DriftDto {
  @ApiProperty({ enum: DriftKind, enumName: 'DriftKind' })
  kind: DriftKind;

  @ApiProperty({ nullable: true, type: String, format: 'uuid' })
  vm_id: string | null;

  @ApiProperty({ nullable: true, type: String })
  hypervisor_vm_id: string | null;

  @ApiProperty({ example: 'deleted from the hypervisor' })
  action: string;

  @ApiProperty({ example: true })
  resolved: boolean;
}

export class ReconciliationReportDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'date-time' })
  started_at: string;

  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  finished_at: string | null;

  @ApiProperty({ example: 12, description: 'VMs the hypervisor listed' })
  hypervisor_vms: number;

  @ApiProperty({ example: 1 })
  orphans_found: number;

  @ApiProperty({ example: 1 })
  orphans_removed: number;

  @ApiProperty({ example: 0, description: 'Unfinished operations whose worker had gone, handed to workers again' })
  stuck_operations_resumed: number;

  @ApiProperty({ example: 0, description: 'Live VMs missing from the hypervisor, marked failed' })
  missing_vms_failed: number;

  @ApiProperty({ type: [DriftDto] })
  drift: DriftDto[];

  @ApiProperty({ nullable: true, type: String })
  error: string | null;
}
