import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf, publicKeyFromPem } from '../audit/signing-key.ts';
import { writeSignedLog } from '../audit/testing.ts';
import { runAuditVerify } from './audit-verify.ts';

let dir: string;
let file: string;
let publicPem: string;
let keyId: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-verify-'));
  const written = await writeSignedLog(dir);
  file = written.file;
  publicPem = join(dir, 'public.pem');
  await writeFile(publicPem, written.publicKeyPem);
  keyId = keyIdOf(publicKeyFromPem(written.publicKeyPem));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runAuditVerify(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

describe('gatehouse audit verify', () => {
  it('prints one line and the key it trusted, and exits 0 for an intact log, using FILE.head by default', async () => {
    expect(await run(file, '--public-key', publicPem)).toEqual({
      code: 0,
      stdout:
        'ok: 15 records, 4 checkpoints, sealed, head anchor matched, keys pinned\n' +
        `  key ${keyId} from seq 1: pinned with --public-key\n`,
      stderr: '',
    });
    expect((await run(file)).stdout).toBe(
      'ok: 15 records, 4 checkpoints, sealed, head anchor matched, key not pinned\n' +
        `  key ${keyId} from seq 1: taken from the log itself (not pinned: this proves the log consistent, not that Gatehouse wrote it; pin it with --public-key)\n`,
    );
  });

  it('exits 1 and names the first bad record of a tampered log', async () => {
    const tampered = join(dir, 'tampered.jsonl');
    const text = await readFile(file, 'utf8');
    await writeFile(tampered, text.replace('"rows":7', '"rows":8'));
    const result = await run(tampered, '--head', `${file}.head`);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      "TAMPERED: record seq 11 (line 11): hash does not match the record's content\n",
    );
  });

  it('exits 1 for a log cut after a checkpoint, and accepts it only when told it is still being written', async () => {
    const cut = join(dir, 'cut.jsonl');
    const text = await readFile(file, 'utf8');
    await writeFile(cut, `${text.split('\n').slice(0, 12).join('\n')}\n`);
    const result = await run(cut);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^NOT SEALED: the log ends at seq 12 without a seal/);
    expect((await run(cut, '--head', `${file}.head`)).stdout).toMatch(
      /^TAMPERED: record seq 13 \(line 13\): .*was cut/,
    );
    expect(await run(cut, '--allow-unsealed')).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        /^ok: 12 records, 3 checkpoints, not sealed \(0 records after the last checkpoint are unsigned\), key not pinned\n {2}key /,
      ),
    });
  });

  it('exits 1 when the key is not the pinned one', async () => {
    const otherPem = join(dir, 'other.pem');
    await writeFile(
      otherPem,
      generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }),
    );
    expect(await run(file, '--public-key', otherPem)).toMatchObject({
      code: 1,
      stdout: 'TAMPERED: record seq 1 (line 1): log.open carries a public key other than the pinned one\n',
    });
  });

  it('exits 2 for usage errors and files it cannot read', async () => {
    for (const argv of [[], [file, file], [file, '--bogus'], [file, '--head']]) {
      const result = await run(...argv);
      expect(result.code).toBe(2);
      // One line naming the problem and where the usage is, not the usage itself.
      expect(result.stderr).toMatch(/^gatehouse: [^\n]+ \(see gatehouse audit verify --help\)\n$/);
    }
    expect(await run(join(dir, 'missing.jsonl'))).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/ENOENT/),
    });
    expect(await run(file, '--public-key', file)).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^public key/),
    });
    expect(await run(file, '--head', join(dir, 'nope'))).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^head anchor/),
    });
  });
});
