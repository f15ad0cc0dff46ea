import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AuditLogOptions, openAuditLog } from './log.ts';
import {
  canMount,
  collectingLogger,
  fillDisk,
  sessionContext,
  statementEvent,
  statementStartEvent,
  withSmallDisk,
} from './testing.ts';
import { verifyAuditLog } from './verify.ts';

let dir: string;
/** A persistent signing key, as the quickstart and the operator give the proxy: runs continue one key. */
let keyFile: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-audit-'));
  keyFile = join(dir, 'signing.pem');
  await writeFile(
    keyFile,
    generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(overrides: Partial<AuditLogOptions> = {}): AuditLogOptions {
  return {
    file: join(dir, 'audit.jsonl'),
    stdout: false,
    signingKeyFile: keyFile,
    checkpointEveryRecords: 4,
    checkpointIntervalMs: 60_000,
    logger: collectingLogger().logger,
    ...overrides,
  };
}

async function writeSession(opts: AuditLogOptions, statements: number): Promise<void> {
  const log = await openAuditLog(opts);
  for (let i = 0; i < statements; i++) log.record(statementEvent(i));
  await log.close();
  expect(log.healthy).toBe(true);
}

function records(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

async function verifyFile(file: string, extra: { allowUnsealed?: boolean } = {}) {
  return verifyAuditLog(await readFile(file), { head: await readFile(`${file}.head`, 'utf8'), ...extra });
}

describe('openAuditLog', () => {
  it('writes the records statements wait for at the end of their turn, together, without the thread pool', async () => {
    const log = await openAuditLog(options({ checkpointEveryRecords: 1000 }));
    await log.flush();
    const answers = Array.from({ length: 20 }, (_, i) => log.recordBefore(statementStartEvent(i)));
    // Queued after the log's own setImmediate: it runs after the batch was written, unless the write
    // went to the thread pool (then it runs first, and the answers come in a later turn).
    let laterImmediateRan = false;
    setImmediate(() => {
      laterImmediateRan = true;
    });
    expect(await Promise.all(answers)).toEqual(Array(20).fill(true));
    expect(laterImmediateRan).toBe(false);
    const starts = records(readFileSync(options().file!, 'utf8')).filter(
      (r) => r['type'] === 'statement.start',
    );
    expect(starts).toHaveLength(20);
    await log.close();
    expect(await verifyFile(options().file!)).toMatchObject({ ok: true, sealed: true, lost: 0 });
  });

  it('keeps a disk flush per write off the event loop (syncEachWrite)', async () => {
    const log = await openAuditLog(options({ syncEachWrite: true }));
    const written = log.recordBefore(statementStartEvent(1));
    expect(written).toBeInstanceOf(Promise);
    expect(await written).toBe(true);
    await log.close();
  });

  it('writes a chain that opens, checkpoints every N records and ends in a seal', async () => {
    const opts = options();
    await writeSession(opts, 10);
    const written = records(await readFile(opts.file!, 'utf8'));
    expect(written.map((r) => r['type'])).toEqual([
      'log.open',
      'checkpoint',
      ...Array(4).fill('statement'),
      'checkpoint',
      ...Array(4).fill('statement'),
      'checkpoint',
      'statement',
      'statement',
      'checkpoint',
    ]);
    expect(written.map((r) => r['seq'])).toEqual(written.map((_, i) => i + 1));
    expect(written.at(-1)?.['final']).toBe(true);
    expect(written[2]).toMatchObject({
      type: 'statement',
      subject: 'system:serviceaccount:shop:orders',
      namespace: 'shop',
      pod: 'orders-7d9f-abcde',
      clientAddress: '10.1.2.3',
      database: 'shop',
      statement: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
      outcome: 'ok',
      rows: 0,
    });
    expect(await verifyFile(opts.file!)).toMatchObject({
      ok: true,
      records: 15,
      checkpoints: 4,
      sealed: true,
    });
  });

  it('writes a checkpoint after the interval when records were written since the last one', async () => {
    const opts = options({ checkpointEveryRecords: 1000, checkpointIntervalMs: 20 });
    const log = await openAuditLog(opts);
    log.record(statementEvent(1));
    await new Promise((resolve) => setTimeout(resolve, 80));
    await log.flush();
    const types = records(await readFile(opts.file!, 'utf8')).map((r) => r['type']);
    // One timed checkpoint after the statement, and none for the idle intervals after it.
    expect(types).toEqual(['log.open', 'checkpoint', 'statement', 'checkpoint']);
    await log.close();
  });

  it('logs every record, checkpoints included, through pino with the exact bytes of the file', async () => {
    const { logger, lines } = collectingLogger();
    const opts = options({ stdout: true, logger });
    await writeSession(opts, 5);
    const fileLines = (await readFile(opts.file!, 'utf8')).split('\n').filter(Boolean);
    const audit = lines.filter((line) => line['audit']).map((line) => JSON.stringify(line['audit']));
    expect(audit).toEqual(fileLines);
    expect(lines.every((line) => line['level'] === 30)).toBe(true);
  });

  it('continues the chain of an existing log, which then verifies as one', async () => {
    const opts = options();
    await writeSession(opts, 5);
    await writeSession(opts, 3);
    const written = records(await readFile(opts.file!, 'utf8'));
    const opens = written.filter((r) => r['type'] === 'log.open');
    expect(opens).toHaveLength(2);
    expect(opens[1]?.['resume']).toBe('sealed');
    expect(await verifyFile(opts.file!)).toMatchObject({ ok: true, sealed: true, recoveries: [] });
  });

  it('anchors its head at the right byte when records hold multi-byte text, across restarts, batches and sessions', async () => {
    const opts = options({ checkpointEveryRecords: 3 });
    const other = { ...sessionContext, session: 'ÖTHER-セッション', database: 'dätabase' };
    for (let run = 0; run < 3; run++) {
      const log = await openAuditLog(opts);
      for (let i = 0; i < 7 + run; i++) {
        const start = { ...statementStartEvent(i), statement: `SELECT 'ü漢🦊' || $${i}` };
        await log.recordBefore(i % 2 === 0 ? start : { ...start, context: other });
        log.record({ ...statementEvent(i), context: i % 2 === 0 ? sessionContext : other });
        // Some records share a write, some wait for the next turn.
        if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await log.close();
      expect(log.healthy).toBe(true);
    }
    const written = records(await readFile(opts.file!, 'utf8'));
    // A head anchored at a wrong offset is damage the next run records (head-mismatch).
    expect(written.filter((r) => r['type'] === 'log.recover')).toEqual([]);
    expect(written.filter((r) => r['session'] === other.session)).toHaveLength(22);
    expect(written.filter((r) => r['database'] === other.database)).toHaveLength(11);
    expect(await verifyFile(opts.file!)).toMatchObject({ ok: true, sealed: true, recoveries: [] });
  });

  it('signs with the given key, so a verifier can pin it', async () => {
    const pinnedKeyFile = join(dir, 'pinned.pem');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(pinnedKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const opts = options({ signingKeyFile: pinnedKeyFile });
    await writeSession(opts, 3);
    await writeSession(opts, 3);
    const pinned = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(verifyAuditLog(await readFile(opts.file!), { publicKey: pinned }).ok).toBe(true);
  });

  it('refuses a signing key that is not Ed25519', async () => {
    const keyFile = join(dir, 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await expect(openAuditLog(options({ signingKeyFile: keyFile }))).rejects.toThrow(/needs ed25519/);
  });

  it('records a line torn by a crash when it continues the log, instead of hiding it', async () => {
    const { logger, lines } = collectingLogger();
    const opts = options({ logger });
    await writeSession(opts, 6);
    const size = (await readFile(opts.file!)).length;
    await truncate(opts.file!, size - 40); // cuts the seal in half, as a crash mid-write would

    const torn = await verifyFile(opts.file!);
    expect(torn.ok).toBe(false);
    expect(torn.firstBad?.reason).toMatch(/last line is cut/);

    await writeSession(opts, 2);
    const result = await verifyFile(opts.file!);
    expect(result).toMatchObject({ ok: true, sealed: true });
    expect(result.recoveries.map((r) => r.damage)).toEqual(['torn-line', 'head-mismatch']);
    const wholeLines = (await readFile(opts.file!, 'utf8')).split('\n').filter((line) => line.endsWith('}'));
    const reopened = records(wholeLines.join('\n')).filter((r) => r['type'] === 'log.open')[1];
    expect(reopened?.['resume']).toBe('unsealed');
    expect(lines.some((line) => String(line['msg']).includes('torn line'))).toBe(true);
  });

  it('records a log cut after a checkpoint when it continues it', async () => {
    const opts = options();
    await writeSession(opts, 6);
    const text = await readFile(opts.file!, 'utf8');
    const kept = text.split('\n').slice(0, 7).join('\n') + '\n'; // up to the checkpoint at seq 7
    await writeFile(opts.file!, kept);
    await writeSession(opts, 1);
    const result = await verifyFile(opts.file!);
    expect(result.ok).toBe(true);
    expect(result.recoveries).toEqual([{ seq: 9, damage: 'head-mismatch' }]);
  });

  it('continues after a crash that left the log unsealed', async () => {
    const file = join(dir, 'crash.jsonl');
    const logModule = fileURLToPath(new URL('./log.ts', import.meta.url));
    const script = `
      import pino from 'pino';
      import { openAuditLog } from ${JSON.stringify(logModule)};
      const log = await openAuditLog({ file: ${JSON.stringify(file)}, signingKeyFile: ${JSON.stringify(keyFile)},
        stdout: false, checkpointEveryRecords: 3,
        checkpointIntervalMs: 60000, logger: pino({ level: 'silent' }) });
      for (let i = 0; i < 7; i++) log.record({ type: 'connection.refused', client: { address: '10.0.0.9', port: 1 },
        protocol: 'postgres', user: 'mallory', database: 'shop', sqlstate: '28P01', reason: 'bad token' });
      await log.flush();
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      encoding: 'utf8',
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);

    const crashed = await verifyFile(file);
    expect(crashed.ok).toBe(false);
    expect(crashed.firstBad?.unsealed).toBe(true);
    expect(await verifyFile(file, { allowUnsealed: true })).toMatchObject({
      ok: true,
      sealed: false,
      unsigned: 1,
    });

    await writeSession(options({ file }), 1);
    expect(await verifyFile(file)).toMatchObject({ ok: true, sealed: true, recoveries: [] });
    const opens = records(await readFile(file, 'utf8')).filter((r) => r['type'] === 'log.open');
    expect(opens[1]?.['resume']).toBe('unsealed');
  });
});

describe('one writer', () => {
  it('refuses a second writer of the same file before it writes anything, naming the first', async () => {
    const opts = options();
    const first = await openAuditLog(opts);
    first.record(statementEvent(1));
    await first.flush();
    const before = await readFile(opts.file!);
    const headBefore = await readFile(`${opts.file}.head`);
    await expect(openAuditLog(opts)).rejects.toThrow(
      new RegExp(
        `^the audit log ${opts.file} is in use by process ${process.pid} \\(another Gatehouse\\?\\)`,
      ),
    );
    expect(await readFile(opts.file!)).toEqual(before);
    expect(await readFile(`${opts.file}.head`)).toEqual(headBefore);
    await first.close();

    await writeSession(opts, 1);
    expect(await verifyFile(opts.file!)).toMatchObject({ ok: true, sealed: true, recoveries: [] });
  });

  it('takes over the lock of a writer that died without closing', async () => {
    const opts = options();
    const crashed = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
    await writeFile(`${opts.file}.lock`, `${crashed.pid}\n`);
    await writeSession(opts, 1);
    expect(await verifyFile(opts.file!)).toMatchObject({ ok: true, sealed: true });
  });
});

describe('failing closed', () => {
  it('turns unhealthy on ENOSPC and counts every record it could not write', async () => {
    const { logger, lines } = collectingLogger();
    const log = await openAuditLog(options({ file: '/dev/full', logger }));
    expect(log.healthy).toBe(false);
    expect(log.failure).toMatch(/ENOSPC/);
    log.record(statementEvent(1));
    log.record(statementEvent(2));
    await log.close();
    expect(log.lost).toBe(4); // log.open and its checkpoint, then the two statements
    // Each lost record is logged with its content (its place in the chain went to no one).
    const notWritten = lines.filter((line) => line['auditNotWritten']);
    expect(notWritten.map((line) => (line['auditNotWritten'] as { type: string }).type)).toEqual([
      'log.open',
      'checkpoint',
      'statement',
      'statement',
    ]);
    expect(notWritten.every((line) => (line['auditNotWritten'] as { seq?: number }).seq === undefined)).toBe(
      true,
    );
    expect(lines.some((line) => line['msg'] === 'audit records were lost while this log was open')).toBe(
      true,
    );
  });

  it('turns unhealthy when the file cannot be opened', async () => {
    await writeFile(join(dir, 'not-a-directory'), '');
    const log = await openAuditLog(options({ file: join(dir, 'not-a-directory', 'audit.jsonl') }));
    expect(log.healthy).toBe(false);
    expect(log.failure).toMatch(/ENOTDIR/);
    log.record(statementEvent(1));
    expect(log.lost).toBe(1);
    await log.close();
  });

  it('turns unhealthy when a file holds no audit records it could continue', async () => {
    for (const lines of [3, 20]) {
      const file = join(dir, `other-${lines}.log`);
      await writeFile(file, Array.from({ length: lines }, (_, i) => `plain line ${i}\n`).join(''));
      const log = await openAuditLog(options({ file }));
      expect(log.healthy).toBe(false);
      expect(log.failure).toMatch(/not an audit log|not JSON/);
      await log.close();
    }
  });

  it('starts a chain after a first write that a crash cut short', async () => {
    const opts = options();
    await writeFile(opts.file!, '{"seq":1,"prev":"000');
    await writeSession(opts, 1);
    const result = verifyAuditLog(await readFile(opts.file!));
    expect(result).toMatchObject({ ok: true, sealed: true, recoveries: [{ seq: 2, damage: 'torn-line' }] });
  });

  it('turns unhealthy rather than continue after a last record that was altered', async () => {
    const opts = options();
    await writeSession(opts, 2);
    const text = await readFile(opts.file!, 'utf8');
    await writeFile(opts.file!, text.replace(/"lost":0,"final":true/, '"lost":5,"final":true'));
    const log = await openAuditLog(opts);
    expect(log.healthy).toBe(false);
    expect(log.failure).toMatch(/not a valid audit record: hash does not match/);
    await log.close();
  });

  it('refuses records while the disk lags, then writes down how many were lost', async () => {
    // A FIFO nobody reads blocks writes once the pipe buffer (64 KiB) is full: a disk that stalls.
    const fifo = join(dir, 'slow.fifo');
    execFileSync('mkfifo', [fifo]);
    const log = await openAuditLog(
      options({ file: fifo, maxPendingBytes: 32 * 1024, checkpointEveryRecords: 50 }),
    );
    for (let i = 0; i < 2000 && log.healthy; i++) {
      log.record(statementEvent(i));
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(log.healthy).toBe(false);
    expect(log.failure).toMatch(/wait for the disk/);
    log.record(statementEvent(-1));
    expect(log.lost).toBeGreaterThanOrEqual(2);

    const chunks: Buffer[] = [];
    const reader = createReadStream(fifo);
    reader.on('data', (chunk) => chunks.push(chunk as Buffer));
    const ended = new Promise<void>((resolve) => reader.on('end', () => resolve()));
    await log.flush();
    expect(log.healthy).toBe(true);
    await log.close();
    await ended;

    const text = Buffer.concat(chunks).toString('utf8');
    const loss = records(text).filter((r) => r['type'] === 'audit.loss');
    expect(loss.map((r) => r['lost'])).toEqual([log.lost]);
    expect(verifyAuditLog(text)).toMatchObject({ ok: true, sealed: true, lost: log.lost });
  });
});

describe.skipIf(!canMount)('a full disk (tmpfs, as root)', () => {
  it('loses the first record it cannot write, takes none after it, writes the loss down and resumes within a second of space returning', async () => {
    await withSmallDisk('256k', async (disk) => {
      const file = join(disk, 'audit.jsonl');
      const log = await openAuditLog(options({ file, checkpointEveryRecords: 1000 }));
      const filler = join(disk, 'filler');
      fillDisk(filler);

      let accepted = 0;
      let written = true;
      while (written && accepted < 1000) {
        written = await log.recordBefore(statementStartEvent(accepted));
        if (written) accepted++;
      }
      expect(written).toBe(false);
      expect(log.healthy).toBe(false);
      expect(log.failure).toMatch(/ENOSPC/);
      // Nothing is taken after the first failed write, whether anyone waits or not.
      expect(await log.recordBefore(statementStartEvent(-1))).toBe(false);
      log.record(statementEvent(-2));
      expect(log.lost).toBe(3);

      // The file holds exactly the records that were accepted, and no torn line (it was cut back).
      await log.flush();
      const during = await readFile(file, 'utf8');
      expect(during.endsWith('\n')).toBe(true);
      expect(records(during).filter((r) => r['type'] === 'statement.start')).toHaveLength(accepted);

      await unlink(filler);
      const freed = performance.now();
      while (!log.healthy && performance.now() - freed < 5000) await new Promise((r) => setTimeout(r, 5));
      expect(log.healthy).toBe(true);
      expect(performance.now() - freed).toBeLessThan(1000);
      expect(await log.recordBefore(statementStartEvent(1))).toBe(true);
      await log.close();

      const all = records(await readFile(file, 'utf8'));
      const loss = all.filter((r) => r['type'] === 'audit.loss');
      expect(loss).toHaveLength(1);
      expect(loss[0]).toMatchObject({ lost: 3, byType: { 'statement.start': 2, statement: 1 } });
      expect(loss[0]?.['reason']).toMatch(/ENOSPC/);
      // The loss comes right after the last record written before the disk filled, and the chain goes on.
      const lossAt = all.indexOf(loss[0]!);
      expect(all.slice(0, lossAt).filter((r) => r['type'] === 'statement.start')).toHaveLength(accepted);
      expect(await verifyFile(file)).toMatchObject({ ok: true, sealed: true, lost: 3 });
    });
  });

  it('tells every record of a failed write that it was lost, also those that waited together', async () => {
    await withSmallDisk('256k', async (disk) => {
      const file = join(disk, 'audit.jsonl');
      const log = await openAuditLog(options({ file, checkpointEveryRecords: 1000 }));
      fillDisk(join(disk, 'filler'));
      // Far more than the slack of the log's last page: one group commit that cannot be written whole.
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) => log.recordBefore(statementStartEvent(i))),
      );
      const firstLost = answers.indexOf(false);
      expect(firstLost).toBeGreaterThanOrEqual(0);
      expect(answers.slice(firstLost).every((answer) => answer === false)).toBe(true);
      await log.flush();
      const kept = records(await readFile(file, 'utf8')).filter((r) => r['type'] === 'statement.start');
      expect(kept).toHaveLength(firstLost);
      await log.close();
    });
  });
});
