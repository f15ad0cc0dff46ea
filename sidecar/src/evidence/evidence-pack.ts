import { approvalHistories } from './approval-history.ts';
import { buildControlsSection, type ControlsSection } from './controls.ts';
import type { EvidenceInput } from './evidence-input.ts';
import { packHtml } from './pack-html.ts';
import { sectionFile } from './section.ts';
import { type AccessSection, buildAccessSection } from './section-access.ts';
import { buildChainsSection, type ChainsSection } from './section-chains.ts';
import { buildExemptionsSection, type ExemptionsSection } from './section-exemptions.ts';
import { buildMaskingSection, type MaskingSection } from './section-masking.ts';
import { buildPrivilegedSection, type PrivilegedSection } from './section-privileged.ts';
import { buildRefusalsSection, type RefusalsSection } from './section-refusals.ts';

export interface PackSections {
  readonly access: AccessSection;
  readonly privileged: PrivilegedSection;
  readonly refusals: RefusalsSection;
  readonly exemptions: ExemptionsSection;
  readonly masking: MaskingSection;
  readonly chains: ChainsSection;
  readonly controls: ControlsSection;
}

/** Every section of a pack, from its input: pure, so the same records make the same sections. */
export function buildSections(input: EvidenceInput): PackSections {
  const approvals = approvalHistories(input.records);
  const access = buildAccessSection(input);
  const privileged = buildPrivilegedSection(input, approvals);
  const refusals = buildRefusalsSection(input, approvals);
  const exemptions = buildExemptionsSection(input, approvals);
  const masking = buildMaskingSection(input, approvals);
  const chains = buildChainsSection(input);
  const controls = buildControlsSection([access, privileged, refusals, exemptions, masking, chains]);
  return { access, privileged, refusals, exemptions, masking, chains, controls };
}

/** The files of a pack but its manifest: one JSON file a section, and index.html. */
export function packFiles(sections: PackSections, builtAt: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const section of Object.values(sections))
    files.set(sectionFile(section.section), `${JSON.stringify(section, null, 2)}\n`);
  files.set('index.html', packHtml(sections, builtAt));
  return files;
}
