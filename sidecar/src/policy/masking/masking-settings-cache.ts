import type { Identity } from '../../identity/identity.ts';
import type { Policy } from '../load-policy.ts';
import {
  type AccessExemption,
  type MaskingSettings,
  maskingFor,
  nextExemptionExpiry,
} from './masking-for.ts';

/** The approved access requests of identities (the ApprovalBook), read once per change. */
export interface AccessExemptionSource {
  /** Changes whenever an access request is approved or its approval ends: settings are worked out again. */
  readonly accessVersion: number;
  /** The exemptions approved for exactly this identity on exactly this database, in force now. */
  accessExemptions(identity: Identity, database: string): readonly AccessExemption[];
}

/**
 * The masking in force for one identity on one database, for both protocols: worked out again when
 * the policy in force changes (a reload) or when the next exemption that names the identity expires,
 * and never later; approved access requests likewise (a new one applies at the next statement, and each
 * ends at its `until`). An exemption ends at its `expires` instant, on the next statement, whatever the
 * protocol; between those moments the settings (and what `derive` builds from them) are reused.
 */
export class MaskingSettingsCache<T> {
  readonly #identity: Identity;
  readonly #database: string;
  readonly #derive: (settings: MaskingSettings) => T;
  readonly #access: AccessExemptionSource | undefined;
  #cached: { policy: Policy; value: T | undefined; until: number; version: number } | undefined;

  constructor(
    identity: Identity,
    database: string,
    derive: (settings: MaskingSettings) => T,
    access?: AccessExemptionSource,
  ) {
    this.#identity = identity;
    this.#database = database;
    this.#derive = derive;
    this.#access = access;
  }

  /** What the identity's masking is now; undefined when no policy is in force or none masks for it. */
  get(policy: Policy | undefined, now: number = Date.now()): T | undefined {
    if (!policy) return undefined;
    const cached = this.#cached;
    const version = this.#access?.accessVersion ?? 0;
    if (cached !== undefined && cached.policy === policy && now < cached.until && cached.version === version)
      return cached.value;
    const access = this.#access?.accessExemptions(this.#identity, this.#database) ?? [];
    const settings = maskingFor(this.#identity, policy, this.#database, now, access);
    const value = settings && this.#derive(settings);
    let until = nextExemptionExpiry(this.#identity, policy, this.#database, now) ?? Number.POSITIVE_INFINITY;
    for (const exemption of access) if (exemption.until > now) until = Math.min(until, exemption.until);
    this.#cached = { policy, value, until, version };
    return value;
  }
}
