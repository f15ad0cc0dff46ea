import { joinTokens, type MysqlToken } from './lexer.ts';

type Part = Pick<MysqlToken, 'canonical' | 'spaced'>;

const MODIFIERS: Record<string, ReadonlySet<string>> = {
  DELETE: new Set(['LOW_PRIORITY', 'QUICK', 'IGNORE']),
  UPDATE: new Set(['LOW_PRIORITY', 'IGNORE']),
  INSERT: new Set(['LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE']),
  REPLACE: new Set(['LOW_PRIORITY', 'DELAYED']),
};

const isWord = (t: MysqlToken | undefined, value: string) => t?.type === 'word' && t.value === value;
const isPunct = (t: MysqlToken | undefined, value: string) => t?.type === 'punct' && t.value === value;

/**
 * The statement rewritten into the MySQL grammar sqlparser-ts knows, without changing what it reads
 * or writes: modifiers of DELETE/UPDATE/INSERT/REPLACE dropped, `LOCK IN SHARE MODE` as `FOR SHARE`,
 * `WITH ROLLUP` dropped (it adds subtotal rows of the same columns), `a MOD b` as `a % b`, `||` and
 * `&&` as OR and AND, `TABLE t` as `SELECT * FROM t`, and
 * multi-table `UPDATE t1, t2` as `UPDATE t1 CROSS JOIN t2` (a comma join is a cross join).
 */
export function parserText(tokens: readonly MysqlToken[]): string {
  const out: Part[] = [];
  const keyword = tokens[0]?.type === 'word' ? tokens[0].value : '';
  const modifiers = MODIFIERS[keyword];
  let depth = 0;
  let inUpdateTables = keyword === 'UPDATE';
  let changed = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isPunct(t, '(')) depth++;
    if (isPunct(t, ')')) depth--;
    if (
      modifiers &&
      i > 0 &&
      t.type === 'word' &&
      modifiers.has(t.value) &&
      onlyModifiersBefore(tokens, i, modifiers)
    ) {
      changed = true;
      continue;
    }
    if (
      isWord(t, 'LOCK') &&
      isWord(tokens[i + 1], 'IN') &&
      isWord(tokens[i + 2], 'SHARE') &&
      isWord(tokens[i + 3], 'MODE')
    ) {
      out.push({ canonical: 'FOR', spaced: t.spaced }, { canonical: 'SHARE', spaced: true });
      i += 3;
      changed = true;
      continue;
    }
    if (isWord(t, 'WITH') && isWord(tokens[i + 1], 'ROLLUP')) {
      i += 1;
      changed = true;
      continue;
    }
    if (isWord(t, 'MOD') && !isPunct(tokens[i + 1], '(') && i > 0) {
      out.push({ canonical: '%', spaced: true });
      changed = true;
      continue;
    }
    // sqlparser-ts reads `||` as concatenation and `&&` tighter than `=`; MySQL reads OR and AND
    // (`||` is concatenation only under PIPES_AS_CONCAT: reading OR there too can only over-refuse).
    // MySQL 8's `TABLE t` is `SELECT * FROM t`.
    if (
      isWord(t, 'TABLE') &&
      (i === 0 ||
        isPunct(tokens[i - 1], '(') ||
        isWord(tokens[i - 1], 'UNION') ||
        isWord(tokens[i - 1], 'ALL') ||
        isWord(tokens[i - 1], 'DISTINCT')) &&
      tokens[i + 1]?.type !== 'punct'
    ) {
      out.push({ canonical: 'SELECT * FROM', spaced: t.spaced });
      changed = true;
      continue;
    }
    if (isPunct(t, '||') || isPunct(t, '&&')) {
      out.push({ canonical: t.value === '||' ? 'OR' : 'AND', spaced: true });
      changed = true;
      continue;
    }
    if (inUpdateTables && depth === 0 && isWord(t, 'SET')) inUpdateTables = false;
    if (inUpdateTables && depth === 0 && isPunct(t, ',')) {
      out.push({ canonical: 'CROSS JOIN', spaced: true });
      changed = true;
      continue;
    }
    out.push(t);
  }
  return changed ? joinTokens(out) : joinTokens(tokens);
}

function onlyModifiersBefore(
  tokens: readonly MysqlToken[],
  i: number,
  modifiers: ReadonlySet<string>,
): boolean {
  for (let j = 1; j < i; j++)
    if (!(tokens[j]!.type === 'word' && modifiers.has(tokens[j]!.value))) return false;
  return true;
}
