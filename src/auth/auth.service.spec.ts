import { JwtService } from '@nestjs/jwt';
import { InvalidCredentialsError, TooManyLoginAttemptsError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';
import { UnitOfWork } from '../database/unit-of-work';
import { PasswordHasher } from '../users/password-hasher';
import { UserRole } from '../common/user-role';
import { UserEntity } from '../users/user.entity';
import { UsersRepository } from '../users/users.repository';
import { AuthService } from './auth.service';
import { LoginThrottle } from './login-throttle';

describe(AuthService.name, () => {
  const user = Object.assign(new UserEntity(), { id: 'u1', username: 'alice', passwordHash: 'hash', role: UserRole.Member, tokenVersion: 3, disabledAt: null, deletedAt: null });
  let users: jest.Mocked<Pick<UsersRepository, 'findByUsername'>>;
  let hasher: jest.Mocked<Pick<PasswordHasher, 'verify'>>;
  let throttle: jest.Mocked<Pick<LoginThrottle, 'retryAfter' | 'recordFailure' | 'recordSuccess'>>;
  let jwt: jest.Mocked<Pick<JwtService, 'signAsync'>>;
  let service: AuthService;

  beforeEach(() => {
    users = { findByUsername: jest.fn() };
    hasher = { verify: jest.fn() };
    throttle = { retryAfter: jest.fn().mockReturnValue(0), recordFailure: jest.fn(), recordSuccess: jest.fn() };
    jwt = { signAsync: jest.fn().mockResolvedValue('signed') };
    const uow = { read: (work: (tx: unknown) => unknown) => work({}) };
    service = new AuthService(
      uow as unknown as UnitOfWork,
      users as unknown as UsersRepository,
      hasher as unknown as PasswordHasher,
      throttle as unknown as LoginThrottle,
      jwt as unknown as JwtService,
      { jwtTtlSeconds: 900 } as AppConfig,
    );
  });

  it('signs a token with sub, role and the user’s token version when the password verifies', async () => {
    users.findByUsername.mockResolvedValue(user);
    hasher.verify.mockResolvedValue(true);
    await expect(service.issueToken({ username: 'alice', password: 'pw' })).resolves.toEqual({
      access_token: 'signed',
      token_type: 'bearer',
      expires_in: 900,
    });
    expect(jwt.signAsync).toHaveBeenCalledWith({ sub: 'u1', role: 'member', ver: 3 });
    expect(throttle.recordSuccess).toHaveBeenCalledWith('alice');
  });

  it('verifies against a dummy hash for unknown users and records the failure', async () => {
    users.findByUsername.mockResolvedValue(null);
    hasher.verify.mockResolvedValue(false);
    await expect(service.issueToken({ username: 'ghost', password: 'pw' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(hasher.verify).toHaveBeenCalledWith(null, 'pw');
    expect(users.findByUsername).toHaveBeenCalledWith({}, 'ghost');
    expect(throttle.recordFailure).toHaveBeenCalledWith('ghost', null);
  });

  it.each([
    ['disabled', { disabledAt: new Date() }],
    ['deleted', { deletedAt: new Date() }],
  ])('answers a %s user as if unknown, at the same cost (a dummy verify)', async (_, state) => {
    users.findByUsername.mockResolvedValue(Object.assign(new UserEntity(), user, state));
    hasher.verify.mockResolvedValue(false);
    await expect(service.issueToken({ username: 'alice', password: 'pw' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(hasher.verify).toHaveBeenCalledWith(null, 'pw');
    expect(jwt.signAsync).not.toHaveBeenCalled();
  });

  it('refuses a locked username before looking at the password, asking about the lock with the user’s token version', async () => {
    users.findByUsername.mockResolvedValue(user);
    throttle.retryAfter.mockReturnValue(42);
    const error = await service.issueToken({ username: 'alice', password: 'right' }).catch((e) => e);
    expect(error).toBeInstanceOf(TooManyLoginAttemptsError);
    expect(error.retryAfterSeconds).toBe(42);
    expect(throttle.retryAfter).toHaveBeenCalledWith('alice', 3);
    expect(hasher.verify).not.toHaveBeenCalled();
  });

  it('records a failure with the user’s token version, so a lock it sets ends when the version moves on', async () => {
    users.findByUsername.mockResolvedValue(user);
    hasher.verify.mockResolvedValue(false);
    await expect(service.issueToken({ username: 'alice', password: 'wrong' })).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(throttle.recordFailure).toHaveBeenCalledWith('alice', 3);
  });
});
