import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainLine } from '../../../sidecar/src/audit/chain.ts';
import { openAuditLog } from '../../../sidecar/src/audit/log.ts';
import { keyIdOf } from '../../../sidecar/src/audit/signing-key.ts';
import { collectingLogger, statementEvent, writeSignedLog } from '../../../sidecar/src/audit/testing.ts';
import { type ChainState, ingest, NEW_CHAIN, resentSeqs } from './ingest.ts';

let dir: string;
let lines: string[];
let keyId: string;
const now = new Date('2026-12-07T06:00:00Z');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-ingest-'));
  const { file } = await writeSignedLog(dir);
  lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
  keyId = String(JSON.parse(lines[0]!).keyId);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Feeds `batches` one after another, as the shipper would, looking resent seqs up in what was stored. */
function feed(batches: readonly (readonly string[])[], sourceKey = keyId) {
  let state: ChainState = NEW_CHAIN;
  const stored = new Map<number, string>();
  const rows = [];
  let duplicates = 0;
  for (const batch of batches) {
    const wanted = new Map(resentSeqs(state.lastSeq, batch).map((seq) => [seq, stored.get(seq)!]));
    const result = ingest(state, batch, wanted, sourceKey, now);
    for (const r of result.rows) if (r.hash && !stored.has(r.seq)) stored.set(r.seq, r.hash);
    rows.push(...result.rows);
    duplicates += result.duplicates;
    state = result.state;
  }
  return { state, rows, duplicates };
}

function tamper(line: string): string {
  return line.replace('"rows":3', '"rows":4');
}

describe('ingest', () => {
  const cases: {
    name: string;
    batches: () => string[][];
    status: string;
    reason?: RegExp;
    stored: () => number;
    unverifiedFrom?: number;
    duplicates?: number;
    sourceKey?: () => string;
  }[] = [
    { name: 'a good chain in one batch', batches: () => [lines], status: 'ok', stored: () => lines.length },
    {
      name: 'a good chain in batches of three',
      batches: () => chunks(lines, 3),
      status: 'ok',
      stored: () => lines.length,
    },
    {
      name: 'a gap: two records never arrive',
      batches: () => [lines.slice(0, 4), lines.slice(6)],
      status: 'gap',
      reason: /seq 7: .*2 record\(s\) removed/,
      stored: () => lines.length - 2,
      unverifiedFrom: 7,
    },
    {
      name: 'a tampered line',
      batches: () => [lines.slice(0, 5), [tamper(lines[5]!), ...lines.slice(6)]],
      status: 'broken',
      reason: /seq 6: hash does not match/,
      stored: () => lines.length,
      unverifiedFrom: 6,
    },
    {
      name: 'a log opened with another key than the source names',
      batches: () => [lines],
      sourceKey: () => 'ffffffffffffffff',
      status: 'foreign-key',
      reason: /opens with key/,
      stored: () => lines.length,
      unverifiedFrom: 1,
    },
    {
      name: 'a resent batch with the same records',
      batches: () => [lines.slice(0, 8), lines.slice(4)],
      status: 'ok',
      stored: () => lines.length,
      duplicates: 4,
    },
    {
      name: 'a record that comes after its gap was flagged',
      batches: () => [lines.slice(0, 4), lines.slice(6), [lines[4]!]],
      status: 'gap',
      reason: /seq 7: .*2 record\(s\) removed/,
      stored: () => lines.length - 1,
      unverifiedFrom: 5,
    },
    {
      name: 'a resent record changed since',
      batches: () => [lines.slice(0, 8), [tamper(lines[5]!), ...lines.slice(8)]],
      status: 'broken',
      reason: /seq 6 was sent again with other content/,
      stored: () => lines.length + 1,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { state, rows, duplicates } = feed(c.batches(), c.sourceKey?.() ?? keyId);
      expect(state.status).toBe(c.status);
      if (c.reason) expect(state.reason).toMatch(c.reason);
      else expect(state.reason).toBeUndefined();
      expect(rows).toHaveLength(c.stored());
      expect(duplicates).toBe(c.duplicates ?? 0);
      expect(state.lastSeq).toBe(lines.length);
      // Every line is kept byte for byte, verified up to the damage and not after it.
      for (const r of rows) {
        expect(lines.includes(r.line) || r.line === tamper(r.line) || !r.verified).toBe(true);
        if (c.unverifiedFrom !== undefined) expect(r.verified).toBe(r.seq < c.unverifiedFrom);
      }
      if (c.status === 'ok') {
        expect(rows.every((r) => r.verified)).toBe(true);
        expect(state.checkpointSeq).toBe(lines.length);
      }
    });
  }

  it('extracts the columns of statement records', () => {
    const { rows } = feed([lines]);
    const statement = rows.find((r) => r.type === 'statement')!;
    expect(statement).toMatchObject({
      subject: 'system:serviceaccount:shop:orders',
      database: 'shop',
      session: '01JTESTSESSION',
      outcome: 'ok',
      command: 'SELECT',
      statement: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
    });
    expect(statement.time.getTime()).not.toBe(now.getTime());
  });

  it('accepts a key change signed by the previous key, and flags one that is not', async () => {
    const keyA = generateKeyPairSync('ed25519').privateKey;
    const keyB = generateKeyPairSync('ed25519').privateKey;
    const file = join(dir, 'rotated.jsonl');
    const fileA = join(dir, 'a.pem');
    const fileB = join(dir, 'b.pem');
    await writeFile(fileA, keyA.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(fileB, keyB.export({ type: 'pkcs8', format: 'pem' }));
    const write = async (signingKeyFile: string, previousSigningKeyFile?: string) => {
      const log = await openAuditLog({
        file,
        stdout: false,
        signingKeyFile,
        ...(previousSigningKeyFile && { previousSigningKeyFile }),
        checkpointEveryRecords: 4,
        checkpointIntervalMs: 60_000,
        logger: collectingLogger().logger,
      });
      for (let i = 0; i < 3; i++) log.record(statementEvent(i));
      await log.close();
    };
    await write(fileA);
    const first = (await readFile(file, 'utf8')).trimEnd().split('\n');
    await write(fileB, fileA);
    const signed = (await readFile(file, 'utf8')).trimEnd().split('\n');
    const firstKey = String(JSON.parse(signed[0]!).keyId);
    const accepted = feed([first, signed.slice(first.length)], firstKey);
    expect(accepted.state.status).toBe('ok');

    // The same place in the chain, opened by a key nobody vouched for.
    const forged = [...first];
    const open = JSON.parse(signed[first.length]!) as Record<string, unknown>;
    const { hash: _hash, keyChange: _change, previousKeyId: _previous, ...fields } = open;
    const foreignKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    fields['publicKey'] = foreignKey.toString('base64');
    fields['keyId'] = keyIdOf(foreignKey.toString('base64'));
    forged.push(chainLine(fields).line);
    const refused = feed([first, forged.slice(first.length)], firstKey);
    expect(refused.state.status).toBe('foreign-key');
    expect(refused.state.reason).toMatch(/changes the signing key/);
    expect(refused.rows.at(-1)!.verified).toBe(false);
  });
});

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
