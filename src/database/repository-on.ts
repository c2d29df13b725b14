import type { ObjectLiteral, Repository } from 'typeorm';
import type { Tx } from './unit-of-work';

/**
 * The injected repository, working on the unit's connection: the same
 * instance when the unit is the data source's own manager, the transaction's
 * repository (cached per manager by TypeORM) otherwise.
 */
export function on<E extends ObjectLiteral>(repository: Repository<E>, tx: Tx): Repository<E> {
  return tx === repository.manager ? repository : tx.getRepository<E>(repository.target);
}
