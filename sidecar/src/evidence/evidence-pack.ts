import { approvalHistories } from './approval-history.ts';
import { buildControlsSection } from './controls.ts';
import type { EvidenceInput } from './evidence-input.ts';
import { packHtml } from './pack-html.ts';
import type { PackSections } from './pack-sections.ts';
import { sectionFile } from './section.ts';
import { buildAccessSection } from './section-access.ts';
import { buildChainsSection } from './section-chains.ts';
import { buildExemptionsSection } from './section-exemptions.ts';
import { buildMaskingSection } from './section-masking.ts';
import { buildPrivilegedSection } from './section-privileged.ts';
import { buildRefusalsSection } from './section-refusals.ts';

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
