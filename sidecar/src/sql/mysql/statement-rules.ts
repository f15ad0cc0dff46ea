import type { StatementEntry } from '../analyze/assemble-facts.ts';
import { EVERY_CLASS } from '../analyze/statement-catalog.ts';
import type { Finding, StatementClass, StatementKind } from '../analyze/statement-facts.ts';
import { asArray, field, nameParts, objectName, variant } from './ast.ts';
import {
  type AstFacts,
  addOnce,
  collectReads,
  emptyAstFacts,
  finishColumns,
  joinConditions,
  tablesOf,
} from './ast-facts.ts';
import { restrictsTarget } from './effective-where.ts';
import { joinTokens, type LexedStatement, type MysqlToken } from './lexer.ts';
import { type MysqlAst, parseMysqlStatement } from './parser.ts';
import { parserText } from './parser-text.ts';
import { unreadableSqlMode } from './sql-mode.ts';
import { storedCodeBody } from './stored-code-body.ts';

type NewFinding = Omit<Finding, 'statement'>;

/** What the rules need from the text around a statement. */
export interface RuleContext {
  /** Nested analysis of statement text (PREPARE ... FROM 'text'), under the statement's sql_mode. */
  analyzeText(text: string): readonly StatementEntry[] | 'unknown';
  /** Statements PREPAREd earlier in the same text, by lower-cased name. */
  readonly prepared: ReadonlyMap<string, readonly StatementEntry[]>;
  /** User variables set to a literal earlier in the same text (`SET @s = 'text'` or `0x...`). */
  readonly constants: ReadonlyMap<string, string>;
  /** The whole text the statement is part of (its tokens' offsets point into it). */
  readonly source: string;
  /** Analysis of a stored routine, trigger or event body (routine-body.ts). */
  analyzeBody(
    text: string,
    options: { parameters: readonly string[]; trigger: boolean },
  ): readonly StatementEntry[];
}

/** One top-level statement's analysis: its entries (nested ones first) and its side effects. */
export interface StatementResult {
  readonly entries: StatementEntry[];
  readonly prepare?: {
    readonly name: string;
    readonly text: string | null;
    readonly entries: readonly StatementEntry[];
  };
  readonly executes?: string;
  readonly deallocates?: string;
  readonly userVariables: string[];
  readonly constants: [string, string | null][];
  readonly sideChannel?: 'diagnostics' | 'processlist' | 'error-text';
  readonly handler?: { readonly name: string; readonly table: string };
  /** USE: the session's default database from now on. */
  readonly database?: string;
}

const NONE: readonly StatementClass[] = [];
const READ: readonly StatementClass[] = ['read'];
const WRITE: readonly StatementClass[] = ['write'];
const DDL: readonly StatementClass[] = ['ddl'];
const ADMIN: readonly StatementClass[] = ['admin'];

/** Session variables whose setting needs administrative privileges or hides what the session does. */
const PRIVILEGED_VARIABLES = new Set([
  'sql_log_bin',
  'sql_log_off',
  'general_log',
  'pseudo_thread_id',
  'pseudo_slave_mode',
  'gtid_next',
  'gtid_seq_no',
  'server_id',
  'skip_replication',
  'binlog_format',
  'rand_seed1',
]);
const FILE_FUNCTIONS = new Set(['load_file']);
/** Functions whose error messages quote the value they were given (error-based extraction). */
const ERROR_TEXT_FUNCTIONS = new Set(['extractvalue', 'updatexml', 'gtid_subset', 'gtid_subtract']);
/** UDFs that run programs (lib_mysqludf_sys): if installed, they are what they say. */
const PROGRAM_FUNCTIONS = new Set(['sys_exec', 'sys_eval']);

const LOCK_TYPE_WORDS = new Set(['READ', 'WRITE', 'LOW_PRIORITY']);

/**
 * The items of `LOCK TABLES name [[AS] alias] lock_type, ...` from token `at` to the end, with
 * whether every lock is `READ [LOCAL]`; undefined when the text is not exactly that list (then
 * nothing is concluded from it). MariaDB's trailing `WAIT n` / `NOWAIT` are accepted.
 */
function lockItems(s: Statement, at: number): { tables: string[]; readOnly: boolean } | undefined {
  const tables: string[] = [];
  let readOnly = true;
  let i = at;
  for (;;) {
    const name = s.name(i);
    if (!name) return undefined;
    tables.push(name.name);
    i = name.next;
    if (s.word(i) === 'AS') i++;
    const alias = s.tokens[i];
    if (alias && (alias.type === 'ident' || (alias.type === 'word' && !LOCK_TYPE_WORDS.has(alias.value))))
      i++;
    if (s.word(i) === 'READ') {
      i++;
      if (s.word(i) === 'LOCAL') i++;
    } else {
      readOnly = false;
      if (s.word(i) === 'LOW_PRIORITY') i++;
      if (s.word(i) !== 'WRITE') return undefined;
      i++;
      if (s.word(i) === 'CONCURRENT') i++;
    }
    const next = s.tokens[i];
    if (next?.type === 'punct' && next.value === ',') {
      i++;
      continue;
    }
    if (s.word(i) === 'NOWAIT') i++;
    else if (s.word(i) === 'WAIT' && s.tokens[i + 1]?.type === 'number') i += 2;
    return i === s.tokens.length ? { tables, readOnly } : undefined;
  }
}

class Statement {
  readonly tokens: readonly MysqlToken[];
  readonly words: readonly string[];
  readonly lexed: LexedStatement;
  constructor(lexed: LexedStatement) {
    this.lexed = lexed;
    this.tokens = lexed.tokens;
    this.words = lexed.tokens.map((t) => (t.type === 'word' ? t.value : ''));
  }
  word(i: number): string {
    return this.words[i] ?? '';
  }
  /** Index of the first token at or after `from` that is the word. */
  find(word: string, from = 0): number {
    return this.words.indexOf(word, from);
  }
  has(word: string): boolean {
    return this.words.includes(word);
  }
  /** Canonical text of tokens [from, to). */
  text(from: number, to = this.tokens.length): string {
    return joinTokens(this.tokens.slice(from, to));
  }
  /** A name (`db.t`, `` `t` ``) starting at token i: its text and the index after it. */
  name(i: number): { name: string; next: number } | undefined {
    const parts: string[] = [];
    let j = i;
    for (;;) {
      const t = this.tokens[j];
      if (!t || (t.type !== 'word' && t.type !== 'ident'))
        return parts.length ? { name: parts.join('.'), next: j } : undefined;
      parts.push(t.type === 'word' ? this.lexed.tokens[j]!.canonical.replaceAll('`', '') : t.value);
      const dot = this.tokens[j + 1];
      if (dot?.type === 'punct' && dot.value === '.' && !dot.spaced) j += 2;
      else return { name: parts.join('.'), next: j + 1 };
    }
  }
  /** Comma-separated names from token i, skipping IF EXISTS / IF NOT EXISTS. */
  names(i: number): string[] {
    let j = skipIfExists(this, i);
    const out: string[] = [];
    for (;;) {
      const n = this.name(j);
      if (!n) return out;
      out.push(n.name);
      const comma = this.tokens[n.next];
      if (comma?.type === 'punct' && comma.value === ',') j = n.next + 1;
      else return out;
    }
  }
}

function skipIfExists(s: Statement, i: number): number {
  if (s.word(i) === 'IF' && s.word(i + 1) === 'EXISTS') return i + 2;
  if (s.word(i) === 'IF' && s.word(i + 1) === 'NOT' && s.word(i + 2) === 'EXISTS') return i + 3;
  return i;
}

interface EntryFields {
  readonly tablesRead?: readonly string[];
  readonly tablesWritten?: readonly string[];
  readonly objects?: readonly string[];
  readonly columnsRead?: readonly string[];
  readonly columnsWritten?: readonly string[];
  readonly functions?: readonly string[];
  readonly where?: 'effective' | 'ineffective' | 'absent';
  readonly findings?: readonly NewFinding[];
  readonly executes?: string;
}

function entry(
  kind: StatementKind,
  command: string,
  summary: string,
  classes: readonly StatementClass[],
  fields: EntryFields = {},
): StatementEntry {
  return {
    kind,
    command,
    summary,
    topLevel: 0,
    via: [],
    classes,
    tablesRead: fields.tablesRead ?? [],
    tablesWritten: fields.tablesWritten ?? [],
    objects: fields.objects ?? [],
    columnsRead: fields.columnsRead ?? [],
    columnsWritten: fields.columnsWritten ?? [],
    functions: fields.functions ?? [],
    ...(fields.where ? { where: fields.where } : {}),
    ...(fields.executes !== undefined ? { executes: fields.executes } : {}),
    findings: fields.findings ?? [],
  };
}

export function unknownEntry(detail: string, command = 'UNKNOWN'): StatementEntry {
  return entry('unknown', command, 'a statement', EVERY_CLASS, {
    findings: [{ kind: 'unknown-statement', detail }],
  });
}

function result(entries: StatementEntry[], extra: Partial<StatementResult> = {}): StatementResult {
  return { entries, userVariables: [], constants: [], ...extra };
}

function withFindings(
  e: StatementEntry,
  findings: readonly NewFinding[],
  classes?: readonly StatementClass[],
): StatementEntry {
  if (findings.length === 0 && !classes) return e;
  return {
    ...e,
    classes: classes ? [...new Set([...e.classes, ...classes])] : e.classes,
    findings: [...findings, ...e.findings],
  };
}

/** Nested entries reached through `via` from a top-level statement. */
function nested(entries: readonly StatementEntry[], via: string): StatementEntry[] {
  return entries.map((e) => ({ ...e, via: [via, ...e.via] }));
}

/**
 * Findings any statement can carry, from its tokens whatever the parser makes of it: INTO OUTFILE
 * or DUMPFILE, file and program functions. Read from tokens so that a statement the parser cannot
 * read still shows them.
 */
function tokenFindings(s: Statement): {
  findings: NewFinding[];
  classes: StatementClass[];
  errorText: boolean;
} {
  const findings: NewFinding[] = [];
  const classes: StatementClass[] = [];
  let errorText = false;
  for (let i = 0; i < s.tokens.length; i++) {
    const w = s.word(i);
    if ((w === 'OUTFILE' || w === 'DUMPFILE') && s.word(i - 1) === 'INTO') {
      findings.push({ kind: 'file-access', detail: `it writes a server file (INTO ${w})` });
      classes.push('admin');
    }
    const next = s.tokens[i + 1];
    if (w && next?.type === 'punct' && next.value === '(') {
      const name = w.toLowerCase();
      if (FILE_FUNCTIONS.has(name)) {
        findings.push({ kind: 'file-access', detail: `it reads a server file (${name})` });
        classes.push('admin');
      }
      if (ERROR_TEXT_FUNCTIONS.has(name)) errorText = true;
      if (PROGRAM_FUNCTIONS.has(name)) {
        findings.push({ kind: 'dynamic-sql', detail: `it runs a program on the server (${name})` });
        classes.push('admin');
      }
    }
  }
  return { findings, classes, errorText };
}

/** Analyses one top-level statement. */
export function analyzeLexed(lexed: LexedStatement, ctx: RuleContext): StatementResult {
  const s = new Statement(lexed);
  const extra = tokenFindings(s);
  const byKeyword = analyzeByKeyword(s, ctx);
  const analysed =
    extra.errorText && !byKeyword.sideChannel
      ? { ...byKeyword, sideChannel: 'error-text' as const }
      : byKeyword;
  if (extra.findings.length === 0) return analysed;
  const entries = [...analysed.entries];
  const last = entries.length - 1;
  entries[last] = withFindings(entries[last]!, extra.findings, extra.classes);
  return { ...analysed, entries };
}

function analyzeByKeyword(s: Statement, ctx: RuleContext): StatementResult {
  let first = 0;
  while (s.tokens[first]?.type === 'punct' && s.tokens[first]!.value === '(') first++;
  const w0 = s.word(first);
  switch (w0) {
    case 'SELECT':
    case 'WITH':
    case 'VALUES':
    case 'TABLE':
      return result([query(s)]);
    case 'INSERT':
    case 'REPLACE':
      return result([insert(s, w0)]);
    case 'UPDATE':
      return result([update(s)]);
    case 'DELETE':
      return result([del(s)]);
    case 'TRUNCATE': {
      const tables = s.names(s.word(1) === 'TABLE' ? 2 : 1);
      return result([
        entry('truncate', 'TRUNCATE TABLE', `TRUNCATE TABLE ${tables.join(', ')}`, WRITE, {
          tablesWritten: tables,
          findings: [{ kind: 'truncate', detail: 'it removes every row', tables }],
        }),
      ]);
    }
    case 'DROP':
      return drop(s);
    case 'ALTER': {
      const altered = alter(s);
      // ALTER VIEW ... AS SELECT defines the view anew: its query is judged as CREATE VIEW's is.
      const query = altered.command === 'ALTER VIEW' ? definitionQuery(s, ctx, 2, 'ALTER VIEW') : [];
      return result([...query, altered]);
    }
    case 'RENAME': {
      if (s.word(1) === 'USER')
        return result([
          entry('alter', 'RENAME USER', 'RENAME USER', ADMIN, {
            findings: [grantFinding('it renames an account')],
          }),
        ]);
      const names = renamed(s);
      return result([
        entry('alter', 'RENAME TABLE', `RENAME TABLE ${names.join(', ')}`, DDL, {
          objects: names,
          tablesWritten: names,
          findings: [{ kind: 'alter', detail: 'it renames tables', tables: names }],
        }),
      ]);
    }
    case 'CREATE':
      return create(s, ctx);
    case 'GRANT':
    case 'REVOKE':
      return result([entry('grant', w0, w0, ADMIN, { findings: [grantFinding(`it is a ${w0}`)] })]);
    case 'SET':
      return set(s, ctx);
    case 'PREPARE':
      return prepare(s, ctx);
    case 'EXECUTE':
      return execute(s, ctx);
    case 'DEALLOCATE': {
      const name = s.name(s.word(1) === 'PREPARE' ? 2 : 1)?.name.toLowerCase();
      return name
        ? result([entry('deallocate', 'DEALLOCATE PREPARE', `DEALLOCATE PREPARE ${name}`, NONE)], {
            deallocates: name,
          })
        : unknownResult(s);
    }
    case 'CALL':
      return call(s);
    case 'DO':
      return result([expressionStatement(s, 1, 'DO')]);
    case 'HANDLER':
      return handler(s);
    case 'LOAD':
      return load(s);
    case 'SHOW':
      return show(s);
    case 'GET':
      if (s.word(1) === 'DIAGNOSTICS' || s.word(2) === 'DIAGNOSTICS')
        return result([entry('show', 'GET DIAGNOSTICS', 'GET DIAGNOSTICS', NONE)], {
          sideChannel: 'diagnostics',
        });
      return unknownResult(s);
    case 'EXPLAIN':
    case 'DESCRIBE':
    case 'DESC':
      return explain(s, ctx);
    case 'ANALYZE':
      return analyzeStatement(s, ctx);
    case 'OPTIMIZE':
    case 'REPAIR':
    case 'CHECK':
    case 'CHECKSUM': {
      const at = s.find('TABLE');
      const tables = at >= 0 ? s.names(at + 1) : [];
      const classes = w0 === 'OPTIMIZE' || w0 === 'REPAIR' ? WRITE : READ;
      return result([
        entry('maintenance', `${w0} TABLE`, `${w0} TABLE ${tables.join(', ')}`, classes, {
          objects: tables,
          tablesRead: tables,
        }),
      ]);
    }
    case 'BEGIN':
      if (s.word(1) === 'NOT' || s.word(1) === 'ATOMIC')
        return result([
          dynamicEntry('BEGIN NOT ATOMIC', 'it is a compound statement block Gatehouse does not analyse'),
        ]);
      return result([entry('transaction', 'BEGIN', 'BEGIN', NONE)]);
    case 'START':
      if (s.word(1) === 'TRANSACTION')
        return result([entry('transaction', 'START TRANSACTION', 'START TRANSACTION', NONE)]);
      return result([entry('maintenance', `START ${s.word(1)}`, `START ${s.word(1)}`, ADMIN)]);
    case 'COMMIT':
    case 'ROLLBACK':
    case 'SAVEPOINT':
    case 'RELEASE':
    case 'XA':
      return result([entry('transaction', w0, w0, NONE)]);
    case 'LOCK': {
      const at = s.word(1) === 'TABLES' || s.word(1) === 'TABLE' ? 2 : 1;
      // READ locks (what mariadb-dump takes) block writers as a long SELECT does: a read. Any
      // other lock, or a list Gatehouse does not read to its end, is a write as before.
      const items = lockItems(s, at);
      const tables = items?.tables ?? s.names(at);
      return result([
        entry('lock', 'LOCK TABLES', `LOCK TABLES ${tables.join(', ')}`, items?.readOnly ? READ : WRITE, {
          tablesRead: tables,
        }),
      ]);
    }
    case 'UNLOCK':
      return result([entry('transaction', 'UNLOCK TABLES', 'UNLOCK TABLES', NONE)]);
    case 'USE': {
      const database = s.name(1)?.name;
      if (!database) return unknownResult(s);
      return result([entry('set', 'USE', `USE ${database}`, NONE)], { database });
    }
    case 'HELP':
      return result([entry('show', 'HELP', 'HELP', NONE)]);
    case 'INSTALL':
    case 'UNINSTALL':
      return result([
        entry('load', `${w0} ${s.word(1)}`, `${w0} ${s.word(1)}`, ADMIN, {
          findings: [{ kind: 'file-access', detail: 'it loads a shared library into the server' }],
        }),
      ]);
    case 'CLONE':
      return result([
        entry('maintenance', 'CLONE', 'CLONE', ADMIN, {
          findings: [{ kind: 'file-access', detail: 'it copies the data directory' }],
        }),
      ]);
    case 'BINLOG':
      return result([dynamicEntry('BINLOG', 'it replays encoded binary-log events')]);
    case 'FLUSH':
    case 'KILL':
    case 'RESET':
    case 'PURGE':
    case 'CHANGE':
    case 'STOP':
    case 'SHUTDOWN':
    case 'RESTART':
    case 'CACHE':
      return result([entry('maintenance', w0, w0, ADMIN)]);
    default:
      return unknownResult(s);
  }
}

/**
 * CALL takes the classes of the procedure's body, which the catalog tells (sql/code-reach.ts); the
 * arguments are expressions the statement evaluates.
 */
function call(s: Statement): StatementResult {
  const name = s.name(1);
  if (!name) return unknownResult(s);
  const procedure = name.name.toLowerCase();
  let args: StatementEntry | undefined;
  if (s.tokens[name.next]?.type === 'punct' && s.tokens[name.next]!.value === '(') {
    let depth = 0;
    let close = -1;
    for (let i = name.next; i < s.tokens.length && close < 0; i++) {
      const t = s.tokens[i]!;
      if (t.type === 'punct' && t.value === '(') depth++;
      else if (t.type === 'punct' && t.value === ')' && --depth === 0) close = i;
    }
    if (close !== s.tokens.length - 1) return unknownResult(s);
    if (close > name.next + 1) args = expressionStatement(s, name.next + 1, 'CALL', close);
  } else if (name.next !== s.tokens.length) return unknownResult(s);
  const fields = args ?? entry('call', 'CALL', `CALL ${procedure}`, NONE);
  return result([
    {
      ...fields,
      kind: 'call',
      command: 'CALL',
      summary: `CALL ${procedure}`,
      classes: fields.classes,
      objects: [procedure],
      functions: [...new Set([procedure, ...fields.functions])],
    },
  ]);
}

function unknownResult(s: Statement): StatementResult {
  const what =
    s.word(0) === 'DELIMITER'
      ? 'DELIMITER is a command of the mysql client, not SQL'
      : 'Gatehouse does not know this statement';
  return result([unknownEntry(what)]);
}

function grantFinding(detail: string): NewFinding {
  return { kind: 'grant', detail };
}

function dynamicEntry(command: string, detail: string): StatementEntry {
  return entry('do', command, command, ADMIN, { findings: [{ kind: 'dynamic-sql', detail }] });
}

function parsed(text: string): MysqlAst | null {
  return parseMysqlStatement(text);
}

function unparsed(command: string): StatementEntry {
  return unknownEntry("MySQL's grammar, as Gatehouse's parser knows it, does not accept the text", command);
}

function query(s: Statement): StatementEntry {
  const ast = parsed(parserText(s.tokens));
  const body = field(ast, 'Query');
  if (!body) return unparsed('SELECT');
  const facts = emptyAstFacts();
  collectReads(body, facts);
  finishColumns(facts);
  const locking = asArray(field(body, 'locks')).length > 0 || (s.has('LOCK') && s.has('SHARE'));
  const into = field(field(field(body, 'body'), 'Select'), 'into');
  const classes: StatementClass[] = locking ? ['read', 'write'] : ['read'];
  if (into && !nameParts(field(into, 'name')).every((n) => n.startsWith('@'))) classes.push('ddl');
  return entry('select', 'SELECT', summaryOfRead(facts), classes, fieldsOf(facts));
}

function summaryOfRead(facts: AstFacts): string {
  return facts.tablesRead.length > 0 ? `SELECT from ${facts.tablesRead.join(', ')}` : 'SELECT';
}

function fieldsOf(facts: AstFacts): EntryFields {
  return {
    tablesRead: facts.tablesRead,
    tablesWritten: facts.tablesWritten,
    columnsRead: facts.columnsRead,
    columnsWritten: facts.columnsWritten,
    functions: facts.functions,
  };
}

function insert(s: Statement, keyword: 'INSERT' | 'REPLACE'): StatementEntry {
  const ast = parsed(parserText(s.tokens));
  const body = field(ast, 'Insert');
  if (!body) return unparsed(keyword);
  const table = objectName(field(field(body, 'table'), 'TableName') ?? field(body, 'table_name'));
  const facts = emptyAstFacts();
  collectReads(
    {
      source: field(body, 'source'),
      on: field(body, 'on'),
      assignments: field(body, 'assignments'),
      returning: field(body, 'returning'),
    },
    facts,
  );
  facts.aliases.set(table.toLowerCase(), table);
  finishColumns(facts);
  const written = [table];
  for (const column of asArray(field(body, 'columns'))) {
    const name = nameParts([column]).pop() ?? nameParts(field(column, 'ObjectName') ?? column).pop();
    if (name) addOnce(facts.columnsWritten, `${table}.${name.toLowerCase()}`);
  }
  for (const a of assignmentsOf(body)) addOnce(facts.columnsWritten, `${table}.${a}`);
  // An upsert updates existing rows (and so may cascade): its command says so, a plain INSERT's does not.
  const upsert = asArray(field(field(body, 'on'), 'DuplicateKeyUpdate')).length > 0;
  const command = upsert ? `${keyword} ... ON DUPLICATE KEY UPDATE` : keyword;
  return entry('insert', command, `${keyword} INTO ${table}`, WRITE, {
    ...fieldsOf(facts),
    tablesWritten: written,
  });
}

/** Column names assigned by SET lists and ON DUPLICATE KEY UPDATE. */
function assignmentsOf(body: unknown): string[] {
  const out: string[] = [];
  const lists = [field(body, 'assignments'), field(field(body, 'on'), 'DuplicateKeyUpdate')];
  for (const list of lists)
    for (const a of asArray(list)) {
      const target = field(a, 'target');
      const parts = nameParts(field(target, 'ColumnName') ?? target);
      const name = parts.pop();
      if (name) out.push(name.toLowerCase());
    }
  return out;
}

function update(s: Statement): StatementEntry {
  const ast = parsed(parserText(s.tokens));
  const body = field(ast, 'Update');
  if (!body) return unparsed('UPDATE');
  const twj = field(body, 'table');
  const targets = tablesOf(twj);
  const facts = emptyAstFacts();
  collectReads(body, facts);
  finishColumns(facts);
  // Which tables SET assigns to: qualified targets name their table; unqualified ones, any.
  const written: string[] = [];
  for (const a of asArray(field(body, 'assignments'))) {
    const parts = nameParts(field(field(a, 'target'), 'ColumnName') ?? field(a, 'target'));
    const column = parts.pop()?.toLowerCase();
    const qualifier = parts.join('.').toLowerCase();
    const matching = qualifier ? targets.filter((t) => t.names.has(qualifier)) : targets;
    for (const t of matching.length > 0 ? matching : targets) {
      addOnce(written, t.name);
      if (column) addOnce(facts.columnsWritten, `${t.name}.${column}`);
    }
  }
  const conditions = [field(body, 'selection'), ...joinConditions(twj)];
  const unrestricted = targetsUnrestricted(
    targets.filter((t) => written.includes(t.name)),
    conditions,
  );
  const where =
    field(body, 'selection') === undefined || field(body, 'selection') === null
      ? 'absent'
      : unrestricted.length > 0
        ? 'ineffective'
        : 'effective';
  const findings: NewFinding[] =
    unrestricted.length > 0
      ? [{ kind: 'update-without-where', detail: whereDetail(where), tables: unrestricted }]
      : [];
  return entry('update', 'UPDATE', `UPDATE ${written.join(', ')}`, WRITE, {
    ...fieldsOf(facts),
    tablesWritten: written,
    where: unrestricted.length > 0 ? where : 'effective',
    findings,
  });
}

function whereDetail(where: 'absent' | 'ineffective' | 'effective'): string {
  return where === 'absent' ? 'it has no WHERE clause' : 'its WHERE clause does not restrict the rows';
}

/** Targets none of the conditions restricts. */
function targetsUnrestricted(
  targets: readonly { name: string; names: Set<string> }[],
  conditions: readonly unknown[],
): string[] {
  return targets
    .filter(
      (t) => !conditions.some((c) => c !== undefined && c !== null && restrictsTarget(c, { names: t.names })),
    )
    .map((t) => t.name);
}

function del(s: Statement): StatementEntry {
  const ast = parsed(parserText(s.tokens));
  const body = field(ast, 'Delete');
  if (!body) return unparsed('DELETE');
  const from = variant(field(body, 'from'));
  const fromTables = asArray(from?.[1]);
  const sources = [...fromTables, ...asArray(field(body, 'using'))];
  const all = sources.flatMap(tablesOf);
  // `DELETE t1, t2 FROM ...` names its targets; `DELETE FROM t1, t2 USING ...` and `DELETE FROM t` delete from FROM.
  const named = asArray(field(body, 'tables')).map((n) => nameParts(n).join('.').toLowerCase());
  const targets =
    named.length > 0
      ? named.map(
          (n) =>
            all.find((t) => t.names.has(n) || t.name.toLowerCase() === n) ?? { name: n, names: new Set([n]) },
        )
      : fromTables.flatMap(tablesOf);
  const facts = emptyAstFacts();
  collectReads(body, facts);
  finishColumns(facts);
  const conditions = [field(body, 'selection'), ...sources.flatMap(joinConditions)];
  const unrestricted = targetsUnrestricted(targets, conditions);
  const selection = field(body, 'selection');
  const where = selection === undefined || selection === null ? 'absent' : 'ineffective';
  const written = targets.map((t) => t.name);
  return entry('delete', 'DELETE', `DELETE FROM ${written.join(', ')}`, WRITE, {
    ...fieldsOf(facts),
    tablesWritten: written,
    where: unrestricted.length > 0 ? where : 'effective',
    findings:
      unrestricted.length > 0
        ? [{ kind: 'delete-without-where', detail: whereDetail(where), tables: unrestricted }]
        : [],
  });
}

const DROP_ADMIN = new Set(['DATABASE', 'SCHEMA', 'USER', 'ROLE', 'SERVER', 'TABLESPACE', 'LOGFILE']);

function drop(s: Statement): StatementResult {
  let i = 1;
  const temporary = s.word(i) === 'TEMPORARY';
  if (temporary) i++;
  const what = s.word(i);
  if (what === 'PREPARE') {
    const name = s.name(i + 1)?.name.toLowerCase();
    return name
      ? result([entry('deallocate', 'DEALLOCATE PREPARE', `DEALLOCATE PREPARE ${name}`, NONE)], {
          deallocates: name,
        })
      : unknownResult(s);
  }
  const objectType = what === 'TABLES' ? 'TABLE' : what;
  const objects = s.names(i + 1);
  const onTable = what === 'INDEX' && s.find('ON') > 0 ? s.names(s.find('ON') + 1) : [];
  const command = `DROP ${temporary ? 'TEMPORARY ' : ''}${objectType}`;
  // DROP TEMPORARY TABLE drops only the session's own temporary tables: scratch space, like creating them.
  if (temporary && objectType === 'TABLE')
    return result([entry('drop', command, `${command} ${objects.join(', ')}`, READ, { objects })]);
  const classes = DROP_ADMIN.has(objectType) ? ADMIN : DDL;
  const tables = objectType === 'TABLE' || objectType === 'VIEW' ? objects : onTable;
  const finding: NewFinding =
    objectType === 'USER' || objectType === 'ROLE'
      ? { kind: 'drop', detail: `it drops ${objectType === 'USER' ? 'accounts' : 'roles'}` }
      : tables.length > 0
        ? { kind: 'drop', detail: `it drops ${objectType.toLowerCase()} ${objects.join(', ')}`, tables }
        : { kind: 'drop', detail: `it drops ${objectType.toLowerCase()} ${objects.join(', ')}` };
  const findings: NewFinding[] = [finding];
  if (objectType === 'USER' || objectType === 'ROLE')
    findings.push(grantFinding(`it drops ${objectType.toLowerCase()}s`));
  return result([
    entry('drop', command, `${command} ${objects.join(', ')}`, classes, {
      objects,
      tablesWritten: tables,
      findings,
    }),
  ]);
}

const ALTER_ADMIN = new Set([
  'DATABASE',
  'SCHEMA',
  'USER',
  'ROLE',
  'SERVER',
  'INSTANCE',
  'TABLESPACE',
  'LOGFILE',
  'RESOURCE',
]);

function alter(s: Statement): StatementEntry {
  let i = 1;
  while (['ONLINE', 'IGNORE', 'DEFINER', 'ALGORITHM', 'SQL', 'SECURITY'].includes(s.word(i)))
    i = skipClause(s, i);
  const what = s.word(i);
  const objects = s.names(i + 1);
  const command = `ALTER ${what}`;
  if (what === 'USER' || what === 'ROLE')
    return entry('alter', command, command, ADMIN, {
      findings: [grantFinding('it changes an account'), { kind: 'alter', detail: 'it changes an account' }],
    });
  const classes = ALTER_ADMIN.has(what) ? ADMIN : DDL;
  const tables = what === 'TABLE' || what === 'VIEW' ? objects : [];
  const findings: NewFinding[] = [];
  if (what === 'TABLE' && dropsPart(s, i + 1))
    findings.push({ kind: 'drop', detail: 'it drops a column, index, constraint or partition', tables });
  if (what === 'TABLE' && (s.has('DISCARD') || s.has('IMPORT')) && s.has('TABLESPACE'))
    findings.push({ kind: 'file-access', detail: 'it discards or imports tablespace files' });
  if (what === 'EVENT' && s.has('DO'))
    findings.push({ kind: 'dynamic-sql', detail: 'it stores an event body Gatehouse does not analyse' });
  findings.push(
    tables.length > 0
      ? { kind: 'alter', detail: `it alters ${what.toLowerCase()} ${objects.join(', ')}`, tables }
      : { kind: 'alter', detail: `it alters ${what.toLowerCase()}` },
  );
  return entry('alter', command, `${command} ${objects.join(', ')}`, classes, {
    objects,
    tablesWritten: tables,
    findings,
  });
}

/** Skips `DEFINER = user`, `ALGORITHM = x`, `SQL SECURITY x`, ONLINE, IGNORE from token i. */
function skipClause(s: Statement, i: number): number {
  const w = s.word(i);
  if (w === 'SQL') return i + 3;
  if (w === 'DEFINER' || w === 'ALGORITHM') {
    let j = i + 2;
    // user, 'user'@'host', CURRENT_USER, CURRENT_USER()
    j++;
    while (
      s.tokens[j]?.type === 'punct' &&
      (s.tokens[j]!.value === '@' || s.tokens[j]!.value === '(' || s.tokens[j]!.value === ')')
    )
      j += s.tokens[j]!.value === '@' ? 2 : 1;
    if (s.tokens[j]?.type === 'variable' && !s.tokens[j]!.spaced) j++;
    return j;
  }
  return i + 1;
}

function dropsPart(s: Statement, from: number): boolean {
  let depth = 0;
  for (let i = from; i < s.tokens.length; i++) {
    const t = s.tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && s.word(i) === 'DROP') return true;
  }
  return false;
}

function renamed(s: Statement): string[] {
  const out: string[] = [];
  for (let i = 2; i < s.tokens.length; i++) {
    const n = s.name(i);
    if (n && s.word(i) !== 'TO') {
      out.push(n.name);
      i = n.next - 1;
    }
  }
  return out;
}

const STORED_CODE = new Set(['PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT']);

function create(s: Statement, ctx: RuleContext): StatementResult {
  let i = 1;
  if (s.word(i) === 'OR' && s.word(i + 1) === 'REPLACE') i += 2;
  while (
    ['DEFINER', 'ALGORITHM', 'SQL', 'AGGREGATE', 'ONLINE', 'UNIQUE', 'FULLTEXT', 'SPATIAL'].includes(
      s.word(i),
    )
  )
    i = skipClause(s, i);
  const temporary = s.word(i) === 'TEMPORARY';
  if (temporary) i++;
  const what = s.word(i);
  const on = what === 'INDEX' || what === 'TRIGGER' ? s.find('ON', i + 1) : -1;
  // An index or a trigger acts on its table as well: masking refuses either on a masked table.
  const named = s.names(i + 1);
  const objects = [...named, ...(on > 0 ? s.names(on + 1) : [])];
  const command = `CREATE ${temporary ? 'TEMPORARY ' : ''}${what}`;
  const summary = `${command} ${named.join(', ')}${on > 0 ? ` ON ${s.names(on + 1).join(', ')}` : ''}`;
  if (what === 'USER' || what === 'ROLE')
    return result([
      entry('create', command, command, ADMIN, {
        findings: [grantFinding(`it creates ${what === 'USER' ? 'accounts' : 'roles'}`)],
      }),
    ]);
  if (what === 'FUNCTION' && s.has('SONAME'))
    return result([
      entry('create', command, summary, ADMIN, {
        objects,
        findings: [{ kind: 'file-access', detail: 'it loads a shared library into the server' }],
      }),
    ]);
  const body = STORED_CODE.has(what) ? storedCodeBody(s.tokens) : undefined;
  if (body) {
    // Creating code is DDL; what the code does is judged now (as for PostgreSQL's CREATE FUNCTION)
    // and again wherever it runs: CALL, a stored function in an expression, a trigger on a write.
    const text = ctx.source.slice(s.tokens[body.start]!.start, s.lexed.end);
    return result([
      ...nested(
        [...ctx.analyzeBody(text, { parameters: body.parameters, trigger: what === 'TRIGGER' })],
        command,
      ),
      entry('create', command, summary, DDL, { objects }),
    ]);
  }
  if (STORED_CODE.has(what))
    return result([
      entry('create', command, summary, DDL, {
        objects,
        findings: [
          {
            kind: 'dynamic-sql',
            detail: `it stores a ${what.toLowerCase()} body that Gatehouse does not analyse`,
          },
        ],
      }),
    ]);
  if (what === 'DATABASE' || what === 'SCHEMA' || what === 'SERVER')
    return result([entry('create', command, summary, ADMIN, { objects })]);
  if (what === 'TABLESPACE' || what === 'LOGFILE')
    return result([
      entry('create', command, summary, ADMIN, {
        objects,
        findings: [{ kind: 'file-access', detail: 'it creates server files' }],
      }),
    ]);
  const findings: NewFinding[] = [];
  if (
    what === 'TABLE' &&
    (s.has('DIRECTORY') || s.has('FILE_NAME') || s.has('CONNECT') || s.has('CONNECTION'))
  )
    findings.push({
      kind: 'file-access',
      detail: 'it names server files or connections as the table storage',
    });
  const nestedEntries = what === 'TABLE' || what === 'VIEW' ? definitionQuery(s, ctx, i + 1, command) : [];
  const like = s.find('LIKE', i + 1);
  const tablesRead = what === 'TABLE' && like >= 0 ? s.names(like + 1) : [];
  const classes = temporary ? READ : DDL;
  const written = what === 'TABLE' ? objects : [];
  return result([
    ...nestedEntries,
    entry('create', command, summary, classes, { objects, tablesRead, tablesWritten: written, findings }),
  ]);
}

/** The facts of the query a CREATE TABLE ... SELECT or a view's definition runs, from token `from` on. */
function definitionQuery(s: Statement, ctx: RuleContext, from: number, command: string): StatementEntry[] {
  const select = firstTopLevel(s, ['SELECT', 'WITH'], from);
  if (select < 0) return [];
  const inner = analyzeLexed({ ...s.lexed, tokens: s.tokens.slice(select), canonical: s.text(select) }, ctx);
  return nested(inner.entries, command);
}

function firstTopLevel(s: Statement, words: readonly string[], from: number): number {
  let depth = 0;
  for (let i = from; i < s.tokens.length; i++) {
    const t = s.tokens[i]!;
    if (t.type === 'punct' && t.value === '(') {
      if (depth === 0 && words.includes(s.word(i + 1))) return i;
      depth++;
    }
    if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && words.includes(s.word(i))) return i;
  }
  return -1;
}

/** Splits tokens [from, end) at top-level commas. */
function assignments(s: Statement, from: number): [number, number][] {
  const out: [number, number][] = [];
  let depth = 0;
  let start = from;
  for (let i = from; i < s.tokens.length; i++) {
    const t = s.tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    if (t.type === 'punct' && t.value === ')') depth--;
    if (depth === 0 && t.type === 'punct' && t.value === ',') {
      out.push([start, i]);
      start = i + 1;
    }
  }
  out.push([start, s.tokens.length]);
  return out;
}

function set(s: Statement, ctx: RuleContext): StatementResult {
  const w1 = s.word(1);
  if (w1 === 'ROLE' || (w1 === 'DEFAULT' && s.word(2) === 'ROLE'))
    return result([
      entry(
        'set',
        w1 === 'ROLE' ? 'SET ROLE' : 'SET DEFAULT ROLE',
        w1 === 'ROLE' ? 'SET ROLE' : 'SET DEFAULT ROLE',
        ADMIN,
        {
          findings: [
            { kind: 'identity-change', detail: 'it changes the roles whose privileges the session has' },
          ],
        },
      ),
    ]);
  if (w1 === 'PASSWORD')
    return result([
      entry('set', 'SET PASSWORD', 'SET PASSWORD', ADMIN, {
        findings: [
          { kind: 'identity-change', detail: "it changes an account's password" },
          grantFinding("it changes an account's credentials"),
        ],
      }),
    ]);
  if (w1 === 'TRANSACTION' || ((w1 === 'SESSION' || w1 === 'GLOBAL') && s.word(2) === 'TRANSACTION'))
    return result([
      entry('transaction', 'SET TRANSACTION', 'SET TRANSACTION', w1 === 'GLOBAL' ? ADMIN : NONE),
    ]);
  if (w1 === 'STATEMENT') return setStatement(s, ctx);
  const entries: StatementEntry[] = [];
  const userVariables: string[] = [];
  const constants: [string, string | null][] = [];
  /** Settings that end the transaction or change when it ends: named in the summary (row limits). */
  const ending: string[] = [];
  let classes: StatementClass[] = [];
  const findings: NewFinding[] = [];
  let scope = 'SESSION';
  for (const [from, to] of assignments(s, 1)) {
    let i = from;
    if (['SESSION', 'LOCAL', 'GLOBAL', 'PERSIST', 'PERSIST_ONLY'].includes(s.word(i))) scope = s.word(i++);
    const target = s.tokens[i];
    if (!target) return unknownResult(s);
    const modeRefusal = sqlModeRefusal(target, s.tokens.slice(i + 1, to));
    if (modeRefusal) return result([unknownEntry(modeRefusal)]);
    if (setsUnsafeCharset(target, s.tokens.slice(i + 1, to))) return result([unknownEntry(UNSAFE_CHARSET)]);
    const op = s.tokens[i + 1];
    const valueAt = op?.type === 'punct' && (op.value === '=' || op.value === ':=') ? i + 2 : i + 1;
    if (target.type === 'variable') {
      userVariables.push(target.value);
      const only = valueAt === to - 1 ? s.tokens[valueAt] : undefined;
      constants.push([target.value, only ? constantText(only) : null]);
    } else if (target.type === 'system-variable') {
      const [prefix, name] = target.value.includes('.')
        ? target.value.split('.', 2)
        : ['session', target.value];
      if (prefix !== 'session' && prefix !== 'local') classes = ['admin'];
      if (name && PRIVILEGED_VARIABLES.has(name)) classes = ['admin'];
      if (name && ENDING_VARIABLES.has(name.toLowerCase())) ending.push(name.toLowerCase());
      if (name) findings.push(...settingFindings(name));
    } else {
      if (scope !== 'SESSION' && scope !== 'LOCAL') classes = ['admin'];
      const name = target.type === 'word' ? target.value.toLowerCase() : target.value.toLowerCase();
      if (PRIVILEGED_VARIABLES.has(name)) classes = ['admin'];
      if (ENDING_VARIABLES.has(name)) ending.push(name);
      findings.push(...settingFindings(name));
      if (name === 'names' || name === 'character' || name === 'charset') continue;
    }
    if (valueAt < to) {
      const value = expressionStatement(s, valueAt, 'SET', to);
      if (value.kind === 'unknown') return result([value]);
      if (value.tablesRead.length > 0 || value.functions.length > 0) entries.push({ ...value, via: ['SET'] });
    }
  }
  const named = [...userVariables.map((v) => `@${v}`), ...ending];
  const summary = named.length > 0 ? `SET ${named.join(', ')}` : 'SET';
  const reads = entries.flatMap((e) => e.tablesRead);
  if (reads.length > 0) classes = [...new Set([...classes, 'read' as const])];
  return result([...entries, entry('set', 'SET', summary, classes, { tablesRead: reads, findings })], {
    userVariables,
    constants,
  });
}

/** Session variables whose SET commits the open transaction or decides how it ends. */
const ENDING_VARIABLES: ReadonlySet<string> = new Set(['autocommit', 'completion_type']);

const UNSAFE_CHARSET =
  'it switches the connection to a character set in which part of a multibyte character reads as a quote or backslash';
const UNTOLD_SQL_MODE = 'it sets sql_mode to a value Gatehouse cannot tell from the text';
const UNREADABLE_SQL_MODE = (mode: string) =>
  `it sets sql_mode ${mode}, under which Gatehouse cannot read statements as the server does`;

/** Whether a finding's detail says the statement changes how the server reads later text. */
export function changesReading(detail: string): boolean {
  return (
    detail === UNSAFE_CHARSET ||
    detail === UNTOLD_SQL_MODE ||
    /^it sets sql_mode \S+, under which/.test(detail)
  );
}

/**
 * Why an assignment to sql_mode (any scope) may not run: it sets a mode the analysis cannot read
 * statements under, or a value that cannot be told from the text (a variable, a query), which
 * could be one.
 */
function sqlModeRefusal(target: MysqlToken, value: readonly MysqlToken[]): string | undefined {
  const name = (
    target.type === 'system-variable' ? target.value.split('.').pop()! : target.value
  ).toLowerCase();
  if (
    name !== 'sql_mode' ||
    (target.type !== 'system-variable' && target.type !== 'word' && target.type !== 'ident')
  )
    return undefined;
  for (const token of value) {
    if (token.type === 'variable' || (token.type === 'word' && token.value.toUpperCase() === 'SELECT'))
      return UNTOLD_SQL_MODE;
    if (token.type !== 'string' && token.type !== 'word' && token.type !== 'ident') continue;
    const mode = unreadableSqlMode(token.value);
    if (mode) return UNREADABLE_SQL_MODE(mode);
  }
  return undefined;
}

const CHARSET_SETTINGS = new Set([
  'names',
  'character',
  'charset',
  'character_set_client',
  'character_set_connection',
]);
/** Client character sets whose multibyte characters may end in 0x5C (`\`): the lexer reads UTF-8. */
const UNSAFE_CHARSETS = new Set(['big5', 'cp932', 'gbk', 'gb18030', 'sjis']);

function setsUnsafeCharset(target: MysqlToken, value: readonly MysqlToken[]): boolean {
  const name = (
    target.type === 'system-variable' ? target.value.split('.').pop()! : target.value
  ).toLowerCase();
  if (!CHARSET_SETTINGS.has(name)) return false;
  return value.some(
    (t) =>
      t.type === 'variable' ||
      t.type === 'system-variable' ||
      ((t.type === 'word' || t.type === 'string' || t.type === 'ident') &&
        UNSAFE_CHARSETS.has(t.value.toLowerCase())),
  );
}

/** Server settings that name files the server writes, or SQL text it runs later. */
const FILE_SETTINGS = new Set([
  'general_log_file',
  'slow_query_log_file',
  'log_error',
  'innodb_data_home_dir',
]);
const SQL_SETTINGS = new Set(['init_connect', 'init_slave', 'init_replica', 'init_file']);

function settingFindings(name: string): NewFinding[] {
  if (FILE_SETTINGS.has(name))
    return [{ kind: 'file-access', detail: `it points the server's ${name} at a file` }];
  if (SQL_SETTINGS.has(name))
    return [{ kind: 'dynamic-sql', detail: `it stores SQL text the server runs later (${name})` }];
  return [];
}

/** MariaDB's `SET STATEMENT var=value[, ...] FOR statement`: the statement, with the settings. */
function setStatement(s: Statement, ctx: RuleContext): StatementResult {
  const at = s.find('FOR');
  if (at < 0) return unknownResult(s);
  if (
    s.words.slice(0, at).includes('SQL_MODE') ||
    s.tokens.slice(0, at).some((t) => t.type === 'ident' && t.value.toLowerCase() === 'sql_mode')
  )
    return result([unknownEntry('it reads its statement under an sql_mode Gatehouse does not apply to it')]);
  const inner = analyzeLexed({ ...s.lexed, tokens: s.tokens.slice(at + 1), canonical: s.text(at + 1) }, ctx);
  const top = inner.entries[inner.entries.length - 1]!;
  return {
    ...inner,
    entries: [...inner.entries.slice(0, -1), { ...top, summary: `SET STATEMENT ... FOR ${top.summary}` }],
  };
}

/** The text of a literal assigned to a user variable, for PREPARE ... FROM @var later in the text. */
function constantText(token: MysqlToken): string | null {
  if (token.type === 'string') return token.value;
  if (token.type === 'hex' && token.value.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(token.value))
    return Buffer.from(token.value, 'hex').toString('utf8');
  return null;
}

/** An expression (DO's, or a SET value) analysed as the select list of a SELECT. */
function expressionStatement(
  s: Statement,
  from: number,
  command: string,
  to = s.tokens.length,
): StatementEntry {
  const ast = parsed('SELECT ' + s.text(from, to));
  const body = field(ast, 'Query');
  if (!body) return unparsed(command);
  const facts = emptyAstFacts();
  collectReads(body, facts);
  finishColumns(facts);
  return entry(
    'select',
    command,
    command,
    facts.tablesRead.length > 0 ? READ : command === 'DO' ? READ : NONE,
    fieldsOf(facts),
  );
}

function prepare(s: Statement, ctx: RuleContext): StatementResult {
  const name = s.name(1);
  const from = name && s.word(name.next) === 'FROM' ? s.tokens[name.next + 1] : undefined;
  if (!name || !from || name.next + 2 !== s.tokens.length) return unknownResult(s);
  const key = name.name.toLowerCase();
  const text =
    from.type === 'string'
      ? from.value
      : from.type === 'variable'
        ? (ctx.constants.get(from.value) ?? null)
        : null;
  if (text === null)
    return result(
      [
        entry('prepare', 'PREPARE', `PREPARE ${key}`, ADMIN, {
          findings: [
            {
              kind: 'dynamic-sql',
              detail: 'it prepares SQL text built at run time, which Gatehouse cannot see',
            },
          ],
        }),
      ],
      {
        prepare: {
          name: key,
          text: null,
          entries: [unknownEntry('it runs SQL text built at run time', 'EXECUTE')],
        },
      },
    );
  const inner = ctx.analyzeText(text);
  const innerEntries = inner === 'unknown' ? [unknownEntry('the prepared text does not parse')] : inner;
  if (innerEntries.filter((e) => e.via.length === 0).length !== 1)
    return result([unknownEntry('a prepared statement must be one statement', 'PREPARE')]);
  return result([...nested(innerEntries, 'PREPARE'), entry('prepare', 'PREPARE', `PREPARE ${key}`, NONE)], {
    prepare: { name: key, text, entries: innerEntries },
  });
}

function execute(s: Statement, ctx: RuleContext): StatementResult {
  if (s.word(1) === 'IMMEDIATE') return executeImmediate(s, ctx);
  const name = s.name(1)?.name.toLowerCase();
  if (!name) return unknownResult(s);
  const known = ctx.prepared.get(name);
  const summary = `EXECUTE ${name}`;
  if (known)
    return result([
      ...nested(known, 'EXECUTE'),
      entry('execute', 'EXECUTE', summary, NONE, { executes: name }),
    ]);
  return result(
    [
      entry('execute', 'EXECUTE', summary, NONE, {
        executes: name,
        findings: [
          {
            kind: 'unknown-statement',
            detail: `it runs prepared statement ${name}, which Gatehouse has not seen prepared`,
          },
        ],
      }),
    ],
    { executes: name },
  );
}

/** MariaDB's `EXECUTE IMMEDIATE 'text'`: the text, when it is a literal; else dynamic SQL. */
function executeImmediate(s: Statement, ctx: RuleContext): StatementResult {
  const text = s.tokens[2];
  const literal =
    text?.type === 'string' && (s.tokens.length === 3 || s.word(3) === 'USING') ? text.value : null;
  const inner = literal === null ? 'unknown' : ctx.analyzeText(literal);
  if (inner === 'unknown')
    return result([
      entry('execute', 'EXECUTE IMMEDIATE', 'EXECUTE IMMEDIATE', ADMIN, {
        findings: [
          { kind: 'dynamic-sql', detail: 'it runs SQL text built at run time, which Gatehouse cannot see' },
        ],
      }),
    ]);
  return result([
    ...nested(inner, 'EXECUTE IMMEDIATE'),
    entry('execute', 'EXECUTE IMMEDIATE', 'EXECUTE IMMEDIATE', NONE),
  ]);
}

function handler(s: Statement): StatementResult {
  const name = s.name(1);
  if (!name) return unknownResult(s);
  const action = s.word(name.next);
  if (action === 'OPEN') {
    const aliasAt = s.word(name.next + 1) === 'AS' ? name.next + 2 : name.next + 1;
    const alias = s.name(aliasAt)?.name ?? name.name;
    return result(
      [
        entry('declare-cursor', 'HANDLER OPEN', `HANDLER ${name.name} OPEN`, READ, {
          tablesRead: [name.name],
        }),
      ],
      {
        handler: { name: alias.toLowerCase(), table: name.name },
      },
    );
  }
  if (action === 'CLOSE')
    return result([entry('close-cursor', 'HANDLER CLOSE', `HANDLER ${name.name} CLOSE`, NONE)]);
  if (action === 'READ')
    return result([
      entry('fetch', 'HANDLER READ', `HANDLER ${name.name} READ`, READ, { tablesRead: [name.name] }),
    ]);
  return unknownResult(s);
}

function load(s: Statement): StatementResult {
  const w1 = s.word(1);
  if (w1 === 'INDEX') return result([entry('maintenance', 'LOAD INDEX', 'LOAD INDEX INTO CACHE', ADMIN)]);
  if (w1 !== 'DATA' && w1 !== 'XML') return unknownResult(s);
  const into = s.find('TABLE');
  const tables = into >= 0 ? s.names(into + 1) : [];
  const local = s.has('LOCAL');
  return result([
    entry('copy', `LOAD ${w1}`, `LOAD ${w1} INTO ${tables.join(', ')}`, ['write', 'admin'], {
      tablesWritten: tables,
      findings: [
        {
          kind: 'file-access',
          detail: local
            ? "it loads a file from the client's host into a table"
            : 'it reads a server file into a table',
        },
      ],
    }),
  ]);
}

function show(s: Statement): StatementResult {
  const words = s.words.slice(1, 4).join(' ');
  if (/^(WARNINGS|ERRORS|COUNT)/.test(words))
    return result([entry('show', 'SHOW WARNINGS', `SHOW ${s.word(1)}`, NONE)], {
      sideChannel: 'diagnostics',
    });
  if (/^(FULL )?PROCESSLIST/.test(words))
    return result([entry('show', 'SHOW PROCESSLIST', 'SHOW PROCESSLIST', ADMIN)], {
      sideChannel: 'processlist',
    });
  if (/^(BINLOG|RELAYLOG) EVENTS/.test(words) || /^ENGINE/.test(words))
    return result([entry('show', `SHOW ${s.word(1)}`, `SHOW ${s.word(1)}`, ADMIN)]);
  return result([entry('show', 'SHOW', `SHOW ${s.word(1)}`, NONE)]);
}

const EXPLAINABLE = new Set(['SELECT', 'WITH', 'TABLE', 'VALUES', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE']);

const EXPLAIN_OPTIONS = new Set(['ANALYZE', 'FORMAT', 'EXTENDED', 'PARTITIONS', 'FOR']);

function explain(s: Statement, ctx: RuleContext): StatementResult {
  const w1 = s.word(1);
  if (w1 === 'FOR' || (EXPLAIN_OPTIONS.has(w1) && s.has('CONNECTION')))
    return result([entry('explain', 'EXPLAIN FOR CONNECTION', 'EXPLAIN FOR CONNECTION', ADMIN)]);
  const table = s.name(1);
  if (table && !EXPLAINABLE.has(w1) && !EXPLAIN_OPTIONS.has(w1))
    return result([
      entry('explain', 'DESCRIBE', `DESCRIBE ${table.name}`, READ, { tablesRead: [table.name] }),
    ]);
  let i = 1;
  while (i < s.tokens.length && !EXPLAINABLE.has(s.word(i))) i++;
  if (i >= s.tokens.length) return unknownResult(s);
  // MySQL's EXPLAIN ANALYZE runs the statement; plain EXPLAIN does not, but its statement is judged all the same.
  const via = s.words.slice(1, i).includes('ANALYZE') ? 'EXPLAIN ANALYZE' : 'EXPLAIN';
  const inner = analyzeLexed({ ...s.lexed, tokens: s.tokens.slice(i), canonical: s.text(i) }, ctx);
  const judged = via === 'EXPLAIN' ? plannedOnly(inner.entries) : inner.entries;
  return result([...nested(judged, via), entry('explain', via, via, READ)]);
}

/**
 * What plain EXPLAIN makes of a statement: it plans it and never runs it, so its writes do not happen
 * (`EXPLAIN DELETE FROM t` deletes nothing). What planning may evaluate still counts: functions and
 * code (the optimizer can call a constant function) keep their findings, and the tables it would write
 * are read.
 */
function plannedOnly(entries: readonly StatementEntry[]): StatementEntry[] {
  return entries.map((e) => ({
    ...e,
    classes: e.classes.map((c) => (c === 'write' ? 'read' : c)),
    tablesRead: [...e.tablesRead, ...e.tablesWritten],
    tablesWritten: [],
    columnsWritten: [],
    findings: e.findings.filter(
      (f) => f.kind !== 'delete-without-where' && f.kind !== 'update-without-where',
    ),
  }));
}

/** ANALYZE TABLE (statistics), or MariaDB's ANALYZE statement, which runs the statement. */
function analyzeStatement(s: Statement, ctx: RuleContext): StatementResult {
  let i = 1;
  while (s.word(i) === 'NO_WRITE_TO_BINLOG' || s.word(i) === 'LOCAL') i++;
  if (s.word(i) === 'TABLE' || s.word(i) === 'TABLES') {
    const tables = s.names(i + 1);
    return result([
      entry('maintenance', 'ANALYZE TABLE', `ANALYZE TABLE ${tables.join(', ')}`, READ, {
        objects: tables,
        tablesRead: tables,
      }),
    ]);
  }
  while (i < s.tokens.length && !EXPLAINABLE.has(s.word(i))) i++;
  if (i >= s.tokens.length) return unknownResult(s);
  const inner = analyzeLexed({ ...s.lexed, tokens: s.tokens.slice(i), canonical: s.text(i) }, ctx);
  return result([...nested(inner.entries, 'ANALYZE'), entry('explain', 'ANALYZE', 'ANALYZE', READ)]);
}
