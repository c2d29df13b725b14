import { ArgumentMetadata } from '@nestjs/common';
import { ValidationFailedError } from '../../common/domain-errors';
import { StrictValidationPipe } from '../../common/validation';
import { CreateVmDto } from './create-vm.dto';

const pipe = new StrictValidationPipe();
const meta: ArgumentMetadata = { type: 'body', metatype: CreateVmDto, data: '' };
const valid = { name: 'test-vm', cpu_cores: 2, memory: 4096, disk_size: 50, public_ip: '192.168.1.1', labels: ['test'] };

async function errorsFor(body: unknown): Promise<{ field: string; message: string }[]> {
  try {
    await pipe.transform(body, meta);
    return [];
  } catch (error) {
    if (error instanceof ValidationFailedError) return error.errors;
    throw error;
  }
}

describe('CreateVmDto validation', () => {
  it('accepts the original request and returns a DTO instance', async () => {
    const dto = await pipe.transform(valid, meta);
    expect(dto).toBeInstanceOf(CreateVmDto);
    expect(dto).toEqual(valid);
  });

  it.each([
    ['a', true],
    ['a'.repeat(63), true],
    ['web-01', true],
    ['a'.repeat(64), false],
    ['Web', false],
    ['web_01', false],
    ['-web', false],
    ['web-', false],
    ['', false],
  ])('name %j valid=%s (a DNS label)', async (name, ok) => {
    expect(await errorsFor({ ...valid, name })).toEqual(ok ? [] : [expect.objectContaining({ field: 'name' })]);
  });

  it.each([
    ['cpu_cores', 1, true],
    ['cpu_cores', 256, true],
    ['cpu_cores', 0, false],
    ['cpu_cores', 257, false],
    ['cpu_cores', 2.5, false],
    ['memory', 256, true],
    ['memory', 4_194_304, true],
    ['memory', 255, false],
    ['memory', 4_194_305, false],
    ['disk_size', 1, true],
    ['disk_size', 65_536, true],
    ['disk_size', 0, false],
    ['disk_size', 65_537, false],
    ['gpu_count', 0, true],
    ['gpu_count', 8, true],
    ['gpu_count', 9, false],
  ])('%s = %j valid=%s', async (field, value, ok) => {
    expect(await errorsFor({ ...valid, [field]: value })).toEqual(ok ? [] : [expect.objectContaining({ field })]);
  });

  it('checks public_ip as IPv4 or IPv6, and allows null or absence', async () => {
    expect(await errorsFor({ ...valid, public_ip: '::1' })).toEqual([]);
    expect(await errorsFor({ ...valid, public_ip: null })).toEqual([]);
    const { public_ip: _omit, ...without } = valid;
    expect(await errorsFor(without)).toEqual([]);
    expect(await errorsFor({ ...valid, public_ip: '1.2.3' })).toEqual([{ field: 'public_ip', message: 'must be a valid IPv4 or IPv6 address' }]);
  });

  it('limits labels to 32 strings of 1–63 characters', async () => {
    expect(await errorsFor({ ...valid, labels: Array(32).fill('x'.repeat(63)) })).toEqual([]);
    expect(await errorsFor({ ...valid, labels: Array(33).fill('x') })).toEqual([expect.objectContaining({ field: 'labels' })]);
    expect(await errorsFor({ ...valid, labels: ['x'.repeat(64)] })).toEqual([expect.objectContaining({ field: 'labels' })]);
    expect(await errorsFor({ ...valid, labels: [''] })).toEqual([expect.objectContaining({ field: 'labels' })]);
  });

  it('names required fields, unknown fields and read-only fields', async () => {
    expect(await errorsFor({})).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'cpu_cores', message: 'is required' },
      { field: 'memory', message: 'is required' },
      { field: 'disk_size', message: 'is required' },
    ]);
    expect(await errorsFor({ ...valid, status: 'created', id: 'x', color: 'red' })).toEqual(
      expect.arrayContaining([
        { field: 'status', message: 'is read-only' },
        { field: 'id', message: 'is read-only' },
        { field: 'color', message: 'is not a known field' },
      ]),
    );
  });

  it('does not coerce strings into numbers', async () => {
    expect(await errorsFor({ ...valid, cpu_cores: '2' })).toEqual([expect.objectContaining({ field: 'cpu_cores' })]);
  });

  it('refuses a body that is not a JSON object', async () => {
    for (const body of [[], 'text', 42]) {
      expect(await errorsFor(body)).toEqual([{ field: 'body', message: 'must be a JSON object' }]);
    }
  });

  it.each([
    [{ image: 'debian-12.qcow2' }, []],
    [{ image: '../etc/passwd' }, ['image']],
    [{ image: 'a'.repeat(65) }, ['image']],
    [{ ssh_keys: ['laptop', 'desk_1'] }, []],
    [{ ssh_keys: ['laptop', 'laptop'] }, ['ssh_keys']],
    [{ ssh_keys: ['has space'] }, ['ssh_keys']],
    [{ ssh_keys: Array.from({ length: 33 }, (_, i) => `k${i}`) }, ['ssh_keys']],
    [{ ssh_keys: 'laptop' }, ['ssh_keys']],
    [{ user_data: 'x'.repeat(16_384) }, []],
    [{ user_data: 'x'.repeat(16_385) }, ['user_data']],
    // 8193 two-byte characters are fewer than 16 Ki characters but 16 KiB + 2 bytes of UTF-8.
    [{ user_data: 'é'.repeat(8_193) }, ['user_data']],
    [{ user_data: 42 }, ['user_data']],
  ])('image, ssh_keys and user_data: %j → errors on %j', async (extra, fields) => {
    const errors = await errorsFor({ ...valid, ...extra });
    expect(errors.map((e) => e.field)).toEqual(fields);
  });

  it('user_data over the limit names the limit in bytes', async () => {
    const [error] = await errorsFor({ ...valid, user_data: 'é'.repeat(8_193) });
    expect(error).toEqual({ field: 'user_data', message: 'must be at most 16384 bytes (16 KiB) in UTF-8' });
  });
});
