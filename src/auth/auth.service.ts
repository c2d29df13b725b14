import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { InvalidCredentialsError, TooManyLoginAttemptsError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';
import { UnitOfWork } from '../database/unit-of-work';
import { UsersRepository } from '../users/users.repository';
import { TokenRequestDto, TokenResponseDto, TokenType } from './dto/token.dto';
import { LoginThrottle } from './login-throttle';
import { PasswordHasher } from '../users/password-hasher';

@Injectable()
export class AuthService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly users: UsersRepository,
    private readonly hasher: PasswordHasher,
    private readonly throttle: LoginThrottle,
    private readonly jwt: JwtService,
    private readonly config: AppConfig,
  ) {}

  async issueToken(form: TokenRequestDto): Promise<TokenResponseDto> {
    // Read before the lock is looked at: a lock set before an admin reset the password has ended (LoginThrottle).
    const found = await this.uow.read((tx) => this.users.findByUsername(tx, form.username));
    const version = found?.tokenVersion ?? null;
    const retryAfter = this.throttle.retryAfter(form.username, version);
    if (retryAfter > 0) throw new TooManyLoginAttemptsError(retryAfter);

    // A disabled or deleted user is checked like an unknown one: same cost, same answer.
    const user = found && !found.disabledAt && !found.deletedAt ? found : null;
    const valid = await this.hasher.verify(user?.passwordHash ?? null, form.password);
    if (!user || !valid) {
      this.throttle.recordFailure(form.username, version);
      throw new InvalidCredentialsError();
    }
    this.throttle.recordSuccess(form.username);
    // `ver`: a password change, a disable or a delete bumps the user's version, and tokens carrying an older one stop working.
    const accessToken = await this.jwt.signAsync({ sub: user.id, role: user.role, ver: user.tokenVersion });
    return { access_token: accessToken, token_type: TokenType.Bearer, expires_in: this.config.jwtTtlSeconds };
  }
}
