import { parseTree } from '../../sql/parse-tree.ts';
import { encodeMessage, Frontend } from './codes.ts';
import type { DeclaredWork, Refusal } from './exchange.ts';

/** A session's `SET gatehouse.purpose` or `SET gatehouse.run_id`: the new value, undefined to clear it. */

const FIELDS: Readonly<Record<string, DeclaredWork['field']>> = {
  'gatehouse.purpose': 'purpose',
  'gatehouse.run_id': 'runId',
};

/**
 * What a Query text declares of the session's work, for the proxy to keep rather than send upstream:
 * the text is one `SET [SESSION] gatehouse.purpose|run_id = value | TO DEFAULT` or `RESET` of them.
 * A string when the text names them in any other way (several statements, SET LOCAL, a list of
 * values): a refusal, since the client would believe it declared something the audit never saw.
 * Undefined for every other text, told by a substring test before anything is parsed.
 */
export function declaredWork(sql: string): DeclaredWork | string | undefined {
  if (!/gatehouse/i.test(sql)) return undefined;
  const stmts = parseTree(sql);
  if (typeof stmts === 'string') return undefined;
  const sets = stmts.map((raw) => {
    const set = (raw.stmt as { VariableSetStmt?: VariableSet } | undefined)?.VariableSetStmt;
    const field = set?.name === undefined ? undefined : FIELDS[set.name.toLowerCase()];
    return field === undefined ? undefined : { set: set!, field };
  });
  if (sets.every((s) => s === undefined)) return undefined;
  const only = sets[0];
  if (sets.length !== 1 || only === undefined) return `${MISUSE}, alone in its query`;
  const { set, field } = only;
  if (set.is_local) return `${MISUSE}: SET LOCAL is not supported, the declaration lasts for the session`;
  if (set.kind === 'VAR_RESET' || set.kind === 'VAR_SET_DEFAULT') return { field, value: undefined };
  const [arg, ...more] = set.args ?? [];
  const constant = arg?.A_Const;
  const value = constant?.sval?.sval ?? (constant?.ival ? String(constant.ival.ival ?? 0) : undefined);
  if (set.kind !== 'VAR_SET_VALUE' || more.length > 0 || value === undefined)
    return `${MISUSE}, with one quoted value`;
  return { field, value };
}

const MISUSE =
  "Gatehouse reads SET gatehouse.purpose and SET gatehouse.run_id itself: send one as SET gatehouse.purpose = '...'";

interface VariableSet {
  readonly kind?: string;
  readonly name?: string;
  readonly is_local?: boolean;
  readonly args?: readonly { readonly A_Const?: { sval?: { sval?: string }; ival?: { ival?: number } } }[];
}

/** Sent upstream in place of a declaring SET: the server answers EmptyQueryResponse and ReadyForQuery. */
export const EMPTY_QUERY = encodeMessage(Frontend.Query, Buffer.from('\0'));

/** A SET gatehouse.* the proxy will not take, refused as a feature the server does not support. */
export function declarationRefusal(message: string): Refusal {
  return { reason: `declared-work: ${message}`, fields: { severity: 'ERROR', code: '0A000', message } };
}
