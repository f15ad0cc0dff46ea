import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KubeApi, KubeApiError } from '../operator/src/runtime/kube-api.ts';
import { loadPolicyDocuments, PolicyError } from '../sidecar/src/policy/load-policy.ts';
import { type KubeCluster, startKube } from '../test/harness/kube/start-kube.ts';
import { API_VERSION } from './common.ts';
import { AUTO_APPROVE_CHECKS, GUARDRAIL_RULE_CHECKS, NOTIFY_CHECKS } from './guardrail.ts';

/**
 * Every CEL rule of the Guardrail CRD, broken on purpose: the real API server refuses the object with
 * the rule's message, and the policy loader refuses the same document as a local file with the same
 * message. A rule one side enforces and the other does not would let a policy mean different things
 * in a cluster and on a laptop.
 */

const approvers = [{ kind: 'Group', name: 'approvers' }];
const broken: Record<string, Record<string, unknown>> = {
  kindsOrRowLimit: { name: 'r', kinds: ['drop'], maxAffectedRows: 10 },
  tablesNeedTableKind: { name: 'r', kinds: ['dynamic-sql'], tables: ['public.*'] },
  tablesNotEmpty: { name: 'r', kinds: ['drop'], tables: [] },
  subjectsNotEmpty: { name: 'r', kinds: ['drop'], subjects: [] },
  approvalNeedsRequireApproval: { name: 'r', kinds: ['drop'], approval: { approvers } },
  databasesNotEmpty: { name: 'r', kinds: ['drop'], databases: [] },
  urlOrSecret: {
    name: 'r',
    kinds: ['drop'],
    action: 'requireApproval',
    approval: { approvers, notify: [{ type: 'slack' }] },
  },
  someTest: {
    name: 'r',
    kinds: ['drop'],
    action: 'requireApproval',
    approval: { approvers, autoApprove: [{ name: 'always' }] },
  },
};
const checks = { ...GUARDRAIL_RULE_CHECKS, ...AUTO_APPROVE_CHECKS, ...NOTIFY_CHECKS };

const guardrail = (rule: Record<string, unknown>) => ({
  apiVersion: API_VERSION,
  kind: 'Guardrail',
  metadata: { name: `g-${randomBytes(3).toString('hex')}`, namespace: 'cel' },
  spec: { rules: [rule] },
});

let cluster: KubeCluster | undefined;
let api: KubeApi;

beforeAll(async () => {
  cluster = await startKube();
  const config = new KubeConfig();
  config.loadFromFile(cluster.kubeconfigPath);
  api = new KubeApi(config);
  const dir = join(import.meta.dirname, 'generated');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')))
    await api.create(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
      parse(readFileSync(join(dir, file), 'utf8')),
    );
  await api.create('/api/v1/namespaces', { metadata: { name: 'cel' } });
  for (let i = 0; ; i++) {
    const served = await api.list(`/apis/${API_VERSION}/guardrails`).then(
      () => true,
      () => false,
    );
    if (served) break;
    if (i > 200) throw new Error('the Guardrail CRD was not served within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

const create = (doc: ReturnType<typeof guardrail>) =>
  api.create(`/apis/${API_VERSION}/namespaces/cel/guardrails`, doc).then(
    () => undefined,
    (e: unknown) => e,
  );

const localProblems = (doc: ReturnType<typeof guardrail>): string[] => {
  try {
    loadPolicyDocuments([doc], 'policy.yaml');
    return [];
  } catch (error) {
    if (error instanceof PolicyError) return error.problems.map((p) => p.problem);
    throw error;
  }
};

describe('the Guardrail CRD CEL rules, in the API server and the policy loader', () => {
  it('covers every rule', () => {
    expect(Object.keys(broken).sort()).toEqual(Object.keys(checks).sort());
  });

  it.each(Object.keys(broken))('%s: both refuse it with the same message', async (name) => {
    const message = checks[name as keyof typeof checks].message;
    const doc = guardrail(broken[name]!);
    const error = await create(doc);
    expect(error).toBeInstanceOf(KubeApiError);
    expect((error as KubeApiError).status).toBe(422);
    expect((error as KubeApiError).message).toContain(message);
    expect(localProblems(doc)).toContain(message);
  });

  it('both accept an unknown-shape rule that blocks with approvers, rules in dryRun, and notify targets with onDecision', async () => {
    const doc = guardrail({
      name: 'closed-world',
      kinds: ['unknown-shape'],
      action: 'block',
      mode: 'dryRun',
      approval: {
        approvers,
        notify: [{ type: 'webhook', url: 'https://hooks.example.invalid/x', onDecision: true }],
      },
    });
    expect(await create(doc)).toBeUndefined();
    expect(localProblems(doc)).toEqual([]);
    const bad = guardrail({ name: 'r', kinds: ['drop'], mode: 'sometimes' });
    expect(await create(bad)).toBeInstanceOf(KubeApiError);
    expect(localProblems(bad).length).toBeGreaterThan(0);
  });

  it('both accept a rule with approval settings and auto-approval conditions', async () => {
    const doc = guardrail({
      name: 'r',
      kinds: ['drop', 'delete-without-where'],
      action: 'requireApproval',
      approval: {
        approvers,
        waitSeconds: 60,
        notify: [
          { type: 'slack', url: 'https://hooks.example.invalid/T000/B000/XXX' },
          { type: 'webhook', urlSecretRef: { name: 'approvals-webhook', key: 'url' } },
        ],
        autoApprove: [
          {
            name: 'night',
            windows: [{ days: ['Mon', 'Tue'], from: '22:00', to: '06:00', timeZone: 'Europe/Paris' }],
          },
          { name: 'small', maxAffectedRows: 10, sensitiveColumns: 'none', noDenialForHours: 24 },
        ],
      },
    });
    expect(await create(doc)).toBeUndefined();
    expect(localProblems(doc)).toEqual([]);
  });
});
