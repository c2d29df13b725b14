/** What a verified token's payload must carry to be remembered: its expiry, and when it starts to count. */
export interface VerifiedClaims {
  exp?: unknown;
  nbf?: unknown;
}

/**
 * Tokens whose signature, algorithm, issuer and audience were verified, by
 * their exact text, until they expire. Verifying an HS256 token (two base64
 * decodes and JSON parses of its header and payload, an HMAC) was an eighth of
 * the CPU of `GET /vms/{id}` (docs/benchmarks.md); a client sends the same
 * token with every request until it expires. A token's text is what was
 * verified, so a remembered one cannot be altered; its time claims are
 * checked again on every use with jsonwebtoken's rules, and a token only
 * enters after a full verification, so an unauthenticated caller cannot fill
 * the map. It is bounded: the oldest entry leaves when it is full. Who the
 * token names is not remembered here: the strategy looks the user up on every
 * request, so a role or password change still counts at once.
 */
export class VerifiedTokens<C extends VerifiedClaims> {
  private readonly claims = new Map<string, C>();

  constructor(private readonly capacity: number) {}

  /** Remembers a token that has just passed full verification; one without a numeric expiry is not remembered. */
  remember(token: string, claims: C): void {
    if (typeof claims.exp !== 'number' || this.claims.has(token)) return;
    if (this.claims.size >= this.capacity) this.claims.delete(this.claims.keys().next().value as string);
    this.claims.set(token, claims);
  }

  /**
   * The claims of a remembered token that is valid at `nowMs`, as jsonwebtoken
   * would judge it with no clock tolerance; otherwise undefined (an expired
   * one is forgotten, and verifying it again gives the caller the reason).
   */
  valid(token: string, nowMs: number): C | undefined {
    const claims = this.claims.get(token);
    if (!claims) return undefined;
    const now = Math.floor(nowMs / 1000);
    if (now >= (claims.exp as number)) {
      this.claims.delete(token);
      return undefined;
    }
    if (typeof claims.nbf === 'number' && claims.nbf > now) return undefined;
    return claims;
  }

  get size(): number {
    return this.claims.size;
  }
}
