import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseChainLine } from '../../sidecar/src/audit/chain.ts';
import { OcsfMapper } from '../../sidecar/src/audit/ocsf.ts';
import { verifyAuditLogFile } from '../../sidecar/src/audit/verify.ts';
import { ocsfProblems } from '../support/ocsf-schema.ts';
import { localUser, policyDocument } from '../support/policy-documents.ts';
import { localProxyConfig } from './support/clients.ts';
import { type ProxyProcess, startProxyProcess } from './support/proxy-process.ts';

const pgInfo = inject('postgres');
let proxy: ProxyProcess;
let file: string;

const access = (allow: string[]) =>
  policyDocument('DatabaseAccess', 'demo', { subjects: [localUser('demo')], allow, guardrails: ['no-drop'] });

beforeAll(async () => {
  proxy = await startProxyProcess(localProxyConfig(pgInfo), {
    extraDocuments: [
      policyDocument('Guardrail', 'no-drop', { rules: [{ name: 'drop', kinds: ['drop'], action: 'block' }] }),
      access(['read']),
    ],
  });
  file = join(proxy.dir, 'gatehouse.yaml');
});

afterAll(async () => {
  await proxy.stop();
});

function records(): Record<string, unknown>[] {
  return readFileSync(proxy.auditFile!, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Rewrites the config file as startProxyProcess wrote it, with `settings` merged into the proxy's. */
function writeConfig(settings: Record<string, unknown>, documents: readonly unknown[]): void {
  const proxySettings = {
    ...(parse(readFileSync(file, 'utf8').split('\n---\n')[0]!) as object),
    ...settings,
  };
  writeFileSync(file, [proxySettings, ...documents].map((doc) => stringify(doc)).join('---\n'));
}

const policyChanges = () => records().filter((r) => r['type'] === 'policy.change');

describe('policy changes in the audit chain', () => {
  it('records the policy loaded at start, each reload with its diff and author, and nothing for a refused one', async () => {
    const [loaded] = policyChanges();
    expect(loaded).toMatchObject({
      event: 'loaded',
      file,
      added: ['Guardrail no-drop', 'DatabaseAccess demo'],
      after: expect.stringMatching(/^[0-9a-f]{64}$/),
      summary: 'loaded Guardrail no-drop, DatabaseAccess demo',
    });
    expect(loaded!['before']).toBeUndefined();

    // What an operator bundle update looks like to the proxy: the mounted file changes, naming its author.
    writeConfig({ policy: { changedBy: 'bob@example.com' } }, [
      policyDocument('Guardrail', 'no-drop', {
        rules: [
          { name: 'drop', kinds: ['drop', 'truncate'], action: 'block' },
          { name: 'evasive', kinds: ['multi-statement'], action: 'block' },
        ],
      }),
      access(['read', 'write']),
    ]);
    await expect.poll(() => policyChanges().length, { timeout: 10_000 }).toBe(2);
    const reloaded = policyChanges()[1]!;
    expect(reloaded).toMatchObject({
      event: 'reloaded',
      changedBy: 'bob@example.com',
      before: loaded!['after'],
      added: [],
      removed: [],
      changed: ['Guardrail no-drop', 'DatabaseAccess demo'],
      rules: { added: ['Guardrail no-drop/evasive'], removed: [], changed: ['Guardrail no-drop/drop'] },
      fields: ['DatabaseAccess demo: spec.allow'],
      summary:
        'rule added Guardrail no-drop/evasive; rule changed Guardrail no-drop/drop; changed DatabaseAccess demo: spec.allow',
    });
    expect(reloaded['after']).not.toBe(reloaded['before']);

    // A version that does not load is refused and leaves no policy.change; neither does a settings-only edit.
    const current = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      `${current}---\nkind: Guardrail\nmetadata: {name: broken}\nspec: {rules: [{name: x, kinds: [nope], action: block}]}\n`,
    );
    await expect.poll(() => proxy.lines.join('\n'), { timeout: 10_000 }).toContain('policy reload refused');
    writeFileSync(file, current.replace('identity:', 'log:\n  level: info\nidentity:'));
    await expect
      .poll(() => proxy.lines.join('\n'), { timeout: 10_000 })
      .toMatch(/policy reloaded from .*no policy document changed/);
    expect(policyChanges()).toHaveLength(2);
  });

  it('keeps them in a chain that verifies, and exports them as OCSF Entity Management events', async () => {
    expect(await proxy.stop()).toBe(0);
    const result = await verifyAuditLogFile(proxy.auditFile!, {});
    expect(result).toMatchObject({ ok: true, sealed: true });
    const mapper = new OcsfMapper({ productVersion: 'test', source: proxy.auditFile! });
    const events = readFileSync(proxy.auditFile!, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => parseChainLine(line))
      .filter((parsed) => parsed.ok)
      .map((parsed) => mapper.map(parsed));
    const changes = events.filter((e) => e['class_uid'] === 3004);
    expect(changes).toHaveLength(2);
    expect(changes.flatMap(ocsfProblems)).toEqual([]);
    expect(changes[1]).toMatchObject({
      activity_id: 3,
      activity_name: 'Update',
      actor: { user: { name: 'bob@example.com' } },
      entity: {
        name: file,
        data: { rules: { added: ['Guardrail no-drop/evasive'], changed: ['Guardrail no-drop/drop'] } },
      },
    });
  });
});
