import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainLine, GENESIS, sha256Hex } from './chain.ts';
import { openAuditLog } from './log.ts';
import { keyIdOf, publicKeyFromPem } from './signing-key.ts';
import { collectingLogger, statementEvent, writeSignedLog } from './testing.ts';
import { type VerifyOptions, verifyAuditLog } from './verify.ts';

/*
 * One real log from the real writer, checkpoint every 4 records, 10 statements:
 * seq 1 log.open, 2 checkpoint, 3-6 statements, 7 checkpoint, 8-11 statements, 12 checkpoint,
 * 13-14 statements, 15 seal. Line n holds seq n.
 */
let dir: string;
let lines: string[];
let head: string;
let publicKey: string;
let keyFile: string;
/** A log written with a key of its own, as someone rewriting the log would. */
let forgedFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-verify-'));
  const written = await writeSignedLog(dir);
  const file = written.file;
  keyFile = written.keyFile;
  publicKey = publicKeyFromPem(await readFile(keyFile));
  lines = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
  head = await readFile(`${file}.head`, 'utf8');

  forgedFile = join(dir, 'forged.jsonl');
  const forged = await openAuditLog({
    file: forgedFile,
    stdout: false,
    checkpointEveryRecords: 4,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
  });
  forged.record(statementEvent(1));
  await forged.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function verify(edited: string[], options: VerifyOptions = { head }) {
  return verifyAuditLog(`${edited.join('\n')}\n`, options);
}

function withLine(index: number, edit: (line: string) => string): string[] {
  return lines.map((line, i) => (i === index ? edit(line) : line));
}

describe('verifyAuditLog', () => {
  it('passes the intact log, with its head anchor and pinned key', () => {
    expect(lines).toHaveLength(15);
    expect(verify(lines, { head, publicKey })).toEqual({
      ok: true,
      records: 15,
      checkpoints: 4,
      sealed: true,
      unsigned: 0,
      recoveries: [],
      lost: 0,
      head: 'matched',
      keys: [{ keyId: keyIdOf(publicKey), fromSeq: 1, trust: 'pinned' }],
    });
  });

  it('names a record whose field was changed', () => {
    const result = verify(withLine(4, (line) => line.replace('"rows":2', '"rows":2000')));
    expect(result.ok).toBe(false);
    expect(result.firstBad).toEqual({
      seq: 5,
      line: 5,
      reason: expect.stringMatching(/hash does not match/),
      kind: 'break',
    });
  });

  it('names the record after one that was changed and given a matching hash', () => {
    const forged = withLine(4, (line) => {
      const { hash: _hash, ...fields } = JSON.parse(line);
      return chainLine({ ...fields, outcome: 'refused' }).line;
    });
    expect(verify(forged).firstBad).toEqual({
      seq: 6,
      line: 6,
      reason: expect.stringMatching(/prev does not match/),
      kind: 'break',
    });
  });

  it('names a record whose bytes were edited without changing its content', () => {
    const result = verify(withLine(4, (line) => line.replace('"rows":2', '"rows": 2')));
    expect(result.firstBad).toMatchObject({ seq: 5, line: 5, reason: expect.stringMatching(/canonical/) });
  });

  it('notices a removed record', () => {
    const removed = lines.filter((_, i) => i !== 4);
    expect(verify(removed).firstBad).toEqual({
      seq: 6,
      line: 5,
      reason: expect.stringMatching(/1 record\(s\) removed/),
      kind: 'gap',
    });
  });

  it('notices two swapped records', () => {
    const swapped = [...lines];
    [swapped[3], swapped[4]] = [swapped[4]!, swapped[3]!];
    expect(verify(swapped).firstBad).toMatchObject({ seq: 5, line: 4 });
  });

  it('notices an inserted record', () => {
    const inserted = [...lines.slice(0, 5), lines[4]!, ...lines.slice(5)];
    expect(verify(inserted).firstBad).toEqual({
      seq: 5,
      line: 6,
      reason: expect.stringMatching(/inserted/),
      kind: 'break',
    });
  });

  it('notices a log cut after a checkpoint, through the head anchor and through the seal rule', () => {
    const cut = lines.slice(0, 7); // ends with the checkpoint at seq 7
    expect(verify(cut).firstBad).toEqual({
      seq: 8,
      line: 8,
      reason: expect.stringMatching(/head anchor holds checkpoint seq 15: the log was cut/),
    });
    expect(verify(cut, {}).firstBad).toMatchObject({ seq: 8, unsealed: true });
    // Only a reader who accepts an unsealed log, and has no head anchor, is fooled: see log.ts.
    expect(verify(cut, { allowUnsealed: true }).ok).toBe(true);
  });

  it('notices a log cut in the middle of a line', () => {
    const text = `${lines.slice(0, 8).join('\n')}\n${lines[8]!.slice(0, 50)}`;
    expect(verifyAuditLog(text, { head }).firstBad).toEqual({
      seq: 9,
      line: 9,
      reason: 'the last line is cut before its end',
    });
  });

  it('notices a forged checkpoint signature', () => {
    const forged = withLine(6, (line) => {
      const sig = /"sig":"(.)/.exec(line)!;
      return line.replace(`"sig":"${sig[1]}`, `"sig":"${sig[1] === 'A' ? 'B' : 'A'}`);
    });
    expect(verify(forged).firstBad).toEqual({
      seq: 7,
      line: 7,
      reason: expect.stringMatching(/signature/),
      kind: 'break',
    });
  });

  it('notices a whole log rewritten with another key only when the key is pinned', async () => {
    const forged = await readFile(forgedFile);
    expect(verifyAuditLog(forged).ok).toBe(true);
    expect(verifyAuditLog(forged, { publicKey }).firstBad).toEqual({
      seq: 1,
      line: 1,
      reason: 'log.open carries a public key other than the pinned one',
      kind: 'foreign-key',
    });
  });

  it('notices a log that does not start with log.open', () => {
    const { line } = chainLine({ seq: 1, prev: GENESIS, time: new Date().toISOString(), type: 'statement' });
    expect(verify([line, ...lines.slice(1)]).firstBad).toEqual({
      seq: 1,
      line: 1,
      reason: 'the log does not start with a log.open record',
      kind: 'break',
    });
    expect(verifyAuditLog('', {}).firstBad?.reason).toMatch(/empty/);
  });

  it('notices records appended after the seal', () => {
    const { hash: _hash, sig: _sig, ...seal } = JSON.parse(lines[14]!);
    const after = chainLine({
      seq: 16,
      prev: sha256Hex(JSON.stringify(seal)),
      time: seal.time,
      type: 'statement',
    });
    expect(verify([...lines, after.line]).firstBad).toEqual({
      seq: 16,
      line: 16,
      reason: 'a statement record follows the seal',
      kind: 'break',
    });
  });

  it('notices a head anchor that is not one, and one from another log', async () => {
    expect(verify(lines, { head: '{"version":1}' }).firstBad).toMatchObject({ line: 0 });
    const otherHead = await readFile(`${forgedFile}.head`, 'utf8');
    expect(verify(lines, { head: otherHead }).firstBad).toMatchObject({
      reason: expect.stringMatching(/head anchor/),
    });
  });

  it('accepts a torn line only when a log.recover record accounts for it', () => {
    const torn = lines[14]!.slice(0, 30);
    expect(verify([...lines.slice(0, 14), torn, ...lines.slice(14)]).firstBad).toEqual({
      seq: 15,
      line: 15,
      reason: 'not a JSON line, and no log.recover record accounts for it',
    });
  });
});
