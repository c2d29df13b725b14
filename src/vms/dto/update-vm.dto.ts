import { Labels } from '../../common/labels.decorator';
import { OptionalNotNull } from '../../common/validation';
import { VmName } from './create-vm.dto';

/** A VM's new name or labels (the labels replace the old ones); at least one must be sent, neither may be null. */
export class UpdateVmDto {
  @OptionalNotNull()
  @VmName(false)
  name?: string;

  @OptionalNotNull()
  @Labels(['team-a', 'experiment-7'])
  labels?: string[];
}
