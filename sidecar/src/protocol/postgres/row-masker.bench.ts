/**
 * What masking costs per row on the wire: `node --liftoff-only sidecar/src/protocol/postgres/row-masker.bench.ts`.
 * DataRows of the bench's masked-rows workload (id int4, email text, ssn text, city text) with email
 * and ssn masked: redacted to their own length, or tokenized; city goes through the value scan.
 * CPU time of this process, one core.
 */

import type { MaskMethod } from '../../policy/masking/mask-methods.ts';
import { createMaskingKey } from '../../policy/masking/masking-key.ts';
import { PG_TYPE } from '../../policy/masking/pg-types.ts';
import type { StatementMaskPlan } from '../../policy/masking/statement-mask-plan.ts';
import { createRowMasker, type ResultField } from './row-masker.ts';

const ROWS = 500_000;
const key = createMaskingKey(Buffer.alloc(32, 7));
const fields: ResultField[] = [PG_TYPE.int4, PG_TYPE.text, PG_TYPE.text, PG_TYPE.text].map((typeOid) => ({
  name: 'c',
  typeOid,
  typmod: -1,
  format: 0,
}));

function dataRow(i: number): Buffer {
  const cells = [String(i), `person${i}@example.com`, String(100000000 + i), 'Springfield'].map((v) =>
    Buffer.from(v),
  );
  const size = 7 + cells.reduce((n, c) => n + 4 + c.length, 0);
  const out = Buffer.alloc(size);
  out[0] = 68;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(cells.length, 5);
  let at = 7;
  for (const cell of cells) {
    out.writeInt32BE(cell.length, at);
    cell.copy(out, at + 4);
    at += 4 + cell.length;
  }
  return out;
}
const rows = Array.from({ length: 4096 }, (_, i) => dataRow(i));

/** The same rows with city typed int4: nothing left for the value scan, only the masked columns. */
const unscanned = fields.map((field, n) => (n === 3 ? { ...field, typeOid: PG_TYPE.int4 } : field));
const cases: [MaskMethod, ResultField[], string][] = [
  ['redact', fields, '2 of 4 columns masked, 1 scanned'],
  ['redact', unscanned, '2 of 4 columns masked, none scanned'],
  ['tokenize', fields, '2 of 4 columns masked, 1 scanned'],
];

for (const [method, columns, label] of cases) {
  const mask = { method, kind: null, reason: 'bench' };
  const plan: StatementMaskPlan = {
    columns: [undefined, mask, mask, undefined],
    rest: undefined,
    masked: ['bench'],
    withholdsServerText: true,
  };
  const masker = createRowMasker(plan, columns, key);
  for (let i = 0; i < 100_000; i++) masker(rows[i & 4095]!);
  const started = process.cpuUsage();
  for (let i = 0; i < ROWS; i++) masker(rows[i & 4095]!);
  const used = process.cpuUsage(started);
  const nanos = ((used.user + used.system) * 1000) / ROWS;
  console.log(
    `${method.padEnd(9)} ${label}: ${nanos.toFixed(0).padStart(5)} ns/row ${(1e3 / nanos).toFixed(2)} M rows/s`,
  );
}
