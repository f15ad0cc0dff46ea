import { SAMPLE_SCHEMA } from './generate-statements.ts';
import { LeakOracle, receivedText, type SecretValue } from './leak-oracle.ts';

type Rows = readonly Record<string, unknown>[];

/**
 * What the oracle knows, learnt around the proxy: a column is masked when what the fuzz identity sees
 * of it through the proxy differs from what is stored; its secrets are every stored value. What the
 * identity does see (`SELECT *` through the proxy) is legitimately visible.
 */
export async function learnSecrets(
  readStored: (table: string) => Promise<Rows>,
  readThroughProxy: (table: string) => Promise<Rows>,
): Promise<{ oracle: LeakOracle; maskedColumns: string[] }> {
  const secrets: SecretValue[] = [];
  const visible: string[] = [];
  const maskedColumns: string[] = [];
  for (const table of SAMPLE_SCHEMA) {
    const stored = await readStored(table.name);
    const seen = await readThroughProxy(table.name);
    visible.push(...receivedText(seen));
    for (const column of table.columns) {
      const masked = stored.some((row, i) => String(row[column.name]) !== String(seen[i]?.[column.name]));
      if (!masked) continue;
      maskedColumns.push(`${table.name}.${column.name}`);
      for (const row of stored)
        if (row[column.name] !== null && row[column.name] !== undefined)
          secrets.push({ column: `${table.name}.${column.name}`, value: String(row[column.name]) });
    }
  }
  return { oracle: new LeakOracle(secrets, visible), maskedColumns };
}

/** Every ASCII letter and digit, and the same moved on by one in its class: a shape-keeping bijection. */
export const ROTATE_FROM = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const ROTATE_TO = '1234567890bcdefghijklmnopqrstuvwxyzaBCDEFGHIJKLMNOPQRSTUVWXYZA';

/**
 * Statements that change every masked value while keeping its shape (each letter and digit moved on
 * by one in its class, each date by a day), to tell a leak from a coincidence: a leak follows the
 * data; a run of digits in a token, or a product name that happens to end like someone's email, does not.
 */
export function perturbStatements(
  maskedColumns: readonly string[],
  rotate: (column: string) => string,
  nextDay: (column: string) => string,
): string[] {
  return maskedColumns.flatMap((qualified) => {
    const [table, name] = qualified.split('.') as [string, string];
    const column = SAMPLE_SCHEMA.find((t) => t.name === table)?.columns.find((c) => c.name === name);
    if (column?.type === 'text') return [`UPDATE ${table} SET ${name} = ${rotate(name)}`];
    if (column?.type === 'date') return [`UPDATE ${table} SET ${name} = ${nextDay(name)}`];
    return [];
  });
}
