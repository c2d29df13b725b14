import { Injectable, Logger } from '@nestjs/common';
import { IdGenerator } from '../common/id-generator';
import { UnitOfWork } from '../database/unit-of-work';
import { InstallationRepository } from './installation.repository';

/**
 * Who this control plane is. Every VM it makes on a hypervisor carries this
 * id in its metadata; the reconciler touches only VMs that carry it, so a
 * staging and a production installation (or the demo and a real one) that
 * see the same hosts never delete each other's VMs.
 */
@Injectable()
export class InstallationService {
  private readonly logger = new Logger(InstallationService.name);
  private loaded: Promise<string> | null = null;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly installations: InstallationRepository,
    private readonly ids: IdGenerator,
  ) {}

  /** The id, made and stored at the first start; read once per process. */
  id(): Promise<string> {
    this.loaded ??= this.uow
      .transaction((tx) => this.installations.ensure(tx, this.ids.next()))
      .then((row) => {
        this.logger.log(`Installation ${row.id}`);
        return row.id;
      })
      .catch((error: unknown) => {
        this.loaded = null;
        throw error;
      });
    return this.loaded;
  }
}
