import { beforeAll, describe, expect, it } from 'vitest';
import { API_VERSION } from '../../../../crds/common.ts';
import type { CodeCatalog } from '../../sql/code-reach.ts';
import { createCatalog } from '../../sql/lineage/catalog.ts';
import { loadSqlParser } from '../../sql/normalize.ts';
import { statementShape } from '../../sql/statement-shape.ts';
import { DEFAULT_GUARDRAIL } from '../guardrails/default-guardrails.ts';
import { loadPolicyDocuments } from '../load-policy.ts';
import { PostgresGate } from './postgres-gate.ts';
import type { CatalogSnapshot, TextMasking } from './postgres-masking.ts';

/** A database with no user code: every function named is a built-in, no relation has triggers. */
const BUILTINS_ONLY: CodeCatalog = {
  routine: () => 'builtin',
  operator: () => [],
  onWrite: () => [],
  onRead: () => [],
};

const policy = () =>
  loadPolicyDocuments(
    [
      DEFAULT_GUARDRAIL,
      {
        apiVersion: API_VERSION,
        kind: 'DatabaseAccess',
        metadata: { name: 'app' },
        spec: {
          subjects: [{ kind: 'User', name: 'app' }],
          allow: ['read', 'write'],
          guardrails: [DEFAULT_GUARDRAIL.metadata.name],
        },
      },
    ],
    'test',
  );

beforeAll(async () => {
  await loadSqlParser();
});

/** Judges each text in turn with its shape, as the session does, and says which were refused. */
function outcomes(texts: readonly string[]): string[] {
  const loaded = policy();
  const gate = new PostgresGate({
    policy: () => loaded,
    identity: { subject: 'app', groups: [], method: 'local' },
    database: 'app',
    code: () => BUILTINS_ONLY,
    snapshot: () => undefined,
    misread: () => undefined,
  });
  const idle = { idle: true, outdated: false, refreshed: false };
  return texts.map((sql) => gate.check(sql, undefined, idle).outcome);
}

describe('PostgresGate with shapes: texts that differ only in literals', () => {
  it('share the analysis of a plain select', () => {
    expect(statementShape('SELECT abalance FROM accounts WHERE aid = 42')).toBe(
      statementShape('SELECT abalance FROM accounts WHERE aid = 7'),
    );
    expect(
      outcomes([
        'SELECT abalance FROM accounts WHERE aid = 42',
        'SELECT abalance FROM accounts WHERE aid = 7',
      ]),
    ).toEqual(['allow', 'allow']);
  });

  it('never let an allowed literal vouch for a refused one', () => {
    expect(
      outcomes([
        "SELECT set_config('application_name', 'x', false)",
        "SELECT set_config('role', 'postgres', false)",
      ]),
    ).toEqual(['allow', 'refuse']);
    // Constant predicates: whatever the first is judged, the second is judged on its own.
    expect(outcomes(["DELETE FROM orders WHERE 'a' = 'b'", "DELETE FROM orders WHERE 'a' = 'a'"])[1]).toBe(
      'refuse',
    );
    expect(
      outcomes([
        'UPDATE orders SET amount = 1 WHERE id = 2',
        'UPDATE orders SET amount = 1 WHERE id = id',
      ])[1],
    ).toBe('refuse');
    expect(
      outcomes([
        "SELECT query_to_xml('select 1', true, true, '')",
        "SELECT query_to_xml('select 2', true, true, '')",
      ]),
    ).toEqual(['refuse', 'refuse']);
  });

  it('take no shape from texts with parameters or several statements', () => {
    expect(statementShape('SELECT $1::int + 1')).toBeUndefined();
    expect(statementShape('SELECT 1; SELECT 2')).toBeUndefined();
  });
});

describe('PostgresGate with approvals', () => {
  const held = () => {
    const loaded = loadPolicyDocuments(
      [
        DEFAULT_GUARDRAIL,
        {
          apiVersion: API_VERSION,
          kind: 'Guardrail',
          metadata: { name: 'approvals' },
          spec: {
            rules: [
              {
                name: 'drops',
                kinds: ['drop', 'truncate'],
                action: 'requireApproval',
                approval: { approvers: [{ kind: 'Group', name: 'approvers' }] },
              },
            ],
          },
        },
        {
          apiVersion: API_VERSION,
          kind: 'DatabaseAccess',
          metadata: { name: 'ops' },
          spec: {
            subjects: [{ kind: 'User', name: 'ops' }],
            allow: ['read', 'write', 'ddl'],
            guardrails: ['approvals'],
          },
        },
      ],
      'test',
    );
    return new PostgresGate({
      policy: () => loaded,
      identity: { subject: 'ops', groups: [], method: 'local' },
      database: 'app',
      code: () => BUILTINS_ONLY,
      snapshot: () => undefined,
      misread: () => undefined,
    });
  };
  const idle = { idle: true, outdated: false, refreshed: false };

  it('a held statement says which rules hold it and what the conditions read', () => {
    const verdict = held().check('DROP TABLE staging.batches', undefined, idle);
    expect(verdict).toMatchObject({
      outcome: 'refuse',
      approval: true,
      held: {
        demands: [{ guardrail: 'approvals', rule: 'drops', settings: { waitSeconds: 120 } }],
        kinds: ['drop'],
        tables: ['staging.batches'],
      },
    });
  });

  it('the tables of a held statement are unknown when some cannot be known', () => {
    const tables = (sql: string) => {
      const verdict = held().check(sql, undefined, idle);
      if (verdict.outcome !== 'refuse' || !verdict.held) throw new Error(`${sql} was not held`);
      return verdict.held.tables;
    };
    expect([...(tables('DROP TABLE a; TRUNCATE b') ?? [])].sort()).toEqual(['a', 'b']);
    expect(tables('DROP SCHEMA staging CASCADE')).toBeUndefined();
  });

  it('runs once released, with the approval in its notes, and only past the rules released', () => {
    const gate = held();
    const released = { ...idle, released: new Set(['approvals/drops']) };
    expect(gate.check('TRUNCATE staging.batches', undefined, released)).toMatchObject({
      outcome: 'allow',
      notes: ['approved: approvals/drops'],
    });
    expect(
      gate.check('TRUNCATE staging.batches', undefined, { ...idle, released: new Set(['approvals/other']) }),
    ).toMatchObject({
      outcome: 'refuse',
    });
    // A release does not open what the grant does not allow.
    expect(gate.check('GRANT ALL ON staging.batches TO public', undefined, released)).toMatchObject({
      outcome: 'refuse',
    });
  });
});

describe('PostgresGate.inForce: a kept plan is used only under the catalog and masking it was made under', () => {
  const documents = (rules: readonly string[]) =>
    loadPolicyDocuments(
      [
        {
          apiVersion: API_VERSION,
          kind: 'MaskingPolicy',
          metadata: { name: 'by-name' },
          spec: { autoDetect: false, rules: [{ columns: rules, method: 'redact' }] },
        },
        {
          apiVersion: API_VERSION,
          kind: 'DatabaseAccess',
          metadata: { name: 'app' },
          spec: { subjects: [{ kind: 'User', name: 'app' }], allow: ['read'], maskingPolicies: ['by-name'] },
        },
      ],
      'test',
    );
  const customers = {
    schema: 'public',
    name: 'customers',
    columns: [{ name: 'id' }, { name: 'label' }, { name: 'code' }],
  };
  const snapshotWith = (definition: string): CatalogSnapshot => ({
    catalog: createCatalog({
      tables: [customers],
      views: [{ schema: 'public', name: 'v', definition }],
    }),
    samples: new Map(),
    code: { ...BUILTINS_ONLY, byOid: () => undefined },
  });

  it('asks for a new plan after a reload, a policy change or DDL, and the new plan follows the view', () => {
    let snapshot = snapshotWith('SELECT id, label AS x FROM customers');
    let loaded = documents(['customers.code']);
    const gate = new PostgresGate({
      policy: () => loaded,
      identity: { subject: 'app', groups: [], method: 'local' },
      database: 'app',
      code: () => BUILTINS_ONLY,
      snapshot: () => snapshot,
      misread: () => undefined,
    });
    const idle = { idle: true, outdated: false, refreshed: false };
    const plan = () => {
      const verdict = gate.check('SELECT x FROM v', undefined, idle);
      if (verdict.outcome !== 'allow' || !verdict.masking) throw new Error(`not masked: ${verdict.outcome}`);
      return verdict.masking;
    };
    const masked = (masking: TextMasking) => masking.plans[0]!.columns[0] !== undefined;
    const first = plan();
    expect(masked(first)).toBe(false);
    expect(gate.inForce(first, false)).toBe(true);
    // DDL through the proxy since the catalog in force started loading.
    expect(gate.inForce(first, true)).toBe(false);
    // The view now reads the masked column: a new snapshot, and the plan made under it masks x.
    snapshot = snapshotWith('SELECT id, code AS x FROM customers');
    expect(gate.inForce(first, false)).toBe(false);
    const second = plan();
    expect(masked(second)).toBe(true);
    expect(gate.inForce(second, false)).toBe(true);
    // A policy reload makes new settings: planned again, by the new rules.
    loaded = documents(['customers.id']);
    expect(gate.inForce(second, false)).toBe(false);
    expect(masked(plan())).toBe(false);
  });
});
