import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { API_VERSION } from '../../../crds/common.ts';
import { ConfigError } from '../errors.ts';
import { DEFAULT_GUARDRAIL } from './guardrails/default-guardrails.ts';
import { loadPolicyDocuments, PolicyError, policyKey } from './load-policy.ts';

function yamlDocs(text: string): unknown[] {
  const docs = parseAllDocuments(text);
  return Array.isArray(docs) ? docs.map((d) => d.toJS()) : [];
}

const VALID = `
apiVersion: gatehouse.dev/v1alpha1
kind: DatabaseAccess
metadata: {name: orders-app, namespace: shop}
spec:
  subjects:
    - {kind: ServiceAccount, name: orders}
    - {kind: Group, name: dba}
  allow: [read, write]
  guardrails: [no-destructive]
  maskingPolicies: [pii]
  workloadSelector: {kind: Deployment, name: orders}
  upstream: {host: db.shop.svc, port: 5432, database: orders, credentialsSecretRef: {name: orders-db}}
  sidecar: {port: 5432, resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 1}}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Guardrail
metadata: {name: no-destructive, namespace: shop}
spec:
  rules:
    - {name: drops, kinds: [drop, truncate], tables: ['public.*'], message: Use migrations.}
    - {name: sweeping-writes, kinds: [delete-without-where, update-without-where], action: requireApproval}
---
apiVersion: gatehouse.dev/v1alpha1
kind: MaskingPolicy
metadata: {name: pii, namespace: shop}
spec:
  rules:
    - {columns: [customers.ssn, 'public.customers.card'], method: partial}
    - {classifiers: [email, phone], method: tokenize}
  exemptions:
    - {subject: {kind: User, name: alice@example.com}, expires: '2030-01-01T00:00:00Z'}
`;

const REMOVE = Symbol('remove');
const ACCESS = 'DatabaseAccess "shop/orders-app" (document 1)';
const GUARDRAIL = 'Guardrail "shop/no-destructive" (document 2)';
const MASKING = 'MaskingPolicy "shop/pii" (document 3)';

/** The valid documents with the value at `path` (`1.spec.rules.0.action`) replaced or removed. */
function edited(path: string, value: unknown): unknown[] {
  const docs = yamlDocs(VALID);
  const keys = path.split('.');
  let node = docs as unknown as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (value === REMOVE) delete node[last];
  else node[last] = value;
  return docs;
}

function problemsOf(docs: unknown[]): PolicyError {
  try {
    loadPolicyDocuments(docs, 'policy.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error('loadPolicyDocuments accepted an invalid document');
}

describe('loadPolicyDocuments', () => {
  it('loads valid documents, applies defaults and resolves references', () => {
    const policy = loadPolicyDocuments(yamlDocs(VALID), 'policy.yaml');
    expect(policy.grants).toHaveLength(1);
    const grant = policy.grants[0]!;
    expect(grant.guardrails.map((g) => g.metadata.name)).toEqual(['no-destructive']);
    expect(grant.maskingPolicies.map((m) => m.metadata.name)).toEqual(['pii']);
    expect(grant.guardrails[0]?.spec.mode).toBe('enforce');
    expect(grant.guardrails[0]?.spec.rules[0]?.action).toBe('block');
    const masking = policy.maskingPolicies.get(policyKey('shop', 'pii'))!;
    expect(masking.spec.autoDetect).toBe(true);
    expect(masking.spec.allowPredicatesOnMasked).toBe(false);
  });

  it('accepts the built-in default guardrail', () => {
    const policy = loadPolicyDocuments([DEFAULT_GUARDRAIL], 'defaults');
    expect(
      policy.guardrails.get(policyKey(undefined, 'gatehouse-defaults'))?.spec.rules.map((r) => r.name),
    ).toContain('delete-without-where');
  });

  it.each<[string, string, unknown, string, string, string]>([
    [
      'an unknown rule kind',
      '1.spec.rules.0.kinds.1',
      'truncat',
      GUARDRAIL,
      'spec.rules[0].kinds[1]',
      'must be one of drop, truncate, delete-without-where',
    ],
    [
      'an unknown field',
      '1.spec.rules.0.table',
      ['x'],
      GUARDRAIL,
      'spec.rules[0].table',
      'is not a known field',
    ],
    [
      'a bad action',
      '1.spec.rules.1.action',
      'deny',
      GUARDRAIL,
      'spec.rules[1].action',
      'must be one of block, warn, requireApproval',
    ],
    ['a bad mode', '1.spec.mode', 'loud', GUARDRAIL, 'spec.mode', 'must be one of enforce, dryRun'],
    // The Guardrail CRD's CEL rules, checked alike for local files.
    [
      'tables on kinds that never name tables',
      '1.spec.rules.0.kinds',
      ['dynamic-sql', 'identity-change'],
      GUARDRAIL,
      'spec.rules[0].tables',
      'tables narrows only the kinds whose findings name tables',
    ],
    [
      'an empty tables list',
      '1.spec.rules.0.tables',
      [],
      GUARDRAIL,
      'spec.rules[0].tables',
      'tables is empty and would match no table',
    ],
    [
      'an empty subjects list',
      '1.spec.rules.1.subjects',
      [],
      GUARDRAIL,
      'spec.rules[1].subjects',
      'subjects is empty and would match nobody',
    ],
    [
      'an empty databases list',
      '1.spec.rules.1.databases',
      [],
      GUARDRAIL,
      'spec.rules[1].databases',
      'databases is empty and would match no database',
    ],
    [
      'a kind named twice',
      '1.spec.rules.0.kinds',
      ['drop', 'drop'],
      GUARDRAIL,
      'spec.rules[0].kinds',
      'names drop twice',
    ],
    [
      'a rule with both kinds and a row limit',
      '1.spec.rules.0.maxAffectedRows',
      100,
      GUARDRAIL,
      'spec.rules[0]',
      'a rule either matches findings (kinds) or limits the rows',
    ],
    [
      'a rule with neither kinds nor a row limit',
      '1.spec.rules.0.kinds',
      REMOVE,
      GUARDRAIL,
      'spec.rules[0]',
      'a rule either matches findings (kinds) or limits the rows',
    ],
    [
      'a negative row limit',
      '1.spec.rules.0',
      { name: 'limit', maxAffectedRowsPerMinute: -1 },
      GUARDRAIL,
      'spec.rules[0].maxAffectedRowsPerMinute',
      '>= 0',
    ],
    [
      'a bad class',
      '0.spec.allow.1',
      'delete',
      ACCESS,
      'spec.allow[1]',
      'must be one of read, write, ddl, admin',
    ],
    ['missing subjects', '0.spec.subjects', REMOVE, ACCESS, 'spec.subjects', 'is required'],
    [
      'a bad subject kind',
      '0.spec.subjects.1.kind',
      'Team',
      ACCESS,
      'spec.subjects[1].kind',
      'must be one of ServiceAccount, User, Group',
    ],
    ['a port out of range', '0.spec.upstream.port', 70000, ACCESS, 'spec.upstream.port', '65535'],
    [
      'a bad masking method',
      '2.spec.rules.1.method',
      'scramble',
      MASKING,
      'spec.rules[1].method',
      'must be one of redact, partial, hash, tokenize, nullify',
    ],
    [
      'a bad classifier',
      '2.spec.rules.1.classifiers.0',
      'postcode',
      MASKING,
      'spec.rules[1].classifiers[0]',
      'must be one of email, phone, ssn',
    ],
    [
      'a column that is not table.column',
      '2.spec.rules.0.columns.0',
      'ssn',
      MASKING,
      'spec.rules[0].columns[0]',
      'is not in the expected form: `table.column`',
    ],
    [
      'a rule without columns or classifiers',
      '2.spec.rules.1',
      { method: 'redact' },
      MASKING,
      'spec.rules[1]',
      'needs columns, classifiers or both',
    ],
    [
      'an expiry that is not a time',
      '2.spec.exemptions.0.expires',
      'next tuesday',
      MASKING,
      'spec.exemptions[0].expires',
      'must be an RFC 3339 time',
    ],
    [
      'a missing guardrail',
      '0.spec.guardrails.1',
      'nope',
      ACCESS,
      'spec.guardrails[1]',
      'names Guardrail "nope", which is not defined in namespace shop',
    ],
    [
      'a reference into another namespace',
      '2.metadata.namespace',
      'other',
      ACCESS,
      'spec.maskingPolicies[0]',
      'names MaskingPolicy "pii", which is not defined in namespace shop',
    ],
    [
      'duplicate rule names',
      '1.spec.rules.1.name',
      'drops',
      GUARDRAIL,
      'spec.rules[1].name',
      'is the name of an earlier rule too',
    ],
    [
      'a namespace on a user',
      '0.spec.subjects.1.namespace',
      'shop',
      ACCESS,
      'spec.subjects[1].namespace',
      'is only for kind ServiceAccount',
    ],
    [
      'a wrong apiVersion',
      '1.apiVersion',
      'gatehouse.dev/v1',
      GUARDRAIL,
      'apiVersion',
      `must be ${API_VERSION}`,
    ],
    [
      'an unknown kind',
      '3',
      { apiVersion: API_VERSION, kind: 'Firewall', metadata: { name: 'x' }, spec: {} },
      'document 4',
      'kind',
      'is "Firewall"; must be one of DatabaseAccess, Guardrail, MaskingPolicy',
    ],
    [
      'approval settings on a rule that blocks',
      '1.spec.rules.0.approval',
      { approvers: [{ kind: 'Group', name: 'dba' }] },
      GUARDRAIL,
      'spec.rules[0].approval',
      'it belongs only on a rule whose action is requireApproval',
    ],
    [
      'approval settings without approvers',
      '1.spec.rules.1.approval',
      { waitSeconds: 30 },
      GUARDRAIL,
      'spec.rules[1].approval.approvers',
      'is required',
    ],
    [
      'an auto-approval condition with no test',
      '1.spec.rules.1.approval',
      { approvers: [{ kind: 'Group', name: 'dba' }], autoApprove: [{ name: 'always' }] },
      GUARDRAIL,
      'spec.rules[1].approval.autoApprove[0]',
      'a condition with no test would approve every statement',
    ],
    [
      'an unknown time zone',
      '1.spec.rules.1.approval',
      {
        approvers: [{ kind: 'Group', name: 'dba' }],
        autoApprove: [
          { name: 'night', windows: [{ from: '01:00', to: '05:00', timeZone: 'Europe/Pariss' }] },
        ],
      },
      GUARDRAIL,
      'spec.rules[1].approval.autoApprove[0].windows[0].timeZone',
      'is not an IANA time zone',
    ],
    [
      'a bad clock time',
      '1.spec.rules.1.approval',
      {
        approvers: [{ kind: 'Group', name: 'dba' }],
        autoApprove: [{ name: 'night', windows: [{ from: '24:00', to: '05:00' }] }],
      },
      GUARDRAIL,
      'spec.rules[1].approval.autoApprove[0].windows[0].from',
      '',
    ],
    [
      'a waitSeconds of zero',
      '1.spec.rules.1.approval',
      { approvers: [{ kind: 'Group', name: 'dba' }], waitSeconds: 0 },
      GUARDRAIL,
      'spec.rules[1].approval.waitSeconds',
      '',
    ],
    [
      'two conditions of one name',
      '1.spec.rules.1.approval',
      {
        approvers: [{ kind: 'Group', name: 'dba' }],
        autoApprove: [
          { name: 'night', maxAffectedRows: 5 },
          { name: 'night', noDenialForHours: 5 },
        ],
      },
      GUARDRAIL,
      'spec.rules[1].approval.autoApprove[1].name',
      'is the name of an earlier condition too',
    ],
    [
      'a bad name',
      '1.metadata.name',
      'No_Destructive',
      'Guardrail "shop/No_Destructive" (document 2)',
      'metadata.name',
      'is not in the expected form',
    ],
  ])(
    'reports %s with the document, the field and what is allowed',
    (_, path, value, document, field, problem) => {
      const error = problemsOf(edited(path, value));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.problems).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ document, field, problem: expect.stringContaining(problem) }),
        ]),
      );
      expect(error.message).toContain(`policy.yaml: ${document}: ${field}: `);
    },
  );

  it('loads approval settings with their defaults', () => {
    const docs = edited('1.spec.rules.1.approval', {
      approvers: [
        { kind: 'Group', name: 'approvers' },
        { kind: 'ServiceAccount', name: 'release-bot' },
      ],
      autoApprove: [
        { name: 'night', windows: [{ days: ['Mon'], from: '22:00', to: '06:00', timeZone: 'Europe/Paris' }] },
      ],
    });
    const policy = loadPolicyDocuments(docs, 'policy.yaml');
    const guardrail = [...policy.guardrails.values()][0]!;
    expect(guardrail.spec.rules[1]!.approval).toEqual({
      approvers: [
        { kind: 'Group', name: 'approvers' },
        { kind: 'ServiceAccount', name: 'release-bot' },
      ],
      waitSeconds: 120,
      ttlSeconds: 900,
      allowSelfApproval: false,
      autoApprove: [
        { name: 'night', windows: [{ days: ['Mon'], from: '22:00', to: '06:00', timeZone: 'Europe/Paris' }] },
      ],
    });
  });

  it('does not report references to documents that are themselves invalid', () => {
    const error = problemsOf(edited('1.spec.mode', 'loud'));
    expect(error.problems.map((p) => p.field)).toEqual(['spec.mode']);
  });

  it('reports every problem, one line each', () => {
    const docs = edited('0.spec.allow', ['everything']);
    (docs[1] as { spec: Record<string, unknown> }).spec['mode'] = 'loud';
    const error = problemsOf(docs);
    expect(error.problems.map((p) => p.field)).toEqual(['spec.allow[0]', 'spec.mode']);
    expect(error.message.split('\n')).toHaveLength(2);
  });
});
