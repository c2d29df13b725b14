import { findVgpuProfile, isKnownMigProfileName } from '../fleet/domain/gpu-profiles';
import { bestFitPolicy } from './policies/best-fit.policy';
import { firstFitPolicy } from './policies/first-fit.policy';
import { fragAwareBinpackPolicy } from './policies/frag-aware-binpack.policy';
import { randomFitPolicy } from './policies/random-fit.policy';
import { Placement, PlacementContext, PlacementPolicy, PlacementRequest, PolicyName, SchedulerHost } from './scheduler.types';

/** Chosen by the Alibaba replay in bench/placement.ts; see docs/benchmarks.md. */
export const DEFAULT_POLICY: PlacementPolicy = fragAwareBinpackPolicy;

export const POLICIES: Readonly<Record<PolicyName, PlacementPolicy>> = Object.freeze({
  'frag-aware-binpack': fragAwareBinpackPolicy,
  'first-fit': firstFitPolicy,
  'random-fit': randomFitPolicy,
  'best-fit': bestFitPolicy,
});

export function isPolicyName(name: string): name is PolicyName {
  return Object.prototype.hasOwnProperty.call(POLICIES, name);
}

export function getPolicy(name: string): PlacementPolicy {
  if (!isPolicyName(name)) {
    throw new RangeError(`unknown placement policy "${name}"; known: ${Object.keys(POLICIES).join(', ')}`);
  }
  return POLICIES[name];
}

/**
 * Picks a host and GPUs for the request, or null when nothing fits. Pure:
 * the caller applies the placement to its own state (and must serialize
 * decisions against that state).
 */
export function schedule(
  hosts: readonly SchedulerHost[],
  req: PlacementRequest,
  policy: PlacementPolicy = DEFAULT_POLICY,
  random: () => number = Math.random,
  context: PlacementContext = {},
): Placement | null {
  assertValidRequest(req);
  return policy.choose(hosts, req, random, context);
}

function assertValidRequest(req: PlacementRequest): void {
  for (const field of ['cpuCores', 'memoryMib', 'diskGib'] as const) {
    const value: number = req[field];
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`placement request ${field} must be a finite number ≥ 0, got ${value}`);
    }
  }
  if (!Number.isInteger(req.gpuCount) || req.gpuCount < 0) {
    throw new RangeError(`placement request gpuCount must be an integer ≥ 0, got ${req.gpuCount}`);
  }
  if (req.gpuProfile != null) {
    if (req.gpuCount !== 0) {
      throw new RangeError(`placement request asks for gpuProfile "${req.gpuProfile}" and gpuCount ${req.gpuCount}; give one of them`);
    }
    if (findVgpuProfile(req.gpuProfile) === null && !isKnownMigProfileName(req.gpuProfile)) {
      throw new RangeError(`placement request gpuProfile "${req.gpuProfile}" is neither a vGPU size nor a known MIG profile`);
    }
  }
}
