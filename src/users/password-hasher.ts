import { Injectable } from '@nestjs/common';
import * as argon2 from 'argon2';

/** argon2id with OWASP's recommended minimum (19 MiB, t=2, p=1). */
@Injectable()
export class PasswordHasher {
  private static readonly options = { type: argon2.argon2id as 0 | 1 | 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 };
  /** Verified against when the username does not exist, so both paths cost the same. */
  private dummyHash: Promise<string> | null = null;

  hash(password: string): Promise<string> {
    return argon2.hash(password, PasswordHasher.options);
  }

  async verify(hash: string | null, password: string): Promise<boolean> {
    if (hash === null) {
      this.dummyHash ??= this.hash('not-a-real-password');
      await argon2.verify(await this.dummyHash, password).catch(() => false);
      return false;
    }
    return argon2.verify(hash, password).catch(() => false);
  }
}
