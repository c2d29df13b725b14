import type { FastifyReply, FastifyRequest } from 'fastify';
import { checkIdempotencyKey } from '../idempotency/idempotency.repository';
import type { VmOutcome } from './vm-outcome';
import type { RequestOptions } from './vms.service';
import { VmResponseDto } from './dto/vm-response.dto';

export interface Preferences {
  respondAsync: boolean;
  waitSeconds: number | null;
}

/** Parses RFC 7240 Prefer values; unknown preferences are ignored, as the RFC asks. */
export function parsePrefer(header: string | string[] | undefined): Preferences {
  const prefs: Preferences = { respondAsync: false, waitSeconds: null };
  const values = Array.isArray(header) ? header : header ? [header] : [];
  for (const value of values) {
    for (const item of value.split(',')) {
      const [token] = item.split(';');
      const [rawName, rawValue] = token.split('=');
      const name = rawName.trim().toLowerCase();
      if (name === 'respond-async') prefs.respondAsync = true;
      if (name === 'wait' && rawValue !== undefined) {
        const seconds = Number(rawValue.trim().replace(/^"(.*)"$/, '$1'));
        if (Number.isFinite(seconds) && seconds >= 0) prefs.waitSeconds = Math.floor(seconds);
      }
    }
  }
  return prefs;
}

export function requestOptions(request: FastifyRequest): RequestOptions {
  const prefs = parsePrefer(request.headers.prefer);
  return {
    respondAsync: prefs.respondAsync,
    waitSeconds: prefs.waitSeconds,
    idempotencyKey: checkIdempotencyKey(request.headers['idempotency-key'] as string | undefined),
    requestId: String(request.id),
  };
}

/** Sets the status and headers an outcome calls for, and returns the body. */
export function sendOutcome(reply: FastifyReply, outcome: VmOutcome): VmResponseDto {
  if (outcome.replayed) reply.header('idempotent-replayed', 'true');
  if (outcome.kind === 'done') {
    reply.status(outcome.status);
    if (outcome.status === 201) reply.header('location', `/vms/${outcome.vm.id}`);
    return outcome.vm;
  }
  reply.status(202);
  if (outcome.operationId) reply.header('location', `/operations/${outcome.operationId}`);
  if (outcome.queuePosition !== undefined) reply.header('queue-position', String(outcome.queuePosition));
  if (outcome.asyncRequested) reply.header('preference-applied', 'respond-async');
  return outcome.vm;
}
