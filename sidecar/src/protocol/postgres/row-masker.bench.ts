/**
 * What masking costs per row on the wire: `node sidecar/src/protocol/postgres/row-masker.bench.ts`.
 * DataRows of the bench's masked-rows workload (`id int4, email text, ssn text, city text, score
 * numeric`): email tokenized and ssn redacted (the quickstart policy), city left to the value scan;
 * then the same rows for an identity whose policy masks nothing in them (every text cell scanned),
 * and the cell maskers alone. CPU time of this process, one core; the best of three rounds, since the
 * build machine is shared.
 */

import { createCellMasker, TEXT_FORMAT } from '../../policy/masking/mask-cell.ts';
import type { MaskMethod } from '../../policy/masking/mask-methods.ts';
import { createMaskingKey } from '../../policy/masking/masking-key.ts';
import { PG_TYPE } from '../../policy/masking/pg-types.ts';
import type { OutputMask, StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
import { createRowMasker, type ResultField } from './row-masker.ts';

const ROWS = 300_000;
const key = createMaskingKey(Buffer.alloc(32, 7));
const CITIES = ['Springfield', 'Shelbyville', 'Ogdenville', 'North Haverbrook', 'Capital City'];

function dataRow(cells: readonly string[]): Buffer {
  const bytes = cells.map((v) => Buffer.from(v));
  const size = 7 + bytes.reduce((n, c) => n + 4 + c.length, 0);
  const out = Buffer.alloc(size);
  out[0] = 68;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(bytes.length, 5);
  let at = 7;
  for (const cell of bytes) {
    out.writeInt32BE(cell.length, at);
    cell.copy(out, at + 4);
    at += 4 + cell.length;
  }
  return out;
}

const rows = Array.from({ length: 4096 }, (_, i) =>
  dataRow([
    String(i + 1),
    `user${i + 1}@example.com`,
    `${String(100 + (i % 800)).padStart(3, '0')}-${String(10 + (i % 89))}-${String(1000 + i).slice(-4)}`,
    CITIES[i % CITIES.length]!,
    (i * 0.37).toFixed(2),
  ]),
);
/** The same columns holding nothing personal: what an identity under a masking policy mostly reads. */
const cleanRows = Array.from({ length: 4096 }, (_, i) =>
  dataRow([
    String(i + 1),
    `item ${i + 1}`,
    i % 3 === 0 ? 'shipped' : 'pending',
    CITIES[i % 5]!,
    (i * 0.37).toFixed(2),
  ]),
);
const fields: ResultField[] = [PG_TYPE.int4, PG_TYPE.text, PG_TYPE.text, PG_TYPE.text, PG_TYPE.numeric].map(
  (typeOid) => ({ name: 'c', typeOid, typmod: -1, format: 0 }),
);

function best(call: (i: number) => unknown, count: number): number {
  for (let i = 0; i < count / 5; i++) call(i);
  let nanos = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const started = process.cpuUsage();
    for (let i = 0; i < count; i++) call(i);
    const used = process.cpuUsage(started);
    nanos = Math.min(nanos, ((used.user + used.system) * 1000) / count);
  }
  return nanos;
}

const mask = (method: MaskMethod, kind: OutputMask['kind']): OutputMask => ({
  method,
  kind,
  reason: 'bench',
});
const plans: [string, StatementMaskPlan][] = [
  [
    'email tokenized, ssn redacted, city scanned',
    {
      columns: [undefined, mask('tokenize', 'email'), mask('redact', 'ssn'), undefined, undefined],
      rest: undefined,
      masked: ['bench'],
      withholdsServerText: true,
    },
  ],
  [
    'email and ssn redacted, city scanned',
    {
      columns: [undefined, mask('redact', 'email'), mask('redact', 'ssn'), undefined, undefined],
      rest: undefined,
      masked: ['bench'],
      withholdsServerText: true,
    },
  ],
];
const clean: StatementMaskPlan = { columns: [], rest: undefined, masked: [], withholdsServerText: false };

console.log('Rows of (id int4, email text, ssn text, city text, score numeric), text format:');
for (const [label, plan] of plans) {
  const masker = createRowMasker(plan, fields, key);
  const nanos = best((i) => masker(rows[i & 4095]!), ROWS);
  console.log(`  ${label.padEnd(46)} ${(nanos / 1000).toFixed(2).padStart(6)} µs/row`);
}
const scanning = createRowMasker(clean, fields, key);
for (const [label, source] of [
  ['nothing masked, 3 text cells scanned (PII found)', rows],
  ['nothing masked, nothing personal in the row', cleanRows],
] as const) {
  const nanos = best((i) => scanning(source[i & 4095]!), ROWS);
  console.log(`  ${label.padEnd(46)} ${(nanos / 1000).toFixed(2).padStart(6)} µs/row`);
}

console.log('Cells:');
const emails = rows.map((_, i) => Buffer.from(`user${i + 1}@example.com`));
const ssns = rows.map((_, i) => Buffer.from(`${100 + (i % 800)}-${10 + (i % 89)}-${1000 + i}`));
const cellCases: [string, MaskMethod, Buffer[]][] = [
  ['tokenize, email text', 'tokenize', emails],
  ['tokenize, ssn text', 'tokenize', ssns],
  ['redact, ssn text', 'redact', ssns],
];
for (const [label, method, cells] of cellCases) {
  const masker = createCellMasker(method, { key, kind: null, typeOid: PG_TYPE.text });
  const nanos = best((i) => masker(cells[i & 4095]!, TEXT_FORMAT), ROWS);
  console.log(`  ${label.padEnd(46)} ${(1e3 / nanos).toFixed(2).padStart(6)} M cells/s`);
}
