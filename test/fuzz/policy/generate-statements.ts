import {
  clause,
  expr,
  list,
  optionalClause,
  query,
  render,
  type SqlNode,
  type SqlPart,
} from './statement-tree.ts';

/**
 * A grammar of statements over the quickstart's shop (examples/quickstart/seed*.sql): typed
 * expressions over its personal-data columns (functions from the server's catalog, casts, operators,
 * CASE, COALESCE, aggregates, windows, JSON, row values, subqueries), SELECTs with joins, CTEs, set
 * operations, grouping and ordering, and writes. Pure and seeded: a seed and a dialect give the same
 * statements on every machine.
 */

export type SqlType = 'text' | 'int' | 'num' | 'date' | 'ts' | 'bool' | 'json' | 'bytes';
const TYPES: readonly SqlType[] = ['text', 'int', 'num', 'date', 'ts', 'bool', 'json', 'bytes'];

export interface Column {
  readonly name: string;
  readonly type: SqlType;
  /** Holds personal data: expressions pick these more often. */
  readonly pii?: boolean;
}
export interface Table {
  readonly name: string;
  readonly alias: string;
  readonly columns: readonly Column[];
}

export const SAMPLE_SCHEMA: readonly Table[] = [
  {
    name: 'customers',
    alias: 'c',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'name', type: 'text', pii: true },
      { name: 'email', type: 'text', pii: true },
      { name: 'phone', type: 'text', pii: true },
      { name: 'ssn', type: 'text', pii: true },
      { name: 'card_number', type: 'text', pii: true },
      { name: 'date_of_birth', type: 'date', pii: true },
      { name: 'address', type: 'text', pii: true },
      { name: 'created_at', type: 'ts' },
    ],
  },
  {
    name: 'orders',
    alias: 'o',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'customer_id', type: 'int' },
      { name: 'amount', type: 'num' },
      { name: 'status', type: 'text' },
      { name: 'shipped_to', type: 'text', pii: true },
      { name: 'created_at', type: 'ts' },
    ],
  },
  {
    name: 'products',
    alias: 'p',
    columns: [
      { name: 'id', type: 'int' },
      { name: 'sku', type: 'text' },
      { name: 'name', type: 'text' },
      { name: 'category', type: 'text' },
      { name: 'price', type: 'num' },
    ],
  },
];

/** A function of the server's catalog with arguments and result in the generator's types. */
export interface CatalogFunction {
  readonly name: string;
  readonly args: readonly SqlType[];
  readonly returns: SqlType;
}

/** Seeded generator (mulberry32): the same seed gives the same statements. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }
}

/** What differs between PostgreSQL and MariaDB: spellings, and the features one of them lacks. */
export interface Dialect {
  readonly name: 'postgres' | 'mysql';
  castTo(type: SqlType): string;
  concat(a: SqlPart, b: SqlPart): SqlNode;
  stringAgg(value: SqlPart): SqlNode;
  jsonObject(key: string, value: SqlPart): SqlNode;
  jsonArrayAgg(value: SqlPart): SqlNode;
  /** Whole-row values (`to_jsonb(c)`, `ROW(c.*)::text`), where the dialect has them. */
  wholeRow(alias: string): SqlNode | undefined;
  jsonText(value: SqlPart): SqlNode;
  literal(type: SqlType, random: Random): string;
  /** Predicates only the dialect has (ILIKE, regex operators, SIMILAR TO, SOUNDS LIKE...). */
  extraPredicate(random: Random, arg: () => SqlNode): SqlNode | undefined;
  /** Text values only the dialect spells so: arrays, row values, variadic functions, charset conversions. */
  extraText(random: Random, arg: (type: SqlType) => SqlNode): SqlNode | undefined;
  returning: boolean;
  /** A call that sends its text argument out of band (a notification), where the dialect has one. */
  notify(value: SqlPart): SqlNode | undefined;
  /** Writes only the dialect has (MERGE; REPLACE and ON DUPLICATE KEY UPDATE). */
  writes(g: Generator): Array<() => SqlNode>;
}

/** Short words, and pieces of email layout: masking methods treat what looks like an email differently. */
const WORDS = [
  "'a'",
  "'9'",
  "'-'",
  "'@'",
  "'example'",
  "'%'",
  "'x'",
  "'0'",
  "'1'",
  "' '",
  "''",
  "'a@b.'",
  "'.com'",
];
const PATTERNS = ["'9%'", "'%@%'", "'%1%'", "'_%'", "'%-%'", "'O%'", "'%.com'"];

const commonLiteral = (type: SqlType, random: Random): string | undefined => {
  if (type === 'int') return String(random.pick([0, 1, 2, 3, 5, 7, 100, -1]));
  if (type === 'num') return random.pick(['0.5', '1.25', '10', '99.99']);
  if (type === 'text') return random.pick(WORDS);
  return undefined;
};

export const POSTGRES_DIALECT: Dialect = {
  name: 'postgres',
  castTo: (type) =>
    ({
      text: 'text',
      int: 'integer',
      num: 'numeric',
      date: 'date',
      ts: 'timestamptz',
      bool: 'boolean',
      json: 'jsonb',
      bytes: 'bytea',
    })[type],
  concat: (a, b) => expr(a, ' || ', b),
  stringAgg: (value) => expr('string_agg(', value, "::text, ',')"),
  jsonObject: (key, value) => expr(`jsonb_build_object('${key}', `, value, ')'),
  jsonArrayAgg: (value) => expr('jsonb_agg(', value, ')'),
  wholeRow: (alias) => expr(`to_jsonb(${alias})`),
  jsonText: (value) => expr('(', value, ')::text'),
  literal: (type, random) =>
    commonLiteral(type, random) ??
    {
      date: "DATE '1980-01-01'",
      ts: "TIMESTAMPTZ '2024-01-01 00:00:00+00'",
      bool: random.pick(['true', 'false']),
      json: '\'{"k": 1}\'::jsonb',
      bytes: "'\\x2d'::bytea",
      text: "''",
      int: '0',
      num: '0',
    }[type],
  extraText(random, arg) {
    switch (random.int(8)) {
      case 0:
        return expr('array_to_string(ARRAY[', arg('text'), ', ', arg('text'), "], ',')");
      case 1:
        return expr('(ROW(', arg('text'), ', ', arg('int'), '))::text');
      case 2:
        return expr('(ARRAY[', arg('text'), '])::text');
      case 3:
        return expr("format('%s|%s', ", arg('text'), ', ', arg(random.pick(TYPES)), ')');
      case 4:
        return expr('concat(', arg('text'), ', ', arg(random.pick(TYPES)), ')');
      case 5:
        return expr(
          'encode(convert_to(',
          arg('text'),
          ", 'UTF8'), ",
          random.pick(["'base64'", "'hex'", "'escape'"]),
          ')',
        );
      case 6:
        return expr('(string_to_array(', arg('text'), ", '-'))[", random.pick(['1', '2', '3']), ']');
      default:
        return undefined;
    }
  },
  extraPredicate(random, arg) {
    switch (random.int(6)) {
      case 0:
        return expr(arg(), ' ILIKE ', random.pick(PATTERNS));
      case 1:
        return expr(arg(), " ~ '^9'");
      case 2:
        return expr(arg(), ' SIMILAR TO ', random.pick(PATTERNS));
      case 3:
        return expr('(', arg(), ') IS DISTINCT FROM (', arg(), ')');
      default:
        return undefined;
    }
  },
  returning: true,
  notify: (value) => expr("(pg_notify('fuzz', ", value, '))::text'),
  writes: (g) => [() => g.merge()],
};

export const MYSQL_DIALECT: Dialect = {
  name: 'mysql',
  castTo: (type) =>
    ({
      text: 'CHAR',
      int: 'SIGNED',
      num: 'DECIMAL(20,4)',
      date: 'DATE',
      ts: 'DATETIME',
      bool: 'UNSIGNED',
      json: 'JSON',
      bytes: 'BINARY',
    })[type],
  concat: (a, b) => expr('CONCAT(', a, ', ', b, ')'),
  stringAgg: (value) => expr('GROUP_CONCAT(', value, " SEPARATOR ',')"),
  jsonObject: (key, value) => expr(`JSON_OBJECT('${key}', `, value, ')'),
  jsonArrayAgg: (value) => expr('JSON_ARRAYAGG(', value, ')'),
  wholeRow: () => undefined,
  jsonText: (value) => expr('JSON_UNQUOTE(', value, ')'),
  literal: (type, random) =>
    commonLiteral(type, random) ??
    {
      date: "DATE '1980-01-01'",
      ts: "TIMESTAMP '2024-01-01 00:00:00'",
      bool: random.pick(['TRUE', 'FALSE']),
      json: "JSON_OBJECT('k', 1)",
      bytes: "X'2d'",
      text: "''",
      int: '0',
      num: '0',
    }[type],
  extraText(random, arg) {
    switch (random.int(7)) {
      case 0:
        return expr(
          'CONCAT_WS(',
          random.pick(["'-'", "''", "','"]),
          ', ',
          arg('text'),
          ', ',
          arg('text'),
          ')',
        );
      case 1:
        return expr(
          'CONVERT(',
          arg('text'),
          random.pick([' USING latin1)', ' USING utf8mb4)', ' USING ascii)']),
        );
      case 2:
        return expr('CAST(', arg('text'), ' AS BINARY)');
      case 3:
        return expr('JSON_UNQUOTE(JSON_ARRAY(', arg('text'), ', ', arg('int'), '))');
      case 4:
        return expr('CONCAT(', arg('text'), ', ', arg(random.pick(TYPES)), ', ', arg('text'), ')');
      default:
        return undefined;
    }
  },
  extraPredicate(random, arg) {
    switch (random.int(5)) {
      case 0:
        return expr(arg(), " REGEXP '^9'");
      case 1:
        return expr('(', arg(), ') <=> (', arg(), ')');
      case 2:
        return expr(arg(), ' SOUNDS LIKE ', arg());
      default:
        return undefined;
    }
  },
  returning: false,
  notify: () => undefined,
  writes: (g) => [() => g.replace(), () => g.insertOnDuplicate()],
};

/** MariaDB's built-in functions, by hand: its catalog (mysql.help_topic) does not give argument types. */
export const MYSQL_FUNCTIONS: readonly CatalogFunction[] = [
  ...[
    'LOWER',
    'UPPER',
    'REVERSE',
    'TRIM',
    'LTRIM',
    'RTRIM',
    'HEX',
    'TO_BASE64',
    'FROM_BASE64',
    'MD5',
    'SHA1',
  ].map((name) => ({ name, args: ['text'], returns: 'text' }) as const),
  ...['SOUNDEX', 'QUOTE', 'UNHEX', 'JSON_QUOTE', 'INET6_ATON', 'UNCOMPRESS', 'COMPRESS', 'OCT', 'BIN'].map(
    (name) => ({ name, args: ['text'], returns: 'text' }) as const,
  ),
  ...['LENGTH', 'CHAR_LENGTH', 'ASCII', 'ORD', 'CRC32', 'BIT_LENGTH', 'INET_ATON', 'UNCOMPRESSED_LENGTH'].map(
    (name) => ({ name, args: ['text'], returns: 'int' }) as const,
  ),
  { name: 'LEFT', args: ['text', 'int'], returns: 'text' },
  { name: 'RIGHT', args: ['text', 'int'], returns: 'text' },
  { name: 'SUBSTRING', args: ['text', 'int'], returns: 'text' },
  { name: 'SUBSTRING', args: ['text', 'int', 'int'], returns: 'text' },
  { name: 'MID', args: ['text', 'int', 'int'], returns: 'text' },
  { name: 'SUBSTRING_INDEX', args: ['text', 'text', 'int'], returns: 'text' },
  { name: 'REPLACE', args: ['text', 'text', 'text'], returns: 'text' },
  { name: 'INSERT', args: ['text', 'int', 'int', 'text'], returns: 'text' },
  { name: 'LPAD', args: ['text', 'int', 'text'], returns: 'text' },
  { name: 'RPAD', args: ['text', 'int', 'text'], returns: 'text' },
  { name: 'REPEAT', args: ['text', 'int'], returns: 'text' },
  { name: 'CONCAT_WS', args: ['text', 'text', 'text'], returns: 'text' },
  { name: 'ELT', args: ['int', 'text', 'text'], returns: 'text' },
  { name: 'FIELD', args: ['text', 'text', 'text'], returns: 'int' },
  { name: 'FIND_IN_SET', args: ['text', 'text'], returns: 'int' },
  { name: 'INSTR', args: ['text', 'text'], returns: 'int' },
  { name: 'LOCATE', args: ['text', 'text'], returns: 'int' },
  { name: 'STRCMP', args: ['text', 'text'], returns: 'int' },
  { name: 'CONV', args: ['text', 'int', 'int'], returns: 'text' },
  { name: 'SHA2', args: ['text', 'int'], returns: 'text' },
  { name: 'FORMAT', args: ['num', 'int'], returns: 'text' },
  { name: 'REGEXP_REPLACE', args: ['text', 'text', 'text'], returns: 'text' },
  { name: 'REGEXP_SUBSTR', args: ['text', 'text'], returns: 'text' },
  { name: 'REGEXP_INSTR', args: ['text', 'text'], returns: 'int' },
  { name: 'EXTRACTVALUE', args: ['text', 'text'], returns: 'text' },
  { name: 'UPDATEXML', args: ['text', 'text', 'text'], returns: 'text' },
  { name: 'JSON_EXTRACT', args: ['json', 'text'], returns: 'json' },
  { name: 'JSON_VALUE', args: ['json', 'text'], returns: 'text' },
  { name: 'JSON_ARRAY', args: ['text', 'text'], returns: 'json' },
  { name: 'JSON_KEYS', args: ['json'], returns: 'json' },
  { name: 'JSON_UNQUOTE', args: ['text'], returns: 'text' },
  { name: 'JSON_VALID', args: ['text'], returns: 'int' },
  { name: 'JSON_LENGTH', args: ['json'], returns: 'int' },
  { name: 'COLUMN_CREATE', args: ['text', 'text'], returns: 'text' },
  { name: 'IFNULL', args: ['text', 'text'], returns: 'text' },
  { name: 'NULLIF', args: ['text', 'text'], returns: 'text' },
  { name: 'GREATEST', args: ['text', 'text'], returns: 'text' },
  { name: 'LEAST', args: ['text', 'text'], returns: 'text' },
  { name: 'IF', args: ['bool', 'text', 'text'], returns: 'text' },
  { name: 'ABS', args: ['num'], returns: 'num' },
  { name: 'ROUND', args: ['num', 'int'], returns: 'num' },
  { name: 'MOD', args: ['int', 'int'], returns: 'int' },
  { name: 'SIGN', args: ['num'], returns: 'int' },
  { name: 'DATE_FORMAT', args: ['date', 'text'], returns: 'text' },
  { name: 'DAYNAME', args: ['date'], returns: 'text' },
  { name: 'YEAR', args: ['date'], returns: 'int' },
  { name: 'TO_DAYS', args: ['date'], returns: 'int' },
  { name: 'DATEDIFF', args: ['date', 'date'], returns: 'int' },
  { name: 'UNIX_TIMESTAMP', args: ['ts'], returns: 'int' },
  { name: 'DATE', args: ['ts'], returns: 'date' },
  { name: 'STR_TO_DATE', args: ['text', 'text'], returns: 'date' },
  { name: 'FROM_DAYS', args: ['int'], returns: 'date' },
  { name: 'CHAR', args: ['int'], returns: 'text' },
  { name: 'SPACE', args: ['int'], returns: 'text' },
  { name: 'ISNULL', args: ['text'], returns: 'int' },
];

/** Where an expression is written: which columns it may name, and whether aggregates and windows fit there. */
interface Scope {
  readonly columns: readonly { readonly ref: string; readonly column: Column }[];
  readonly aggregate: boolean;
  readonly window: boolean;
  /** Columns an aggregate's argument may name, when the scope is grouped. */
  readonly inner?: Scope;
  /**
   * The value decides something (filters, joins, orders, groups, branches): mostly columns without
   * personal data here, since the proxy refuses statements that decide on masked values, and a
   * fuzzer that is always refused tests nothing else.
   */
  readonly decide?: boolean;
}

export interface GeneratedStatement {
  readonly tree: SqlNode;
  readonly sql: string;
  /** Whether the statement may change rows (the database is checked and restored after it). */
  readonly write: boolean;
}

export class Generator {
  private cteCounter = 0;
  readonly dialect: Dialect;
  readonly functions: readonly CatalogFunction[];
  readonly random: Random;
  readonly schema: readonly Table[];
  constructor(
    dialect: Dialect,
    functions: readonly CatalogFunction[],
    random: Random,
    schema: readonly Table[] = SAMPLE_SCHEMA,
  ) {
    this.dialect = dialect;
    this.functions = functions;
    this.random = random;
    this.schema = schema;
  }

  statement(): GeneratedStatement {
    this.cteCounter = 0;
    const writeChance = 0.3;
    if (this.random.chance(writeChance)) {
      const tree = this.random.pick([
        () => this.update(),
        () => this.delete(),
        () => this.insertSelect(),
        () => this.insertValues(),
        ...this.dialect.writes(this),
      ])();
      return { tree, sql: render(tree), write: true };
    }
    const tree = this.random.chance(0.15) ? this.withCte() : this.selectOrSetOp(this.randomShape(), 0);
    return { tree, sql: render(tree), write: false };
  }

  private randomShape(): SqlType[] {
    const n = 1 + this.random.int(3);
    return Array.from({ length: n }, () => (this.random.chance(0.6) ? 'text' : this.random.pick(TYPES)));
  }

  private table(): Table {
    return this.random.chance(0.6) ? this.schema[0]! : this.random.pick(this.schema);
  }

  private tableScope(table: Table, alias: string): Scope['columns'] {
    return table.columns.map((column) => ({ ref: `${alias}.${column.name}`, column }));
  }

  // ---- expressions ----

  expression(type: SqlType, scope: Scope, depth: number): SqlNode {
    const r = this.random;
    const leaf = depth >= 4 || r.chance(0.25);
    if (leaf) return this.leaf(type, scope);
    const choices: Array<() => SqlNode | undefined> = [
      () => this.leaf(type, scope),
      () => this.functionCall(type, scope, depth),
      () => this.functionCall(type, scope, depth),
      () => this.cast(type, scope, depth),
      () => this.operator(type, scope, depth),
      () => this.caseExpression(type, scope, depth),
      () =>
        expr(
          'COALESCE(',
          this.expression(type, scope, depth + 1),
          ', ',
          this.expression(type, scope, depth + 1),
          ')',
        ),
      () => (depth < 2 ? this.scalarSubquery(type, scope, depth) : undefined),
      () => (scope.aggregate ? this.aggregate(type, scope, depth) : undefined),
      () => (scope.aggregate ? this.aggregate(type, scope, depth) : undefined),
      () => (scope.window ? this.windowCall(type, scope, depth) : undefined),
      () => (type === 'json' || type === 'text' ? this.json(type, scope, depth) : undefined),
      () =>
        type === 'text' ? this.dialect.extraText(r, (t) => this.expression(t, scope, depth + 1)) : undefined,
      () => (type === 'text' ? this.shaped(this.expression('text', scope, depth + 1)) : undefined),
      () =>
        type === 'text' && r.chance(0.3)
          ? this.dialect.notify(this.expression('text', scope, depth + 1))
          : undefined,
    ];
    for (let i = 0; i < 4; i++) {
      const made = r.pick(choices)();
      if (made) return made;
    }
    return this.leaf(type, scope);
  }

  private leaf(type: SqlType, scope: Scope): SqlNode {
    const columns = scope.columns.filter((c) => c.column.type === type);
    if (columns.length > 0 && this.random.chance(0.85)) {
      const pii = columns.filter((c) => c.column.pii);
      const plain = columns.filter((c) => !c.column.pii);
      const pool =
        pii.length > 0 && this.random.chance(scope.decide ? 0.03 : 0.8)
          ? pii
          : plain.length > 0
            ? plain
            : columns;
      return expr(this.random.pick(pool).ref);
    }
    if (
      type === 'text' &&
      !scope.decide &&
      scope.columns.some((c) => c.column.pii) &&
      this.random.chance(0.7)
    ) {
      // A personal-data column of another type, made text: dates of birth are personal data too.
      const pii = scope.columns.filter((c) => c.column.pii);
      return this.castNode(expr(this.random.pick(pii).ref), 'text');
    }
    return expr(this.dialect.literal(type, this.random));
  }

  /**
   * A value dressed as an email: masking methods that keep an email's layout (its '@', dots and
   * top-level domain) must not keep what was put in those places.
   */
  private shaped(value: SqlNode): SqlNode {
    const { concat } = this.dialect;
    switch (this.random.int(3)) {
      case 0:
        return concat(expr("'a@b.'"), value);
      case 1:
        return concat(value, expr("'@example.com'"));
      default:
        return concat(concat(expr("'a@'"), value), expr("'.com'"));
    }
  }

  private castNode(inner: SqlNode, type: SqlType): SqlNode {
    return this.random.chance(0.5) || this.dialect.name === 'mysql'
      ? expr('CAST(', inner, ` AS ${this.dialect.castTo(type)})`)
      : expr('(', inner, `)::${this.dialect.castTo(type)}`);
  }

  private cast(type: SqlType, scope: Scope, depth: number): SqlNode {
    const from = this.random.chance(0.6) ? 'text' : this.random.pick(TYPES);
    return this.castNode(this.expression(from, scope, depth + 1), type);
  }

  private functionCall(type: SqlType, scope: Scope, depth: number): SqlNode | undefined {
    const fitting = this.functions.filter((f) => f.returns === type);
    if (fitting.length === 0) return undefined;
    const f = this.random.pick(fitting);
    const args = f.args.map((arg) => this.expression(arg, scope, depth + 1));
    return expr(`${f.name}(`, ...list(args), ')');
  }

  private operator(type: SqlType, scope: Scope, depth: number): SqlNode | undefined {
    const r = this.random;
    const sub = (t: SqlType) => this.expression(t, scope, depth + 1);
    switch (type) {
      case 'text':
        return this.dialect.concat(sub('text'), sub(r.pick(['text', 'text', 'int'] as const)));
      case 'int':
      case 'num':
        return expr('(', sub(type), ` ${r.pick(['+', '-', '*'])} `, sub(r.pick(['int', type] as const)), ')');
      case 'bool':
        return this.predicate(scope, depth);
      default:
        return undefined;
    }
  }

  predicate(outer: Scope, depth: number): SqlNode {
    const r = this.random;
    const scope: Scope = { ...outer, decide: true };
    const sub = (t: SqlType) => this.expression(t, scope, depth + 1);
    const t = r.chance(0.6) ? 'text' : r.pick(['int', 'num', 'date'] as const);
    switch (r.int(11)) {
      case 0:
        return expr(sub(t), ` ${r.pick(['=', '<', '>', '<>', '<=', '>='])} `, sub(t));
      case 1:
        return expr(sub('text'), ' LIKE ', r.chance(0.5) ? r.pick(PATTERNS) : sub('text'));
      case 2:
        return expr(sub(t), r.pick([' IS NULL', ' IS NOT NULL']));
      case 3:
        return expr('NOT (', this.predicate(scope, depth + 1), ')');
      case 4:
        return expr(
          '(',
          this.predicate(scope, depth + 1),
          r.pick([' AND ', ' OR ']),
          this.predicate(scope, depth + 1),
          ')',
        );
      case 5:
        return depth < 2
          ? expr(sub('text'), ' IN (', this.select(['text'], depth + 1, { decide: true }), ')')
          : expr(sub('text'), ' IN (', sub('text'), ', ', sub('text'), ')');
      case 6:
        return depth < 2
          ? expr('EXISTS (', this.select(this.randomShape(), depth + 1, { correlate: scope }), ')')
          : expr(sub(t), ' = ', sub(t));
      case 7:
        // Row values compared whole.
        return expr('(', sub('text'), ', ', sub('int'), ') = (', sub('text'), ', ', sub('int'), ')');
      case 8:
        return expr(sub(t), ' BETWEEN ', sub(t), ' AND ', sub(t));
      case 9:
        return (
          this.dialect.extraPredicate(r, () => sub('text')) ?? expr(sub('text'), ' LIKE ', r.pick(PATTERNS))
        );
      default:
        return expr(this.dialect.literal('bool', r));
    }
  }

  private caseExpression(type: SqlType, scope: Scope, depth: number): SqlNode {
    const branches: SqlPart[] = [];
    const n = 1 + this.random.int(2);
    for (let i = 0; i < n; i++)
      branches.push(
        clause(' WHEN ', this.predicate(scope, depth + 1), ' THEN ', this.expression(type, scope, depth + 1)),
      );
    return expr(
      'CASE',
      ...branches,
      optionalClause(' ELSE ', this.expression(type, scope, depth + 1)),
      ' END',
    );
  }

  private scalarSubquery(type: SqlType, outer: Scope, depth: number): SqlNode {
    const sub = this.select([type], depth + 1, {
      correlate: outer,
      scalar: true,
      decide: outer.decide ?? false,
    });
    return expr('(', sub, ')');
  }

  private aggregate(type: SqlType, scope: Scope, depth: number): SqlNode | undefined {
    const inner = scope.inner ?? scope;
    const plain: Scope = { ...inner, aggregate: false, window: false };
    const arg = (t: SqlType) => this.expression(t, plain, depth + 1);
    switch (type) {
      case 'text':
        return this.random.chance(0.6)
          ? this.dialect.stringAgg(arg('text'))
          : expr(this.random.pick(['MIN(', 'MAX(']), arg('text'), ')');
      case 'int':
        return expr('COUNT(', this.random.chance(0.5) ? 'DISTINCT ' : '', arg('text'), ')');
      case 'json':
        return this.dialect.jsonArrayAgg(arg('text'));
      case 'num':
      case 'date':
        return expr(this.random.pick(['MIN(', 'MAX(']), arg(type), ')');
      default:
        return undefined;
    }
  }

  private windowCall(type: SqlType, scope: Scope, depth: number): SqlNode {
    const plain: Scope = { ...scope, aggregate: false, window: false };
    const deciding: Scope = { ...plain, decide: true };
    const order = this.leaf(this.random.pick(['text', 'int'] as const), deciding);
    const over = expr(
      ' OVER (',
      optionalClause('PARTITION BY ', this.leaf('text', deciding), ' '),
      'ORDER BY ',
      order,
      ')',
    );
    if (type === 'int' && this.random.chance(0.3)) return expr('ROW_NUMBER()', over);
    const fn = this.random.pick(['LAG(', 'LEAD(', 'FIRST_VALUE(', 'LAST_VALUE(', 'MAX(', 'MIN(']);
    return expr(fn, this.expression(type, plain, depth + 1), ')', over);
  }

  private json(type: SqlType, scope: Scope, depth: number): SqlNode | undefined {
    const alias = scope.columns[0]?.ref.split('.')[0];
    const row = alias && this.random.chance(0.3) ? this.dialect.wholeRow(alias) : undefined;
    const value = row ?? this.dialect.jsonObject('k', this.expression('text', scope, depth + 1));
    return type === 'json' ? value : this.dialect.jsonText(value);
  }

  // ---- queries ----

  selectOrSetOp(shape: readonly SqlType[], depth: number): SqlNode {
    if (depth < 2 && this.random.chance(0.2)) {
      const op = this.random.pick([
        'UNION',
        'UNION ALL',
        'INTERSECT',
        'EXCEPT',
        'INTERSECT ALL',
        'EXCEPT ALL',
      ]);
      const left = this.select(shape, depth + 1);
      const leftPii = this.lastShapePii;
      const right = this.select(shape, depth + 1);
      this.lastShapePii = this.lastShapePii.map((pii, i) => pii || (leftPii[i] ?? true));
      return query(
        '(',
        left,
        `) ${op} (`,
        right,
        ')',
        this.random.chance(0.2) ? optionalClause(' ORDER BY 1') : '',
      );
    }
    return this.select(shape, depth);
  }

  select(
    shape: readonly SqlType[],
    depth: number,
    options: {
      correlate?: Scope;
      /** A scalar subquery: one row. */
      scalar?: boolean;
      /** The rows are compared (IN): their values decide. */
      decide?: boolean;
      from?: { sql: SqlPart; scope: Scope['columns'] };
    } = {},
  ): SqlNode {
    const r = this.random;
    const from = options.from ?? this.fromItem(depth);
    const correlated =
      options.correlate && r.chance(0.4) ? options.correlate.columns : ([] as Scope['columns']);
    const rowColumns = [...from.scope, ...correlated];
    const grouped = !options.scalar && r.chance(0.2);
    const aggregateOnly = options.scalar && r.chance(0.3);
    const decide = options.decide ?? false;
    const row: Scope = { columns: rowColumns, aggregate: false, window: false };
    let scope: Scope;
    let groupKey: string | undefined;
    if (grouped) {
      const plain = from.scope.filter((c) => !c.column.pii);
      const key = r.pick(plain.length > 0 && r.chance(0.85) ? plain : from.scope);
      groupKey = key.ref;
      scope = { columns: [key], aggregate: true, window: false, inner: row, decide };
    } else if (aggregateOnly) {
      scope = { columns: [], aggregate: true, window: false, inner: row, decide };
    } else {
      scope = { ...row, window: !options.scalar && depth < 2 && r.chance(0.3), decide };
    }
    const items = shape.map((type, i) => clause(this.expression(type, scope, depth), ` AS c${i + 1}`));
    this.lastShapePii = items.map((item) => this.mentionsPii(render(item)));
    const distinct = !options.scalar && r.chance(0.15);
    const orderKey = () =>
      groupKey ?? render(this.leaf(r.pick(['int', 'text'] as const), { ...row, decide: true }));
    let tail: SqlPart = '';
    if (options.scalar) tail = aggregateOnly ? '' : ` ORDER BY ${orderKey()} LIMIT 1`;
    else if (r.chance(0.3))
      tail = optionalClause(
        distinct ? ' ORDER BY 1' : ` ORDER BY ${orderKey()}`,
        r.chance(0.5) ? ' DESC' : '',
        r.chance(0.4) ? ` LIMIT ${1 + r.int(5)}` : '',
      );
    return query(
      'SELECT ',
      distinct ? optionalClause('DISTINCT ') : '',
      ...list(items),
      ' FROM ',
      from.sql,
      r.chance(0.5) ? optionalClause(' WHERE ', this.predicate(row, depth + 1)) : '',
      groupKey ? optionalClause(' GROUP BY ', groupKey) : '',
      grouped && r.chance(0.3) ? optionalClause(' HAVING ', this.havingPredicate(scope, depth)) : '',
      tail,
    );
  }

  /** Per column of the last SELECT generated, whether it may carry personal data. */
  private lastShapePii: boolean[] = [];

  private mentionsPii(sql: string): boolean {
    return (
      this.schema.some((t) => t.columns.some((c) => c.pii && new RegExp(`\\.${c.name}\\b`).test(sql))) ||
      /\.c\d+\b|to_jsonb\(/.test(sql)
    );
  }

  private havingPredicate(scope: Scope, depth: number): SqlNode {
    const agg = this.aggregate('text', scope, depth + 1) ?? expr("''");
    return expr(agg, ' ', this.random.pick(['LIKE', '>', '<>']), ' ', this.random.pick(PATTERNS));
  }

  private fromItem(depth: number): { sql: SqlPart; scope: Scope['columns'] } {
    const r = this.random;
    const choice = r.int(10);
    if (choice < 2 && depth < 2) {
      const shape = this.randomShape();
      const alias = `d${depth}`;
      const sub = this.selectOrSetOp(shape, depth + 1);
      const pii = this.lastShapePii;
      return {
        sql: clause('(', sub, `) AS ${alias}`),
        scope: shape.map((type, i) => ({
          ref: `${alias}.c${i + 1}`,
          column: { name: `c${i + 1}`, type, pii: pii[i] ?? true },
        })),
      };
    }
    const table = this.table();
    const alias = `${table.alias}${depth}`;
    const scope = this.tableScope(table, alias);
    if (choice < 5) {
      const other = this.random.pick(this.schema.filter((t) => t !== table));
      const otherAlias = `${other.alias}${depth}j`;
      const on =
        table.name === 'customers' && other.name === 'orders'
          ? `${otherAlias}.customer_id = ${alias}.id`
          : table.name === 'orders' && other.name === 'customers'
            ? `${otherAlias}.id = ${alias}.customer_id`
            : `${otherAlias}.id = ${alias}.id`;
      return {
        sql: clause(
          `${table.name} AS ${alias}`,
          optionalClause(` JOIN ${other.name} AS ${otherAlias} ON ${on}`),
        ),
        scope: [...scope, ...this.tableScope(other, otherAlias)],
      };
    }
    return { sql: `${table.name} AS ${alias}`, scope };
  }

  private withCte(): SqlNode {
    const shape = this.randomShape();
    const name = `w${this.cteCounter++}`;
    const columns = shape.map((_, i) => `c${i + 1}`);
    const body = this.selectOrSetOp(shape, 1);
    const pii = this.lastShapePii;
    const scope = shape.map((type, i) => ({
      ref: `${name}.c${i + 1}`,
      column: { name: `c${i + 1}`, type, pii: pii[i] ?? true },
    }));
    const outer = this.select(this.randomShape(), 1, { from: { sql: name, scope } });
    return query(
      `WITH ${name}(${columns.join(', ')}) AS `,
      this.random.chance(0.3) && this.dialect.name === 'postgres' ? 'MATERIALIZED ' : '',
      '(',
      body,
      ') ',
      outer,
    );
  }

  // ---- writes ----

  /** The column a write sets: mostly one with personal data, where a copy could change its masking. */
  private setColumn(table: Table): Column {
    const settable = table.columns.filter((c) => c.name !== 'id');
    const pii = settable.filter((c) => c.pii);
    return this.random.pick(pii.length > 0 && this.random.chance(0.7) ? pii : settable);
  }

  /** The value a write sets: often another column's personal data, sometimes dressed as an email. */
  private writeValue(column: Column, scope: Scope): SqlNode {
    if (column.type === 'text' && this.random.chance(0.3))
      return this.shaped(this.expression('text', scope, 2));
    return this.expression(column.type, scope, 1);
  }

  private writeTarget(): Table {
    return this.random.chance(0.5) ? this.schema[0]! : this.random.pick(this.schema);
  }

  private returning(scope: Scope): SqlPart {
    if (!this.dialect.returning || !this.random.chance(0.4)) return '';
    return optionalClause(' RETURNING ', this.expression('text', scope, 1));
  }

  update(): SqlNode {
    const table = this.writeTarget();
    const scope: Scope = { columns: this.tableScope(table, table.name), aggregate: false, window: false };
    const column = this.setColumn(table);
    return query(
      `UPDATE ${table.name} SET ${column.name} = `,
      this.writeValue(column, scope),
      ' WHERE ',
      this.rowsFilter(`${table.name}.id`, scope),
      this.returning(scope),
    );
  }

  /**
   * Which rows a write changes: mostly by key (the default guardrails refuse writes whose WHERE does
   * not restrict the rows), sometimes by key range, which may exceed the row limit.
   */
  private rowsFilter(key: string, scope: Scope): SqlNode {
    const r = this.random;
    const byKey = r.pick([
      `${key} = ${1 + r.int(12)}`,
      `${key} IN (${1 + r.int(6)}, ${7 + r.int(6)})`,
      `${key} < ${1 + r.int(12)}`,
      `${key} > ${r.int(12)}`,
      `${key} BETWEEN ${1 + r.int(4)} AND ${4 + r.int(40)}`,
    ]);
    if (r.chance(0.15)) return this.predicate(scope, 1);
    return expr(byKey, r.chance(0.5) ? optionalClause(' AND ', this.predicate(scope, 1)) : '');
  }

  delete(): SqlNode {
    const table = this.writeTarget();
    const scope: Scope = { columns: this.tableScope(table, table.name), aggregate: false, window: false };
    return query(
      `DELETE FROM ${table.name} WHERE `,
      this.rowsFilter(`${table.name}.id`, scope),
      this.returning(scope),
    );
  }

  /** INSERT ... SELECT into every column of the target, so the NOT NULL constraints can hold. */
  insertSelect(suffix: (table: Table) => SqlPart = (table) => this.insertSuffix(table)): SqlNode {
    const table = this.writeTarget();
    const shape = table.columns.map((c) => c.type);
    const source = this.random.chance(0.5) ? this.mirrorSelect(table) : this.select(shape, 1);
    return query(
      `INSERT INTO ${table.name} (${table.columns.map((c) => c.name).join(', ')}) `,
      source,
      suffix(table),
    );
  }

  /**
   * One new row, its values literals or scalar subqueries over another row (`INSERT ... VALUES`, and
   * MariaDB's `INSERT ... SET`): the subquery can carry personal data into any column.
   */
  insertValues(): SqlNode {
    const table = this.writeTarget();
    const source = this.schema[0]!;
    const values = table.columns.map((c) => {
      if (c.name === 'id') return clause(String(5000 + this.random.int(1000)));
      if (!this.random.chance(0.5)) return clause(this.dialect.literal(c.type, this.random));
      const alias = 'cv';
      const scope: Scope = { columns: this.tableScope(source, alias), aggregate: false, window: false };
      return expr(
        '(SELECT ',
        this.writeValue(c, scope),
        ` FROM ${source.name} AS ${alias} WHERE ${alias}.id = ${1 + this.random.int(12)})`,
      );
    });
    if (this.dialect.name === 'mysql' && this.random.chance(0.5)) {
      const assignments = table.columns.map((c, i) => clause(`${c.name} = `, values[i]!));
      return query(`INSERT INTO ${table.name} SET `, ...list(assignments));
    }
    return query(
      `INSERT INTO ${table.name} (${table.columns.map((c) => c.name).join(', ')}) VALUES (`,
      ...list(values),
      ')',
    );
  }

  /** Rows of the table itself with the key moved on: keeps the types and trips unique constraints on the rest. */
  private mirrorSelect(table: Table): SqlNode {
    const alias = `${table.alias}s`;
    const scope: Scope = { columns: this.tableScope(table, alias), aggregate: false, window: false };
    // The same key half the time, so that ON CONFLICT / ON DUPLICATE KEY UPDATE fire.
    const key = this.random.chance(0.5) ? `${alias}.id` : `${alias}.id + 1000`;
    const items = table.columns.map((c) =>
      c.name === 'id'
        ? clause(key)
        : this.random.chance(0.7)
          ? clause(`${alias}.${c.name}`)
          : clause(this.expression(c.type, scope, 2)),
    );
    return query(
      'SELECT ',
      ...list(items),
      ` FROM ${table.name} AS ${alias} WHERE `,
      this.rowsFilter(`${alias}.id`, scope),
    );
  }

  private insertSuffix(table: Table): SqlPart {
    const scope: Scope = { columns: this.tableScope(table, table.name), aggregate: false, window: false };
    if (this.dialect.name === 'postgres') {
      const conflict = this.random.int(3);
      return clause(
        conflict === 0 ? optionalClause(' ON CONFLICT DO NOTHING') : '',
        conflict === 1 ? this.conflictUpdate(table, ' ON CONFLICT (id) DO UPDATE SET ', 'EXCLUDED.') : '',
        this.returning(scope),
      );
    }
    return '';
  }

  /** `SET column = expression` over the row in the table and the row proposed (EXCLUDED / VALUES()). */
  private conflictUpdate(table: Table, prefix: string, proposed: string): SqlNode {
    const column = this.setColumn(table);
    const scope: Scope = {
      columns: [
        ...this.tableScope(table, table.name),
        ...table.columns.map((c) => ({
          ref: proposed.endsWith('.') ? `${proposed}${c.name}` : `${proposed}(${c.name})`,
          column: c,
        })),
      ],
      aggregate: false,
      window: false,
    };
    return clause(`${prefix}${column.name} = `, this.writeValue(column, scope));
  }

  merge(): SqlNode {
    const table = this.writeTarget();
    const shape = table.columns.map((c) => c.type);
    const source = this.random.chance(0.5) ? this.mirrorSelect(table) : this.select(shape, 1);
    const columns = table.columns.map((c, i) => ({ ...c, source: `s.c${i + 1}` }));
    const targetScope: Scope = {
      columns: [...this.tableScope(table, 't'), ...columns.map((c) => ({ ref: c.source, column: c }))],
      aggregate: false,
      window: false,
    };
    const set = this.random.pick(columns.filter((c) => c.name !== 'id'));
    return query(
      `MERGE INTO ${table.name} AS t USING (`,
      source,
      `) AS s(${columns.map((_, i) => `c${i + 1}`).join(', ')}) ON t.id = s.c1`,
      ` WHEN MATCHED AND `,
      this.rowsFilter('t.id', targetScope),
      ` THEN UPDATE SET ${set.name} = `,
      this.expression(set.type, targetScope, 2),
      optionalClause(` WHEN NOT MATCHED THEN INSERT VALUES (${columns.map((c) => c.source).join(', ')})`),
    );
  }

  replace(): SqlNode {
    const inserted = this.insertSelect(() => '');
    return query(
      'REPLACE',
      ...inserted.parts.map((p, i) => (i === 0 && typeof p === 'string' ? p.replace(/^INSERT/, '') : p)),
    );
  }

  insertOnDuplicate(): SqlNode {
    return this.insertSelect((table) => this.conflictUpdate(table, ' ON DUPLICATE KEY UPDATE ', 'VALUES'));
  }
}

/** The generator's types as PostgreSQL's catalog names them, for picking functions from pg_proc. */
export const PG_ARGUMENT_TYPES: Readonly<Record<string, SqlType>> = {
  text: 'text',
  integer: 'int',
  bigint: 'int',
  numeric: 'num',
  'double precision': 'num',
  date: 'date',
  'timestamp with time zone': 'ts',
  boolean: 'bool',
  jsonb: 'json',
  bytea: 'bytes',
};
export const PG_RESULT_TYPES: Readonly<Record<string, SqlType>> = {
  ...PG_ARGUMENT_TYPES,
  smallint: 'int',
  'character varying': 'text',
  character: 'text',
  real: 'num',
};

/**
 * pg_proc rows (name, argument type names, result type name) as catalog functions: only immutable
 * plain functions, so that a random call can neither change the server nor read anything but its
 * arguments, and only those whose argument and result types the generator knows.
 */
export function pgCatalogFunctions(
  rows: readonly { name: string; args: readonly string[]; returns: string }[],
): CatalogFunction[] {
  const out: CatalogFunction[] = [];
  for (const row of rows) {
    if (/^(pg_|_|binary_upgrade|gin_|gist|spg|bt|hash|brin_)/.test(row.name)) continue;
    if (/(_in|_out|_recv|_send|_support)$/.test(row.name)) continue;
    const args = row.args.map((a) => PG_ARGUMENT_TYPES[a]);
    const returns = PG_RESULT_TYPES[row.returns];
    if (returns === undefined || args.some((a) => a === undefined)) continue;
    out.push({ name: row.name, args: args as SqlType[], returns });
  }
  return out;
}
