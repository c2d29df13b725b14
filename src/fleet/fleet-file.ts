import { readFileSync } from 'node:fs';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { flattenValidationErrors } from '../common/validation';
import { RegisterHostDto } from './dto/host.dto';

/** A fleet file the server cannot use; the message says what to fix, so no stack trace is needed. */
export class FleetFileError extends Error {
  override name = 'FleetFileError';
}

/**
 * Reads a fleet file: `{ "hosts": [ … ] }`, each host in the same shape as
 * the body of POST /hosts (see docs/fleet-file.md). Throws naming the file
 * and every invalid field.
 */
export function readFleetFile(path: string): RegisterHostDto[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FleetFileError(`Fleet file ${path} is not readable JSON: ${(error as Error).message}`);
  }
  const hosts = (parsed as { hosts?: unknown })?.hosts;
  if (!Array.isArray(hosts)) throw new FleetFileError(`Fleet file ${path} must be an object with a "hosts" array`);
  const problems: string[] = [];
  const result = hosts.map((raw, i) => {
    const dto = plainToInstance(RegisterHostDto, raw);
    const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true });
    for (const e of flattenValidationErrors(errors)) problems.push(`hosts[${i}].${e.field} ${e.message}`);
    return dto;
  });
  if (problems.length > 0) throw new FleetFileError(`Fleet file ${path} is invalid:\n  - ${problems.join('\n  - ')}`);
  return result;
}
