import type { EvidenceInput, SourceCheck } from './evidence-input.ts';
import type { SectionHeader } from './section.ts';

export interface ChainsSection extends SectionHeader {
  readonly rows: readonly SourceCheck[];
}

export function buildChainsSection(input: EvidenceInput): ChainsSection {
  const rows = input.sources;
  return {
    section: 'chains',
    title: 'Chain verification of every source',
    period: input.period,
    shows:
      'For each audit source, whether its hash chain and signed checkpoints verified when the pack was built (as gatehouse audit verify checks a file, or as the collector recorded it on ingest), how many records and checkpoints it holds, and each signing key with why it was trusted.',
    doesNotShow:
      "Records after a source's last checkpoint are chained but not yet signed; a key taken from the log itself (trust first-record) proves the log consistent, not who wrote it; sources that were never given to the builder.",
    counts: {
      rows: rows.length,
      ok: rows.filter((r) => r.ok).length,
      broken: rows.filter((r) => !r.ok).length,
      pinned: rows.filter(
        (r) => r.keys.length > 0 && r.keys.every((k) => k.trust === 'pinned' || k.trust === 'signed'),
      ).length,
      records: rows.reduce((n, r) => n + r.records, 0),
      lost: rows.reduce((n, r) => n + (r.lost ?? 0), 0),
      periodRecords: input.records.length,
    },
    rows,
  };
}
