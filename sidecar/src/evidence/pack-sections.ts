import type { ControlsSection } from './controls.ts';
import type { AccessSection } from './section-access.ts';
import type { ChainsSection } from './section-chains.ts';
import type { ExemptionsSection } from './section-exemptions.ts';
import type { MaskingSection } from './section-masking.ts';
import type { PrivilegedSection } from './section-privileged.ts';
import type { RefusalsSection } from './section-refusals.ts';

/** Every section of a pack: what its JSON files and its page are made from. */
export interface PackSections {
  readonly access: AccessSection;
  readonly privileged: PrivilegedSection;
  readonly refusals: RefusalsSection;
  readonly exemptions: ExemptionsSection;
  readonly masking: MaskingSection;
  readonly chains: ChainsSection;
  readonly controls: ControlsSection;
}
