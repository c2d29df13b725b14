import { Entity, PrimaryColumn } from 'typeorm';

/** One row per (VM, label), indexed by label, so ?label= filters use an index. Written with the VM, never changed. */
@Entity('vm_labels')
export class VmLabelEntity {
  @PrimaryColumn({ name: 'vm_id', type: 'uuid' })
  vmId: string;

  @PrimaryColumn({ type: 'varchar', length: 63 })
  label: string;
}
