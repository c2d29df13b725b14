import { isoTime } from '../common/iso-time';
import { SshKeyResponseDto } from './dto/ssh-key.dto';
import type { SshKeyEntity } from './ssh-key.entity';

export function toSshKeyResponse(key: SshKeyEntity): SshKeyResponseDto {
  return {
    id: key.id,
    name: key.name,
    public_key: key.publicKey,
    type: key.keyType,
    fingerprint: key.fingerprint,
    comment: key.comment,
    created_at: isoTime(key.createdAt),
  };
}
