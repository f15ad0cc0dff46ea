import { describe, expect, it } from 'vitest';
import type { EvidenceRecord } from './evidence-input.ts';
import { buildSections, packFiles } from './evidence-pack.ts';

/**
 * Generative: many seeded mixes of records, each made knowing what it should add to which section,
 * and the sections' counts must equal what was made. Counting and building are independent: the
 * generator tallies by what it chose, the builders by what the records say.
 */

function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS = [
  'read',
  'masked',
  'refused',
  'ddl',
  'admin',
  'approved',
  'warning',
  'error',
  'login',
  'exemption',
  'denied',
  'policy',
] as const;
const SUBJECTS = ['local:demo', 'local:lead', 'system:serviceaccount:shop:orders', "o'brien <x>"];
const COLUMNS = ['public.customers.ssn', 'public.customers.email', 'shop.cards.pan'];

function mix(seed: number) {
  const next = random(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
  const records: EvidenceRecord[] = [];
  const expected = {
    refused: 0,
    login: 0,
    warning: 0,
    denied: 0,
    privileged: 0,
    ddl: 0,
    admin: 0,
    approved: 0,
    exemptions: 0,
    uses: 0,
    changes: 0,
  };
  const masked = new Set<string>();
  let seq = 0;
  const push = (type: string, fields: Record<string, unknown>) => {
    seq++;
    const time = new Date(Date.UTC(2026, 11, 1, 0, 0, seq)).toISOString();
    records.push({
      source: `s${seed % 3}`,
      seq,
      time,
      type,
      verified: true,
      fields: { seq, type, time, ...fields },
    });
  };
  const n = 1 + Math.floor(next() * 60);
  for (let i = 0; i < n; i++) {
    const subject = pick(SUBJECTS);
    const kind = pick(KINDS);
    const statement = (fields: Record<string, unknown>) =>
      push('statement', { subject, outcome: 'ok', ...fields });
    switch (kind) {
      case 'read':
        statement({ statement: 'SELECT id FROM t', columns: { 'public.t.id': 'clear' } });
        break;
      case 'masked': {
        const column = pick(COLUMNS);
        masked.add(column);
        statement({
          statement: `SELECT x FROM t /* ${i} */`,
          columns: { [column]: pick(['redact', 'hash', 'tokenize']) },
        });
        break;
      }
      case 'refused':
        expected.refused++;
        statement({
          statement: pick(['SELECT <script>alert(1)</script>', 'UPDATE t SET a = $1']),
          outcome: 'refused',
          reason: 'guardrail g/r',
          sqlstate: '42501',
        });
        break;
      case 'ddl':
        expected.privileged++;
        expected.ddl++;
        statement({
          statement: pick(['CREATE TABLE x (id int)', 'DROP TABLE "x""y"', 'ALTER TABLE t ADD c int']),
          outcome: pick(['ok', 'refused']),
          reason: null,
        });
        if (records.at(-1)!.fields['outcome'] === 'refused') expected.refused++;
        break;
      case 'admin':
        expected.privileged++;
        expected.admin++;
        statement({ statement: pick(['VACUUM t', 'SET ROLE x']) });
        break;
      case 'approved': {
        expected.privileged++;
        expected.approved++;
        const request = `req-${seed}-${i}`;
        push('approval', {
          event: 'requested',
          request,
          subject,
          statement: 'DELETE FROM t',
          rules: ['g/r'],
        });
        push('approval', { event: 'approved', request, subject, by: 'local:lead', reason: 'ok' });
        statement({ statement: 'DELETE FROM t', approval: request });
        break;
      }
      case 'warning':
        expected.warning++;
        statement({ statement: 'DELETE FROM t WHERE id = $1', reason: 'warning: g/rows (3 rows)' });
        break;
      case 'error':
        statement({ statement: 'INSERT INTO t VALUES ($1)', outcome: 'error', sqlstate: '23505' });
        break;
      case 'login':
        expected.login++;
        push('connection.refused', {
          user: subject,
          sqlstate: '28P01',
          reason: 'password authentication failed',
        });
        break;
      case 'exemption': {
        expected.exemptions++;
        const request = `ar-${seed}-${i}`;
        const column = pick(COLUMNS);
        push('approval', {
          event: 'requested',
          request,
          subject,
          columns: [column.split('.').slice(1).join('.')],
          forSeconds: 60,
        });
        push('approval', { event: 'approved', request, subject, by: 'local:lead' });
        const uses = Math.floor(next() * 3);
        for (let u = 0; u < uses; u++)
          statement({ statement: 'SELECT c FROM t', exemptions: [request], columns: { [column]: 'clear' } });
        expected.uses += uses;
        // Requested and read: sensitive, though only seen clear. Requested and never read: not seen.
        if (uses > 0) masked.add(column);
        break;
      }
      case 'denied':
        expected.denied++;
        push('approval', { event: 'requested', request: `d-${i}`, subject, statement: 'DROP TABLE t' });
        push('approval', { event: 'denied', request: `d-${i}`, subject, by: 'local:lead', reason: 'no' });
        break;
      case 'policy':
        expected.changes++;
        push('policy.change', {
          event: 'reloaded',
          file: 'gh.yaml',
          changedBy: subject,
          after: `${i}`.padStart(64, '0'),
          summary: 'changed',
        });
        break;
    }
  }
  return { records, expected, masked };
}

describe('packs from many record mixes count what went in', () => {
  it('200 seeded mixes', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { records, expected, masked } = mix(seed);
      const period = { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' };
      const policyHistory = records.filter((r) => r.type === 'policy.change');
      const sections = buildSections({ period, records, policyHistory, sources: [] });
      const context = `seed ${seed}`;
      expect(sections.refusals.counts, context).toEqual({
        rows: expected.refused + expected.login + expected.denied + expected.warning,
        statement: expected.refused,
        login: expected.login,
        approvalDenied: expected.denied,
        warning: expected.warning,
      });
      expect(sections.privileged.counts, context).toMatchObject({
        rows: expected.privileged,
        ddl: expected.ddl,
        admin: expected.admin,
        approved: expected.approved,
        approvalDecisionRecorded: expected.approved,
      });
      expect(sections.exemptions.counts, context).toEqual({
        rows: expected.exemptions,
        approved: expected.exemptions,
        uses: expected.uses,
      });
      expect(
        sections.masking.rows.map((r) => r.column),
        context,
      ).toEqual([...masked].sort());
      expect(sections.access.counts.changes, context).toBe(expected.changes);
      expect(sections.chains.counts['periodRecords'], context).toBe(records.length);
      // The page shows each section's count, and no value as markup.
      const html = packFiles(sections, '2026-12-02T00:00:00.000Z').get('index.html')!;
      expect(html, context).toContain(
        `<section id="refusals">\n<h2>Refusals and warnings<span class="count" data-count="${sections.refusals.counts['rows']}">`,
      );
      expect(html, context).not.toMatch(/<script|<x>|"x""y"/);
    }
  });
});
