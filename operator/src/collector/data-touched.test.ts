import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatementEvent } from '../../../sidecar/src/audit/events.ts';
import { sessionContext, statementEvent, writeSignedLog } from '../../../sidecar/src/audit/testing.ts';
import { extractColumns, touchedKeys } from './extract.ts';
import { CollectorStore } from './store.ts';
import { openDriver } from './store-driver.ts';
import { columnKeys, queryStatements } from './store-queries.ts';
import { freshStoreUrl } from './test-store.ts';
import { queryTouched } from './touched-queries.ts';

const training = { ...sessionContext, purpose: 'train churn model', runId: 'run-7' };
const analyst = { ...sessionContext, identity: { ...sessionContext.identity, subject: 'local:analyst' } };

/** Who read customers.ssn, and how: the training run masked, the analyst in clear; one unrelated statement. */
const EVENTS: StatementEvent[] = [
  {
    ...statementEvent(3),
    context: training,
    touched: {
      tablesRead: ['public.customers'],
      columns: { 'public.customers.name': 'clear', 'public.customers.ssn': 'redact' },
    },
  },
  {
    ...statementEvent(1),
    context: analyst,
    touched: { tablesRead: ['public.customers'], columns: { 'public.customers.ssn': 'clear' } },
  },
  { ...statementEvent(2), context: analyst, touched: { tablesWritten: ['orders'] } },
  statementEvent(4),
  // A stored function's output over visits: which of its columns lineage could not tell.
  {
    ...statementEvent(5),
    context: analyst,
    touched: { tablesRead: ['public.visits'], columns: { 'public.visits.*': 'unknown' } },
  },
];

describe('extractColumns of what a statement touched', () => {
  it('keys tables and columns with and without their schema, and splits clear from masked', () => {
    const columns = extractColumns(
      {
        type: 'statement',
        purpose: 'p',
        runId: 'r',
        tablesRead: ['public.customers'],
        tablesWritten: ['orders'],
        columns: { 'public.customers.name': 'clear', 'public.customers.ssn': 'hash', bad: 1 },
      },
      new Date(),
    );
    expect(columns).toMatchObject({
      purpose: 'p',
      runId: 'r',
      tables: ['public.customers', 'customers', 'orders'],
      columnsClear: ['public.customers.name', 'customers.name'],
      columnsMasked: ['public.customers.ssn', 'customers.ssn'],
    });
    expect(extractColumns({ type: 'statement' }, new Date())).toMatchObject({
      tables: undefined,
      columnsClear: undefined,
      columnsMasked: undefined,
      purpose: undefined,
    });
    expect(touchedKeys([])).toBeUndefined();
  });

  it('keeps a table whose columns are unknown among the clear ones, never among the masked', () => {
    const columns = extractColumns(
      { type: 'statement', columns: { 'public.customers.*': 'unknown', 'public.customers.id': 'clear' } },
      new Date(),
    );
    expect(columns).toMatchObject({
      columnsClear: ['public.customers.*', 'customers.*', 'public.customers.id', 'customers.id'],
      columnsMasked: undefined,
    });
  });

  it('answers a question about a column also with its table`s unknown columns', () => {
    expect(columnKeys('customers.ssn')).toEqual(['customers.ssn', 'customers.*']);
    expect(columnKeys('public.customers.ssn')).toEqual(['public.customers.ssn', 'public.customers.*']);
    expect(columnKeys('ssn')).toEqual(['ssn']);
  });
});

let dir: string;
let lines: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-touched-'));
  const { file } = await writeSignedLog(dir, EVENTS);
  lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe.each([
  { name: 'PostgreSQL', url: () => freshStoreUrl('collector_touched_test') },
  { name: 'PGlite', url: async () => 'pglite:memory' },
])('the data-touched questions on $name', ({ url }) => {
  let store: CollectorStore;
  beforeAll(async () => {
    store = await CollectorStore.open(await openDriver(await url()));
    const keyId = String(JSON.parse(lines[0]!).keyId);
    await store.ingest(
      { cluster: 'c', namespace: 'shop', pod: 'p', database: 'shop', logKeyId: keyId },
      lines,
    );
  });
  afterAll(() => store.close());

  const who = async (filter: Parameters<typeof queryStatements>[1]) =>
    (await queryStatements(store.db, filter)).items.map((i) => `${i.subject} ${JSON.stringify(i.columns)}`);

  it('answers who touched a column, masked or clear, named with or without its schema', async () => {
    for (const column of ['customers.ssn', 'public.customers.ssn'])
      expect(await who({ column })).toEqual([
        'local:analyst {"public.customers.ssn":"clear"}',
        `${sessionContext.identity.subject} {"public.customers.name":"clear","public.customers.ssn":"redact"}`,
      ]);
    expect(await who({ column: 'customers.ssn', seen: 'clear' })).toEqual([
      'local:analyst {"public.customers.ssn":"clear"}',
    ]);
    expect((await queryStatements(store.db, { column: 'customers.ssn', seen: 'masked' })).items).toHaveLength(
      1,
    );
    expect(await who({ column: 'customers.email' })).toEqual([]);
  });

  it('answers a question about a column with the statements that left its columns unknown', async () => {
    for (const column of ['visits.note', 'public.visits.note'])
      expect(await who({ column, seen: 'clear' })).toEqual(['local:analyst {"public.visits.*":"unknown"}']);
    expect(await who({ column: 'visits.note', seen: 'masked' })).toEqual([]);
    const summary = await queryTouched(store.db, { column: 'visits.note' });
    expect(summary.columns).toEqual([
      expect.objectContaining({ subject: 'local:analyst', column: 'public.visits.*', clear: 1, masked: 0 }),
    ]);
  });

  it('answers by table, purpose and run id', async () => {
    expect((await queryStatements(store.db, { table: 'customers' })).items).toHaveLength(2);
    expect((await queryStatements(store.db, { table: 'orders' })).items.map((i) => i.tablesWritten)).toEqual([
      ['orders'],
    ]);
    const run = (await queryStatements(store.db, { runId: 'run-7' })).items;
    expect(run.map((i) => [i.purpose, i.runId, i.tablesRead])).toEqual([
      ['train churn model', 'run-7', ['public.customers']],
    ]);
    expect((await queryStatements(store.db, { purpose: 'train churn model' })).items).toHaveLength(1);
    expect((await queryStatements(store.db, {})).items).toHaveLength(5);
  });
});
