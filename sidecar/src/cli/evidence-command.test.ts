import { generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { writeEveryRecordLog } from '../audit/every-record.testing.ts';
import { runEvidenceCommand } from './evidence-command.ts';

let dir: string;
let log: string;
let keyFile: string;
let packKey: string;
let packPub: string;
const from = new Date(Date.now() - 3_600_000).toISOString();
const to = new Date(Date.now() + 3_600_000).toISOString();

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runEvidenceCommand(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: {},
  });
  return { code, out, err };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-evidence-'));
  log = await writeEveryRecordLog(dir);
  keyFile = join(dir, 'every-record-key.pem');
  const pair = generateKeyPairSync('ed25519');
  packKey = join(dir, 'pack-key.pem');
  packPub = join(dir, 'pack-key.pub');
  await writeFile(packKey, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(packPub, pair.publicKey.export({ type: 'spki', format: 'pem' }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let packs = 0;
async function build(...extra: string[]): Promise<{ code: number; out: string; err: string; pack: string }> {
  const pack = join(dir, `pack-${++packs}`);
  const result = await run('build', '--from', from, '--to', to, '--out', pack, ...extra);
  return { ...result, pack };
}
const json = async (pack: string, name: string) => JSON.parse(await readFile(join(pack, name), 'utf8'));

describe('gatehouse evidence build from an audit file', () => {
  it('writes every section, index.html and a signed manifest; verify passes with the key pinned', async () => {
    const { code, out, err, pack } = await build(
      '--audit',
      log,
      '--public-key',
      keyFile,
      '--signing-key',
      packKey,
    );
    expect(err).toBe('');
    expect(code, out).toBe(0);
    expect((await readdir(pack)).sort()).toEqual([
      'access.json',
      'chains.json',
      'controls.json',
      'exemptions.json',
      'index.html',
      'manifest.json',
      'masking.json',
      'privileged.json',
      'refusals.json',
    ]);
    const chains = await json(pack, 'chains.json');
    expect(chains.rows).toHaveLength(1);
    expect(chains.rows[0]).toMatchObject({ source: log, kind: 'file', ok: true });
    expect(chains.rows[0].keys[0]).toMatchObject({ trust: 'pinned' });
    const refusals = await json(pack, 'refusals.json');
    expect(refusals.counts).toMatchObject({ statement: 2, login: 2, approvalDenied: 1 });
    const access = await json(pack, 'access.json');
    expect(access.changes.map((c: { changedBy: string | null }) => c.changedBy)).toEqual([
      null,
      'alice@example.com',
    ]);
    const privileged = await json(pack, 'privileged.json');
    expect(privileged.rows.map((r: { statement: string }) => r.statement)).toEqual(['DROP TABLE orders']);

    const verified = await run('verify', pack, '--key', packPub);
    expect(verified.code, verified.out).toBe(0);
    expect(verified.out).toMatch(
      /^ok: .*: 8 files and their SHA-256 match the signed manifest \(key [0-9a-f]{16}, key pinned with --key\)\n$/,
    );
    const unpinned = await run('verify', pack);
    expect(unpinned.code).toBe(0);
    expect(unpinned.out).toContain('key not pinned');
    const otherKey = await run('verify', pack, '--key', keyFile);
    expect(otherKey.code).toBe(1);
    expect(otherKey.out).toContain('not by the key given with --key');
  });

  it('a changed byte in any file, a removed file or an added one fails verify', async () => {
    const { code, pack } = await build('--audit', log, '--public-key', keyFile);
    expect(code).toBe(0);
    const names = await readdir(pack);
    for (const name of names) {
      const file = join(pack, name);
      const original = await readFile(file);
      // A byte at the start, the middle and the end of each file.
      for (const at of [0, Math.floor(original.length / 2), original.length - 2]) {
        const changed = Buffer.from(original);
        changed[at] = changed[at]! ^ 0x01;
        await writeFile(file, changed);
        const result = await run('verify', pack);
        expect(result.code, `${name} byte ${at}`).toBe(1);
        expect(result.out).toMatch(/^FAILED: /);
      }
      await writeFile(file, original);
      await unlink(file);
      const removed = await run('verify', pack);
      expect(removed.code, `${name} removed`).toBe(1);
      expect(removed.out).toContain(
        name === 'manifest.json' ? 'manifest.json: cannot read it' : `${name}: missing`,
      );
      await writeFile(file, original);
      expect((await run('verify', pack)).code, `${name} restored`).toBe(0);
    }
    for (const added of ['extra.json', 'sub/notes.txt', '.hidden']) {
      const path = join(pack, added);
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, '{}');
      const result = await run('verify', pack);
      expect(result.code, added).toBe(1);
      expect(result.out).toContain(`${added}: not listed in the manifest`);
      await rm(path);
    }
    expect((await run('verify', pack)).code).toBe(0);
  });

  it('a broken chain is in the pack, and the build exits 1', async () => {
    const tampered = join(dir, 'tampered.jsonl');
    const lines = (await readFile(log, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes('"outcome":"refused"'));
    lines[at] = lines[at]!.replace('DROP TABLE orders', 'DROP TABLE ordert');
    await writeFile(tampered, lines.join('\n'));
    const { code, err, pack } = await build('--audit', tampered, '--audit', log, '--public-key', keyFile);
    expect(code).toBe(1);
    expect(err).toContain(`${tampered}: TAMPERED`);
    expect(err).toContain('1 of 2 source(s) failed verification');
    const chains = await json(pack, 'chains.json');
    expect(chains.counts).toMatchObject({ rows: 2, ok: 1, broken: 1 });
    // The torn line the writer recovered from, and the altered one.
    expect(chains.rows[0]).toMatchObject({ source: tampered, ok: false, unreadable: 2 });
    const controls = await json(pack, 'controls.json');
    expect(controls.rows[0].exceptions[0]).toContain('1 source failed chain verification');
    // Records after the break are kept, marked unverified, never silently dropped.
    const refusals = await json(pack, 'refusals.json');
    const fromTampered = refusals.rows.filter((r: { source: string }) => r.source === tampered);
    expect(fromTampered.some((r: { verified: boolean }) => !r.verified)).toBe(true);
    const html = await readFile(join(pack, 'index.html'), 'utf8');
    expect(html).toContain('<td class="bad">FAILED</td>');
    expect(html).toContain('UNVERIFIED (after a break in its chain)');
    expect((await run('verify', pack)).code).toBe(0);
  });

  it('a period that holds none of the records makes empty sections that say so', async () => {
    const { code, pack } = await run(
      'build',
      '--from',
      '2020-01-01',
      '--to',
      '2020-01-02',
      '--out',
      join(dir, 'empty'),
      '--audit',
      log,
    ).then((r) => ({ ...r, pack: join(dir, 'empty') }));
    expect(code).toBe(0);
    const controls = await json(pack, 'controls.json');
    const au2 = controls.rows.find((r: { id: string }) => r.id === 'AU-2');
    expect(au2.evidenced).toBe(false);
    expect(au2.evidence[0].claim).toMatch(/^no rows: chains.json/);
  });

  it('--policy takes a config without reading its secrets, or a bundle alone, and says where it is in force', async () => {
    const inForce = {
      apiVersion: 'gatehouse.dev/v1alpha1',
      kind: 'Guardrail',
      metadata: { name: 'defaults' },
      spec: {
        rules: [
          { name: 'destructive', kinds: ['drop'], action: 'warn' },
          { name: 'evasive', kinds: ['multi-statement'], action: 'block' },
        ],
      },
    };
    const settings = {
      upstream: { host: 'db', password: { file: '/nonexistent/secret' } },
      identity: { mode: 'local', local: { users: [] } },
    };
    const config = join(dir, 'gatehouse.yaml');
    await writeFile(config, [settings, inForce].map((d) => stringify(d)).join('---\n'));
    const withConfig = await build('--audit', log, '--policy', config);
    expect(withConfig.code, withConfig.err).toBe(0);
    const access = await json(withConfig.pack, 'access.json');
    expect(access.bundle).toMatchObject({ file: config, inForceAt: [log], grants: [] });

    const bundle = join(dir, 'bundle.yaml');
    await writeFile(bundle, stringify({ ...inForce, spec: { rules: [inForce.spec.rules[0]] } }));
    const older = await build('--audit', log, '--policy', bundle);
    expect((await json(older.pack, 'access.json')).bundle.inForceAt).toEqual([]);

    // As kubectl writes the cluster's objects: one List, metadata and status as the API server keeps them.
    const orders = {
      apiVersion: 'gatehouse.dev/v1alpha1',
      kind: 'DatabaseAccess',
      metadata: {
        name: 'orders',
        namespace: 'shop',
        uid: 'u-1',
        resourceVersion: '7',
        managedFields: [{ manager: 'kubectl' }],
      },
      spec: {
        subjects: [{ kind: 'ServiceAccount', name: 'orders' }],
        allow: ['read', 'write'],
        upstream: { host: 'db' },
        workloadSelector: { kind: 'Deployment', name: 'orders' },
        guardrails: ['defaults'],
      },
      status: { conditions: [] },
    };
    const list = join(dir, 'cluster.yaml');
    const guardrail = { ...inForce, metadata: { name: 'defaults', namespace: 'shop' } };
    await writeFile(list, stringify({ apiVersion: 'v1', kind: 'List', items: [orders, guardrail] }));
    const fromCluster = await build('--audit', log, '--policy', list);
    expect(fromCluster.code, fromCluster.err).toBe(0);
    expect((await json(fromCluster.pack, 'access.json')).bundle.grants).toEqual([
      {
        access: 'shop/orders',
        subjects: ['ServiceAccount orders'],
        classes: ['read', 'write'],
        guardrails: [{ name: 'defaults', rules: ['destructive: warn', 'evasive: block'] }],
        maskingPolicies: [],
      },
    ]);

    const invalid = join(dir, 'invalid.yaml');
    await writeFile(invalid, stringify({ ...inForce, spec: { rules: [{ name: 'x', kinds: ['nope'] }] } }));
    const refused = await build('--audit', log, '--policy', invalid);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain('invalid.yaml: Guardrail "defaults"');
  });

  it.each([
    [['build', '--to', '2026-12-02', '--out', 'x', '--audit', 'a'], /give the period/],
    [['build', '--from', '2026-12-02', '--to', '2026-12-01', '--out', 'x', '--audit', 'a'], /is not before/],
    [
      ['build', '--from', 'yesterday', '--to', '2026-12-01', '--out', 'x', '--audit', 'a'],
      /--from must be an ISO 8601/,
    ],
    [['build', '--from', '2026-12-01', '--to', '2026-12-02', '--audit', 'a'], /give --out DIR/],
    [['build', '--from', '2026-12-01', '--to', '2026-12-02', '--out', 'x'], /either --audit FILE/],
    [
      [
        'build',
        '--from',
        '2026-12-01',
        '--to',
        '2026-12-02',
        '--out',
        'x',
        '--audit',
        'a',
        '--server',
        'http://h',
      ],
      /either --audit FILE/,
    ],
    [
      ['build', '--from', '2026-12-01', '--to', '2026-12-02', '--out', 'x', '--bogus'],
      /Unknown option '--bogus'/,
    ],
    [['verify'], /exactly one pack DIR/],
    [['verify', '/nonexistent/pack'], /ENOENT/],
    [['frobnicate'], /unknown evidence subcommand/],
  ])('%j is a usage error', async (argv, message) => {
    const { code, err } = await run(...argv);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });

  it('refuses an --out folder that holds anything, and an audit file it cannot read', async () => {
    const full = join(dir, 'full');
    await mkdir(full);
    await copyFile(log, join(full, 'x'));
    expect((await run('build', '--from', from, '--to', to, '--out', full, '--audit', log)).err).toContain(
      'is not empty',
    );
    const missing = await run(
      'build',
      '--from',
      from,
      '--to',
      to,
      '--out',
      join(dir, 'm'),
      '--audit',
      join(dir, 'nope.jsonl'),
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('nope.jsonl: ENOENT');
  });
});
