import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAuditVerify } from '../cli/audit-verify.ts';
import { chainLine, chainSignedLine, keyChangeSignature } from './chain.ts';
import { formatHead } from './head.ts';
import { openAuditLog } from './log.ts';
import { keyIdOf, publicKeyFromPem } from './signing-key.ts';
import { collectingLogger, statementEvent } from './testing.ts';
import { type VerifyOptions, verifyAuditLog } from './verify.ts';

/*
 * The attacks of someone who can rewrite the log and its head file but not read the signing key:
 * keep the log up to a checkpoint, bring in a key of their own, drop eight statement records, re-chain
 * and re-sign the rest and rewrite the head anchor. Before key changes had to be signed, each of these
 * verified as "ok ... sealed, head anchor matched".
 */

let dir: string;
/** Two runs of the real writer with one persistent key: 10 statements each, a checkpoint every 4 records. */
let lines: string[];
let keyFile: string;
let ownerKey: string;
const attacker = generateKeyPairSync('ed25519');
const attackerPublicKey = attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

async function writeRun(file: string, signingKeyFile: string, statements: number, previous?: string) {
  const log = await openAuditLog({
    file,
    stdout: false,
    signingKeyFile,
    ...(previous !== undefined && { previousSigningKeyFile: previous }),
    checkpointEveryRecords: 4,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
  });
  for (let i = 0; i < statements; i++) log.record(statementEvent(i));
  await log.close();
}

async function newKeyFile(name: string): Promise<string> {
  const file = join(dir, name);
  const { privateKey } = generateKeyPairSync('ed25519');
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-forgery-'));
  keyFile = await newKeyFile('owner.pem');
  ownerKey = publicKeyFromPem(await readFile(keyFile));
  const file = join(dir, 'audit.jsonl');
  await writeRun(file, keyFile, 10);
  await writeRun(file, keyFile, 10);
  lines = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Fields = Record<string, unknown> & { seq: number };

function parse(line: string): Fields {
  const { hash: _hash, sig: _sig, ...fields } = JSON.parse(line) as Fields;
  return fields as Fields;
}

/**
 * What the attacker's tool does: re-chains `records` after `kept` lines, signing checkpoints with
 * `key`, and returns the new log with a head anchor naming its last checkpoint.
 */
function rechain(kept: readonly string[], records: readonly Fields[], key: KeyObject) {
  const out = [...kept];
  let prev = (JSON.parse(kept.at(-1)!) as { hash: string }).hash;
  let seq = (JSON.parse(kept.at(-1)!) as { seq: number }).seq;
  let offset = Buffer.byteLength(`${kept.join('\n')}\n`);
  let head = '';
  for (const record of records) {
    const fields: Fields = { ...record, seq: ++seq, prev };
    const { line, hash } = fields.type === 'checkpoint' ? chainSignedLine(fields, key) : chainLine(fields);
    if (fields.type === 'checkpoint') head = formatHead({ offset, checkpoint: line });
    out.push(line);
    prev = hash;
    offset += Buffer.byteLength(line) + 1;
  }
  return { log: `${out.join('\n')}\n`, head };
}

/** The records after line `from`, without the first eight statements, every key the attacker's. */
function restWithoutEight(from: number): Fields[] {
  let dropped = 0;
  return lines
    .slice(from)
    .map(parse)
    .filter((record) => !(record['type'] === 'statement' && dropped++ < 8))
    .map((record) =>
      record['type'] === 'checkpoint' || record['type'] === 'log.open'
        ? {
            ...record,
            keyId: keyIdOf(attackerPublicKey),
            ...(record['type'] === 'log.open' && { publicKey: attackerPublicKey }),
          }
        : record,
    );
}

function forgedOpen(extra: Record<string, unknown> = {}): Fields {
  return {
    seq: 0,
    prev: '',
    time: new Date().toISOString(),
    type: 'log.open',
    version: 1,
    keyId: keyIdOf(attackerPublicKey),
    publicKey: attackerPublicKey,
    host: 'gatehouse-0',
    pid: 1,
    resume: 'unsealed',
    ...extra,
  };
}

/** Line index just after the first checkpoint that follows statements (seq 7). */
const AFTER_CHECKPOINT = 7;

const attacks: Record<string, () => { log: string; head: string }> = {
  'a forged log.open mid-file': () =>
    rechain(
      lines.slice(0, AFTER_CHECKPOINT),
      [forgedOpen(), ...restWithoutEight(AFTER_CHECKPOINT)],
      attacker.privateKey,
    ),

  'a key swap at a checkpoint, with a key change signed by the new key itself': () => {
    const kept = lines.slice(0, AFTER_CHECKPOINT);
    const last = JSON.parse(kept.at(-1)!) as { seq: number; hash: string };
    const sig = keyChangeSignature(last.seq + 1, last.hash, attackerPublicKey, attacker.privateKey);
    const open = forgedOpen({ previousKeyId: keyIdOf(ownerKey), keyChange: sig });
    return rechain(kept, [open, ...restWithoutEight(AFTER_CHECKPOINT)], attacker.privateKey);
  },

  'a truncation plus re-seal': () => {
    const cut = lines.slice(0, AFTER_CHECKPOINT + 4);
    // Everything after the cut is gone; a new run "opens" and seals at once.
    const seal: Fields = {
      seq: 0,
      prev: '',
      time: new Date().toISOString(),
      type: 'checkpoint',
      keyId: keyIdOf(attackerPublicKey),
      lost: 0,
      final: true,
    };
    return rechain(cut, [forgedOpen(), seal], attacker.privateKey);
  },

  "the second run's log.open given the attacker's key, and the head rewritten": () => {
    const secondOpen = lines.findIndex((line, i) => i > 0 && parse(line)['type'] === 'log.open');
    const open = {
      ...parse(lines[secondOpen]!),
      keyId: keyIdOf(attackerPublicKey),
      publicKey: attackerPublicKey,
    };
    return rechain(
      lines.slice(0, secondOpen),
      [open, ...restWithoutEight(secondOpen + 1)],
      attacker.privateKey,
    );
  },
};

describe('forging the log with a key of ones own', () => {
  it('the untouched log verifies, with its key taken from the log or pinned', () => {
    const log = `${lines.join('\n')}\n`;
    expect(verifyAuditLog(log)).toMatchObject({
      ok: true,
      sealed: true,
      keys: [{ keyId: keyIdOf(ownerKey), fromSeq: 1, trust: 'first-record' }],
    });
    expect(verifyAuditLog(log, { publicKey: ownerKey })).toMatchObject({
      ok: true,
      keys: [{ keyId: keyIdOf(ownerKey), fromSeq: 1, trust: 'pinned' }],
    });
  });

  for (const [name, attack] of Object.entries(attacks)) {
    it(`fails ${name}, pinned or not`, () => {
      const { log, head } = attack();
      const statements = (text: string) =>
        text.split('\n').filter((l) => l.includes('"type":"statement"')).length;
      // The forgery is a well-made one: a whole chain, signed, sealed and anchored, with records missing.
      expect(statements(log)).toBeLessThan(statements(lines.join('\n')));
      expect(log).toContain('"final":true');
      for (const options of [{ head }, { head, publicKey: ownerKey }] satisfies VerifyOptions[]) {
        const result = verifyAuditLog(log, options);
        expect(result.ok).toBe(false);
        expect(result.firstBad?.reason).toMatch(/changes the signing key .* without a (valid )?signature/);
      }
    });
  }

  it('the CLI names the forged log.open and both keys', async () => {
    const { log, head } = attacks['a forged log.open mid-file']!();
    const file = join(dir, 'forged.jsonl');
    await writeFile(file, log);
    await writeFile(`${file}.head`, head);
    const out: string[] = [];
    const code = await runAuditVerify([file], {
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => out.push(text) },
    });
    expect(code).toBe(1);
    expect(out.join('')).toMatch(/^TAMPERED: record seq 8 \(line 8\): log\.open changes the signing key/);
    expect(out.join('')).toContain(
      `from ${keyIdOf(ownerKey)} to ${keyIdOf(attackerPublicKey)} without a signature by ${keyIdOf(ownerKey)}`,
    );
  });
});

describe('changing the key', () => {
  it('passes a change the previous key signed, and says so', async () => {
    const file = join(dir, 'rotated.jsonl');
    const next = await newKeyFile('next.pem');
    await writeRun(file, keyFile, 3);
    await writeRun(file, next, 3, keyFile);
    const nextKey = publicKeyFromPem(await readFile(next));
    const result = verifyAuditLog(await readFile(file), { publicKey: ownerKey });
    expect(result).toMatchObject({
      ok: true,
      sealed: true,
      keys: [
        { keyId: keyIdOf(ownerKey), fromSeq: 1, trust: 'pinned' },
        { keyId: keyIdOf(nextKey), trust: 'signed', signedBy: keyIdOf(ownerKey) },
      ],
    });
  });

  it('fails a change no key signed (a restart with a key made for the run) unless the new key is pinned', async () => {
    const file = join(dir, 'ephemeral.jsonl');
    const { logger, lines: logged } = collectingLogger();
    await writeRun(file, keyFile, 2);
    const log = await openAuditLog({
      file,
      stdout: false,
      checkpointEveryRecords: 4,
      checkpointIntervalMs: 60_000,
      logger,
    });
    log.record(statementEvent(1));
    await log.close();
    expect(logged.some((line) => String(line['msg']).includes('key made for this run only'))).toBe(true);

    const text = await readFile(file, 'utf8');
    const opens = text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((r) => r['type'] === 'log.open');
    const runKey = String(opens[1]?.['publicKey']);
    expect(verifyAuditLog(text).firstBad?.reason).toMatch(/changes the signing key/);
    expect(verifyAuditLog(text, { publicKeys: [ownerKey, runKey] })).toMatchObject({
      ok: true,
      keys: [{ trust: 'pinned' }, { trust: 'pinned', keyId: keyIdOf(runKey) }],
    });
  });
});
