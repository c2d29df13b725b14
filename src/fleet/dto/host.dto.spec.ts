import { ArgumentMetadata } from '@nestjs/common';
import { ValidationFailedError } from '../../common/domain-errors';
import { StrictValidationPipe } from '../../common/validation';
import { UpdateUserDto } from '../../users/dto/user-admin.dto';
import { ListHostsQueryDto, RegisterHostDto, UpdateHostDto } from './host.dto';

const pipe = new StrictValidationPipe();

async function errorsFor(metatype: ArgumentMetadata['metatype'], body: unknown, type: ArgumentMetadata['type'] = 'body'): Promise<{ field: string; message: string }[]> {
  try {
    await pipe.transform(body, { type, metatype, data: '' });
    return [];
  } catch (error) {
    if (error instanceof ValidationFailedError) return error.errors;
    throw error;
  }
}

const STATES = 'must be one of the following values: active, draining, down';

describe('UpdateHostDto validation', () => {
  it('accepts any of name, labels and state alone or together, and an empty body', async () => {
    for (const body of [{}, { name: 'gpu-h100-09' }, { labels: [] }, { labels: ['rack-a12', 'nvlink'] }, { state: 'draining' }, { name: 'a', labels: ['x'], state: 'active' }]) {
      expect({ body, errors: await errorsFor(UpdateHostDto, body) }).toEqual({ body, errors: [] });
    }
    const dto = await pipe.transform({ name: 'gpu-2', state: 'down' }, { type: 'body', metatype: UpdateHostDto, data: '' });
    expect(dto).toBeInstanceOf(UpdateHostDto);
    expect(dto).toEqual({ name: 'gpu-2', state: 'down' });
  });

  it.each([
    [{ name: null }, 'name', 'must not be null'],
    [{ labels: null }, 'labels', 'must not be null'],
    [{ state: null }, 'state', 'must not be null'],
    [{ name: 42 }, 'name', 'must be a string'],
    [{ name: 'Upper_Case' }, 'name', 'must be a lowercase DNS name'],
    [{ labels: 'rack' }, 'labels', 'must be an array'],
    [{ labels: [1] }, 'labels', 'each value must be a string'],
    [{ labels: [''] }, 'labels', 'each value must be longer than or equal to 1 characters'],
    [{ labels: ['x'.repeat(64)] }, 'labels', 'each value must be shorter than or equal to 63 characters'],
    [{ labels: Array(33).fill('x') }, 'labels', 'must contain no more than 32 elements'],
    [{ state: 'removed' }, 'state', STATES],
    [{ state: 42 }, 'state', STATES],
    [{ region: 'us-east-1' }, 'region', 'is not a known field'],
    [{ gpus: [] }, 'gpus', 'is read-only'],
  ])('%j → %s %s', async (body, field, message) => {
    expect(await errorsFor(UpdateHostDto, body)).toEqual([{ field, message }]);
  });
});

describe('RegisterHostDto validation', () => {
  const host = { name: 'gpu-1', region: 'us-east-1', cpu_cores: 8, memory_mib: 8192, disk_gib: 100 };

  it('takes labels, and no state an admin may not set', async () => {
    expect(await errorsFor(RegisterHostDto, { ...host, labels: ['rack-1'], state: 'draining' })).toEqual([]);
    expect(await errorsFor(RegisterHostDto, { ...host, state: 'removed' })).toEqual([{ field: 'state', message: STATES }]);
    expect(await errorsFor(RegisterHostDto, { ...host, labels: [null] })).toEqual([{ field: 'labels', message: 'each value must be a string' }]);
  });
});

describe('ListHostsQueryDto validation', () => {
  it.each([
    [{}, undefined],
    [{ include_removed: 'true' }, true],
    [{ include_removed: 'false' }, false],
  ])('%j → include_removed %s', async (query, expected) => {
    const dto = (await pipe.transform(query, { type: 'query', metatype: ListHostsQueryDto, data: '' })) as ListHostsQueryDto;
    expect(dto.include_removed).toBe(expected);
  });

  it('refuses anything but true or false', async () => {
    expect(await errorsFor(ListHostsQueryDto, { include_removed: 'yes' }, 'query')).toEqual([{ field: 'include_removed', message: 'must be a boolean value' }]);
  });
});

describe('UpdateUserDto validation (OptionalNotNull)', () => {
  it.each([
    [{ role: null }, 'role'],
    [{ disabled: null }, 'disabled'],
  ])('%j is refused naming %s, not taken as absent', async (body, field) => {
    expect(await errorsFor(UpdateUserDto, body)).toEqual([{ field, message: 'must not be null' }]);
  });

  it('still takes absent fields and real values', async () => {
    expect(await errorsFor(UpdateUserDto, {})).toEqual([]);
    expect(await errorsFor(UpdateUserDto, { role: 'admin', disabled: false })).toEqual([]);
    expect(await errorsFor(UpdateUserDto, { disabled: 'no' })).toEqual([{ field: 'disabled', message: 'must be a boolean value' }]);
  });
});
