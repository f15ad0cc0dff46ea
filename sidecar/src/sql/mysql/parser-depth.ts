import type { MysqlToken } from './lexer.ts';

/*
 * sqlparser-ts caps the nesting of parentheses and subqueries (its recursion limit), but not chains
 * of binary operators: `1 + 1 + ... + 1` builds a left-deep tree whose depth is the chain's length.
 * Past about 700 operators (measured with 0.62.0 on Node 24: `+`, `OR`, `AND`, `||`, `IS NULL`;
 * about 6,000 for UNION) the WebAssembly stack overflows inside the parser, and from then on every
 * parse fails with "memory access out of bounds": the module is broken for the life of the process.
 * So statements whose trees may be that deep are not given to the parser at all.
 */
const MAX_DEPTH = 300;

const BINARY_PUNCT = new Set([
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
  '|',
  '&',
  '<<',
  '>>',
  '||',
  '&&',
  '=',
  '<',
  '>',
  '<=',
  '>=',
  '<>',
  '!=',
  '<=>',
  ':=',
  '->',
  '->>',
]);
const BINARY_WORDS = new Set([
  'AND',
  'OR',
  'XOR',
  'IS',
  'LIKE',
  'REGEXP',
  'RLIKE',
  'DIV',
  'MOD',
  'IN',
  'BETWEEN',
  'UNION',
  'EXCEPT',
  'INTERSECT',
  'COLLATE',
  'ESCAPE',
  'SOUNDS',
  'NOT',
  'MEMBER',
]);
const OPERANDS = new Set<MysqlToken['type']>([
  'ident',
  'string',
  'number',
  'hex',
  'bit',
  'variable',
  'system-variable',
  'param',
  'null',
]);

/**
 * An upper bound of how deep the parser's tree of `tokens` goes through operator chains: operators
 * in one comma-separated item add up, a parenthesised group adds its own depth to its item's.
 */
export function operatorDepth(tokens: readonly Pick<MysqlToken, 'type' | 'value'>[]): number {
  // Per open group: [depth of the current item, deepest item so far].
  const stack: [number, number][] = [[0, 0]];
  let previousIsOperand = false;
  for (const t of tokens) {
    const top = stack[stack.length - 1]!;
    if (t.type === 'punct' && t.value === '(') {
      stack.push([0, 0]);
      previousIsOperand = false;
      continue;
    }
    if (t.type === 'punct' && t.value === ')') {
      if (stack.length > 1) {
        const group = stack.pop()!;
        const parent = stack[stack.length - 1]!;
        parent[0] += Math.max(group[0], group[1]) + 1;
      }
      previousIsOperand = true;
      continue;
    }
    if (t.type === 'punct' && t.value === ',') {
      top[1] = Math.max(top[1], top[0]);
      top[0] = 0;
      previousIsOperand = false;
      continue;
    }
    // `-`/`+` after an operator are signs, which the parser's recursion limit already bounds.
    const binary: boolean =
      (t.type === 'punct' &&
        BINARY_PUNCT.has(t.value) &&
        (previousIsOperand || (t.value !== '-' && t.value !== '+'))) ||
      (t.type === 'word' && BINARY_WORDS.has(t.value));
    if (binary) top[0]++;
    previousIsOperand = OPERANDS.has(t.type) || (t.type === 'word' && !binary);
  }
  let depth = 0;
  for (const [item, deepest] of stack) depth += Math.max(item, deepest);
  return depth;
}

export function mayOverflowParser(tokens: readonly Pick<MysqlToken, 'type' | 'value'>[]): boolean {
  return operatorDepth(tokens) > MAX_DEPTH;
}
