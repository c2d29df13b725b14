import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { ConflictError, NotFoundError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { constraintViolation } from '../database/constraint-violation';
import { UnitOfWork } from '../database/unit-of-work';
import { AddSshKeyDto, SshKeyListDto, SshKeyResponseDto } from './dto/ssh-key.dto';
import { SshKeyEntity } from './ssh-key.entity';
import { toSshKeyResponse } from './ssh-key.mapper';
import { SshKeysRepository } from './ssh-keys.repository';
import { SshKeyParseError, parseSshPublicKey } from './ssh-public-key';

/** Keys per user: far more than anyone types by hand, and it bounds GET /ssh-keys. */
export const MAX_SSH_KEYS_PER_USER = 100;

@Injectable()
export class SshKeysService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly keys: SshKeysRepository,
    private readonly ids: IdGenerator,
  ) {}

  async add(user: AuthUser, dto: AddSshKeyDto): Promise<SshKeyResponseDto> {
    let parsed;
    try {
      parsed = parseSshPublicKey(dto.public_key);
    } catch (error) {
      if (error instanceof SshKeyParseError) throw new ValidationFailedError([{ field: 'public_key', message: error.message }]);
      throw error;
    }
    const key = Object.assign(new SshKeyEntity(), {
      id: this.ids.next(),
      ownerId: user.id,
      name: dto.name,
      publicKey: parsed.line,
      keyType: parsed.type,
      fingerprint: parsed.fingerprint,
      comment: parsed.comment,
    });
    try {
      await this.uow.transaction(async (tx) => {
        if (await this.keys.existsByName(tx, user.id, dto.name)) throw keyExists(dto.name);
        if ((await this.keys.countByOwner(tx, user.id)) >= MAX_SSH_KEYS_PER_USER) {
          throw new ConflictError('too_many_ssh_keys', `You have ${MAX_SSH_KEYS_PER_USER} SSH keys, the most allowed; delete one first`);
        }
        await this.keys.insert(tx, key);
      });
    } catch (error) {
      if (constraintViolation(error)?.kind === 'unique') throw keyExists(dto.name);
      throw error;
    }
    return toSshKeyResponse(key);
  }

  async list(user: AuthUser): Promise<SshKeyListDto> {
    const rows = await this.uow.read((tx) => this.keys.listByOwner(tx, user.id, MAX_SSH_KEYS_PER_USER));
    return { items: rows.map(toSshKeyResponse) };
  }

  /** Deletes one of the caller's keys; VMs made with it keep it. Another user's key is not found. */
  async delete(user: AuthUser, id: string): Promise<void> {
    const deleted = await this.uow.transaction((tx) => this.keys.delete(tx, user.id, id));
    if (!deleted) throw new NotFoundError('ssh_key', id);
  }
}

function keyExists(name: string): ConflictError {
  return new ConflictError('ssh_key_exists', `You already have an SSH key named ${name}`, { field: 'name' });
}
