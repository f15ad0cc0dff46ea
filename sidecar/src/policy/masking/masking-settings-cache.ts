import type { Identity } from '../../identity/identity.ts';
import type { Policy } from '../load-policy.ts';
import { type MaskingSettings, maskingFor, nextExemptionExpiry } from './masking-for.ts';

/**
 * The masking in force for one identity on one database, for both protocols: worked out again when
 * the policy in force changes (a reload) or when the next exemption that names the identity expires,
 * and never later. An exemption ends at its `expires` instant, on the next statement, whatever the
 * protocol; between those moments the settings (and what `derive` builds from them) are reused.
 */
export class MaskingSettingsCache<T> {
  readonly #identity: Identity;
  readonly #database: string;
  readonly #derive: (settings: MaskingSettings) => T;
  #cached: { policy: Policy; value: T | undefined; until: number } | undefined;

  constructor(identity: Identity, database: string, derive: (settings: MaskingSettings) => T) {
    this.#identity = identity;
    this.#database = database;
    this.#derive = derive;
  }

  /** What the identity's masking is now; undefined when no policy is in force or none masks for it. */
  get(policy: Policy | undefined, now: number = Date.now()): T | undefined {
    if (!policy) return undefined;
    const cached = this.#cached;
    if (cached !== undefined && cached.policy === policy && now < cached.until) return cached.value;
    const settings = maskingFor(this.#identity, policy, this.#database, now);
    const value = settings && this.#derive(settings);
    const until =
      nextExemptionExpiry(this.#identity, policy, this.#database, now) ?? Number.POSITIVE_INFINITY;
    this.#cached = { policy, value, until };
    return value;
  }
}
