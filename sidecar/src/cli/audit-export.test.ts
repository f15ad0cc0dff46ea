import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocsfProblems } from '../../../test/support/ocsf-schema.ts';
import { parseChainLine } from '../audit/chain.ts';
import { writeEveryRecordLog } from '../audit/every-record.testing.ts';
import { writeSignedLog } from '../audit/testing.ts';
import { runAuditExport } from './audit-export.ts';

let dir: string;
let every: string;
let signed: string;
let everyLines: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-export-'));
  every = await writeEveryRecordLog(dir);
  everyLines = (await readFile(every, 'utf8')).split('\n').filter((line) => parseChainLine(line).ok);
  signed = (await writeSignedLog(await mkdtemp(join(dir, 'signed-')))).file;
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runAuditExport(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

const parse = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('gatehouse audit export', () => {
  it('writes one valid OCSF event per record, in order, for every file given', async () => {
    const { code, stdout, stderr } = await run(every, signed);
    // The torn line that the writer found and recorded (log.recover) is no record to export.
    expect(stderr).toBe(
      `${every}: skipped 1 line(s) that are not whole audit records (torn by a crash, or altered)\n`,
    );
    expect(code).toBe(0);
    const events = parse(stdout);
    const signedCount = (await readFile(signed, 'utf8')).split('\n').filter((l) => l !== '').length;
    // The torn line of the every-record log is damage, recorded by the writer, not a record.
    expect(events).toHaveLength(everyLines.length + signedCount);
    expect(events.flatMap(ocsfProblems)).toEqual([]);
    const head = events.slice(0, everyLines.length).map((e) => (e['unmapped'] as { seq: number }).seq);
    expect(head).toEqual(everyLines.map((line) => JSON.parse(line).seq));
    expect(events.at(-1)!['unmapped']).toMatchObject({ source: signed, type: 'checkpoint', final: true });
  });

  it('--format jsonl writes the records exactly as they are in the file', async () => {
    const { code, stdout } = await run('--format', 'jsonl', every);
    expect(code).toBe(0);
    expect(stdout).toBe(`${everyLines.join('\n')}\n`);
  });

  it('--from and --to keep the records of the period: from inclusive, to exclusive', async () => {
    const times = everyLines.map((line) => JSON.parse(line).time as string);
    const from = times[Math.floor(times.length / 3)]!;
    const to = times.find((time) => time > from) ?? '2999-01-01T00:00:00Z';
    const { code, stdout } = await run('--format', 'jsonl', '--from', from, '--to', to, every);
    expect(code).toBe(0);
    const expected = everyLines.filter((line) => {
      const time = JSON.parse(line).time as string;
      return time >= from && time < to;
    });
    expect(expected.length).toBeGreaterThan(0);
    expect(stdout).toBe(`${expected.join('\n')}\n`);
    expect((await run('--from', '2999-01-01', every)).stdout).toBe('');
    expect(parse((await run('--to', '2999-01-01', every)).stdout)).toHaveLength(everyLines.length);
  });

  it('exports nothing from a set with a broken chain, names it, and exits 1; --no-verify exports anyway', async () => {
    const lines = (await readFile(signed, 'utf8')).split('\n');
    lines[3] = lines[3]!.replace(/"rows":\d+/, '"rows":99');
    const tampered = join(dir, 'tampered.jsonl');
    await writeFile(tampered, lines.join('\n'));
    const refused = await run(every, tampered);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(`${tampered}: TAMPERED: record seq 4 (line 4)`);
    expect(refused.stderr).toContain('nothing exported: 1 of 2 file(s) failed verification');

    const forced = await run('--no-verify', tampered);
    expect(forced.code).toBe(0);
    expect(forced.stderr).toContain('skipped 1 line(s) that are not whole audit records');
    expect(parse(forced.stdout)).toHaveLength(lines.filter((l) => l !== '').length - 1);
  });

  it('refuses a log still being written unless --allow-unsealed', async () => {
    const lines = (await readFile(signed, 'utf8')).split('\n').filter((l) => l !== '');
    const unsealed = join(dir, 'unsealed.jsonl');
    await writeFile(unsealed, `${lines.slice(0, -1).join('\n')}\n`);
    const refused = await run(unsealed);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('NOT SEALED');
    expect((await run('--allow-unsealed', unsealed)).code).toBe(0);
  });

  it.each([
    [['--format', 'cef', 'x'], /--format must be ocsf or jsonl, not "cef"/],
    [['--from', 'yesterday', 'x'], /--from must be an ISO 8601 date/],
    [['--from', '2026-12-01T08:00', 'x'], /--from must be an ISO 8601 date or time with a zone/],
    [['--from', '2026-12-02', '--to', '2026-12-01', 'x'], /--from 2026-12-02 is not before --to 2026-12-01/],
    [[], /give one or more audit log FILEs/],
    [['--bogus', 'x'], /Unknown option '--bogus'.*see gatehouse audit export --help/],
  ])('usage error %j exits 2', async (argv, message) => {
    const { code, stderr } = await run(...argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('a missing file exits 2 and names it', async () => {
    const { code, stderr } = await run(join(dir, 'nope.jsonl'));
    expect(code).toBe(2);
    expect(stderr).toMatch(/nope\.jsonl: ENOENT/);
  });

  it('--help lists every option', async () => {
    const { code, stdout } = await run('--help');
    expect(code).toBe(0);
    for (const flag of ['--format', '--from', '--to', '--public-key', '--allow-unsealed', '--no-verify']) {
      expect(stdout).toContain(flag);
    }
  });
});
