import { ApiProperty } from '@nestjs/swagger';

export enum DriftKind {
  Orphan = 'orphan',
  FailedVmOnHypervisor = 'failed_vm_on_hypervisor',
  MissingFromHypervisor = 'missing_from_hypervisor',
  StuckVm = 'stuck_vm',
  /** A VM another installation made on the same hosts: reported, never touched. */
  ForeignVm = 'foreign_vm',
  /** A host URI that did not answer: its VMs are unknown, not gone, and are left as they are. */
  HostUnreachable = 'host_unreachable',
}

export class DriftDto {
  @ApiProperty({ enum: DriftKind, enumName: 'DriftKind' })
  kind: DriftKind;

  @ApiProperty({ nullable: true, type: String, format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  vm_id: string | null;

  @ApiProperty({ nullable: true, type: String, example: '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f' })
  hypervisor_vm_id: string | null;

  @ApiProperty({ example: 'deleted from the hypervisor' })
  action: string;

  @ApiProperty({ example: true })
  resolved: boolean;
}

export class ReconciliationReportDto {
  @ApiProperty({ format: 'uuid', example: '019abcde-1234-7000-8000-0123456789ab' })
  id: string;

  @ApiProperty({
    format: 'uuid',
    example: '019abcde-0000-7000-8000-00000000cafe',
    description: 'This installation: the id its VMs carry on the hypervisor; VMs carrying another are foreign and left alone',
  })
  installation_id: string;

  @ApiProperty({ format: 'date-time', example: '2026-11-26T23:26:55.123Z' })
  started_at: string;

  @ApiProperty({ format: 'date-time', nullable: true, type: String, example: '2026-11-26T23:26:55.123Z' })
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

  @ApiProperty({ example: 0, description: 'VMs of other installations on the same hypervisors: reported in drift, never touched' })
  foreign_vms: number;

  @ApiProperty({ type: [DriftDto] })
  drift: DriftDto[];

  @ApiProperty({ nullable: true, type: String, example: null, description: 'Why the pass stopped early, if it did' })
  error: string | null;
}
