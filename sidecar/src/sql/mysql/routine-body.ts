import { assembleFacts, type StatementEntry } from '../analyze/assemble-facts.ts';
import type { StatementFacts } from '../analyze/statement-facts.ts';
import { joinTokens, lexMysql, type MysqlToken } from './lexer.ts';
import type { MysqlSqlMode } from './sql-mode.ts';
import { unknownEntry } from './statement-rules.ts';
import { splitTopLevel } from './stored-code-body.ts';

/**
 * What a stored routine, trigger or event body does, as StatementFacts: each SQL statement in it
 * (through BEGIN ... END, IF, CASE, WHILE, REPEAT, LOOP, labels and handlers) analysed like a client's
 * statement, and each condition, DEFAULT and RETURN expression as a SELECT of it. Anything this reader
 * does not know (FOR loops, text it cannot lex) becomes an `unknown` statement, so it fails closed.
 */
export function analyzeMysqlRoutineBody(
  body: string,
  mode: MysqlSqlMode,
  analyze: AnalyzeMysql,
  options: { readonly parameters?: readonly string[]; readonly trigger?: boolean } = {},
): StatementFacts {
  const lexed = lexMysql(body, mode);
  const entries: StatementEntry[] = [];
  if (lexed.error !== null || lexed.conditional) {
    entries.push(
      unknownEntry(`the stored body cannot be read safely${lexed.error ? `: ${lexed.error}` : ''}`),
    );
  } else {
    // Local variables and parameters win over columns of the same name (MySQL's rule): they are
    // values, read as parameters, so `DELETE FROM t WHERE id = p_id` restricts the rows.
    const locals = new Set((options.parameters ?? []).map((p) => p.toLowerCase()));
    for (const statement of lexed.statements)
      for (const name of declaredVariables(statement.tokens)) locals.add(name);
    const reader = new BodyReader(mode, analyze, entries, locals, options.trigger === true);
    for (const statement of lexed.statements) reader.piece(statement.tokens);
  }
  return assembleFacts(entries, {
    parsed: !entries.some((e) => e.kind === 'unknown'),
    statementCount: 1,
    prepared: [],
    unresolvedExecutes: [],
    deallocated: [],
    cursors: [],
  });
}

/**
 * The statement analyser, handed in by analyze-mysql.ts: a body's statements are analysed as a
 * client's are, and a CREATE's body is read by this module (mutual recursion without an import cycle).
 */
export type AnalyzeMysql = (sql: string, options: { readonly sqlMode: MysqlSqlMode }) => StatementFacts;

class BodyReader {
  readonly #mode: MysqlSqlMode;
  readonly #analyze: AnalyzeMysql;
  readonly #entries: StatementEntry[];
  readonly #locals: ReadonlySet<string>;
  readonly #trigger: boolean;

  constructor(
    mode: MysqlSqlMode,
    analyze: AnalyzeMysql,
    entries: StatementEntry[],
    locals: ReadonlySet<string>,
    trigger: boolean,
  ) {
    this.#mode = mode;
    this.#analyze = analyze;
    this.#entries = entries;
    this.#locals = locals;
    this.#trigger = trigger;
  }

  /** One `;`-separated piece of the body: control-flow words, then at most one statement. */
  piece(all: readonly MysqlToken[]): void {
    let tokens = all;
    const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : '');
    const punct = (i: number, value: string) => tokens[i]?.type === 'punct' && tokens[i]!.value === value;
    for (;;) {
      if (tokens.length === 0) return;
      const w = word(0);
      // `label:` before BEGIN, LOOP, WHILE, REPEAT.
      if ((tokens[0]!.type === 'word' || tokens[0]!.type === 'ident') && punct(1, ':'))
        tokens = tokens.slice(2);
      else if (w === 'BEGIN') tokens = tokens.slice(word(1) === 'NOT' && word(2) === 'ATOMIC' ? 3 : 1);
      else if (w === 'END') {
        // END, END IF, END WHILE label...: nothing may follow but a label.
        const rest = tokens.slice(['IF', 'WHILE', 'LOOP', 'REPEAT', 'CASE'].includes(word(1)) ? 2 : 1);
        if (rest.length > 1 || (rest.length === 1 && rest[0]!.type !== 'word' && rest[0]!.type !== 'ident'))
          this.#unknown('END followed by more than a label');
        return;
      } else if (w === 'ELSE' || w === 'REPEAT' || w === 'LOOP') tokens = tokens.slice(1);
      else if (w === 'IF' || w === 'ELSEIF' || w === 'WHEN' || w === 'WHILE') {
        const end = topLevelWord(tokens, w === 'WHILE' ? 'DO' : 'THEN', 1);
        if (end < 0) {
          this.#unknown(`${w} without ${w === 'WHILE' ? 'DO' : 'THEN'}`);
          return;
        }
        this.#expression(tokens.slice(1, end));
        tokens = tokens.slice(end + 1);
      } else if (w === 'CASE') {
        const when = topLevelWord(tokens, 'WHEN', 1);
        if (when < 0) {
          this.#unknown('CASE without WHEN');
          return;
        }
        if (when > 1) this.#expression(tokens.slice(1, when));
        tokens = tokens.slice(when);
      } else if (w === 'UNTIL') {
        const end = topLevelWord(tokens, 'END', 1);
        if (end < 0) {
          this.#unknown('UNTIL without END REPEAT');
          return;
        }
        this.#expression(tokens.slice(1, end));
        tokens = tokens.slice(end);
      } else if (w === 'FOR') {
        this.#unknown('FOR loops are not read');
        return;
      } else break;
    }
    this.#statement(tokens);
  }

  #statement(tokens: readonly MysqlToken[]): void {
    const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : '');
    switch (word(0)) {
      case 'DECLARE': {
        this.#declare(tokens);
        return;
      }
      case 'RETURN': {
        this.#expression(tokens.slice(1));
        return;
      }
      case 'LEAVE':
      case 'ITERATE':
      case 'OPEN':
      case 'CLOSE':
      case 'FETCH':
        // Control flow and cursors declared (and judged) elsewhere in the body.
        return;
      case 'SIGNAL':
      case 'RESIGNAL':
        // SET MESSAGE_TEXT = 'literal', MYSQL_ERRNO = 1234: anything computed is not read.
        if (tokens.some((t) => t.type === 'punct' && t.value === '(')) this.#unknown('a computed SIGNAL');
        return;
      case 'SELECT':
      case 'WITH': // SELECT ... INTO local variables: the variables are not tables.
        {
          this.#tokens(withoutLocalInto(tokens));
          return;
        }
      case 'SET': {
        this.#set(tokens);
        return;
      }
      default: {
        this.#tokens(tokens);
        return;
      }
    }
  }

  #declare(tokens: readonly MysqlToken[]): void {
    const word = (i: number) => (tokens[i]?.type === 'word' ? tokens[i]!.value : '');
    const cursor = topLevelWord(tokens, 'CURSOR', 1);
    if (cursor >= 0 && word(cursor + 1) === 'FOR') {
      this.#text(joinTokens(tokens.slice(cursor + 2)));
      return;
    }
    const handler = topLevelWord(tokens, 'HANDLER', 1);
    if (handler >= 0 && word(handler + 1) === 'FOR') {
      // Conditions: SQLSTATE [VALUE] 'x', an error number, SQLWARNING, NOT FOUND, SQLEXCEPTION, a name.
      let i = handler + 2;
      for (;;) {
        if (word(i) === 'SQLSTATE') i += word(i + 1) === 'VALUE' ? 3 : 2;
        else if (word(i) === 'NOT' && word(i + 1) === 'FOUND') i += 2;
        else i += 1;
        if (tokens[i]?.type === 'punct' && tokens[i]!.value === ',') i++;
        else break;
      }
      this.piece(tokens.slice(i));
      return;
    }
    if (topLevelWord(tokens, 'CONDITION', 1) >= 0) return;
    const defaultAt = topLevelWord(tokens, 'DEFAULT', 1);
    if (defaultAt >= 0) this.#expression(tokens.slice(defaultAt + 1));
  }

  /**
   * `SET a = expr, NEW.x = expr, @u = expr`: assignments to local variables, the trigger's row and
   * user variables evaluate their expressions; any other SET (system variables) is judged as written.
   */
  #set(tokens: readonly MysqlToken[]): void {
    const assignments = splitTopLevel(tokens.slice(1), ',');
    const local = assignments.every((a) => {
      const eq = a.findIndex((t) => t.type === 'punct' && (t.value === '=' || t.value === ':='));
      if (eq < 0) return false;
      const target = a.slice(0, eq);
      return (
        (target.length === 1 &&
          (target[0]!.type === 'variable' || this.#locals.has(target[0]!.value.toLowerCase()))) ||
        (this.#trigger && target.length === 3 && isRowReference(target, 0))
      );
    });
    if (!local) {
      this.#tokens(tokens);
      return;
    }
    for (const a of assignments) {
      const eq = a.findIndex((t) => t.type === 'punct' && (t.value === '=' || t.value === ':='));
      this.#expression(a.slice(eq + 1));
    }
  }

  #expression(tokens: readonly MysqlToken[]): void {
    if (tokens.length === 0) {
      this.#unknown('an empty expression');
      return;
    }
    this.#tokens([SELECT_TOKEN, ...tokens]);
  }

  /** Analyses a statement of the body with its local variables (and NEW/OLD columns) read as values. */
  #tokens(tokens: readonly MysqlToken[]): void {
    const out: MysqlToken[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      const previous = tokens[i - 1];
      const next = tokens[i + 1];
      if (this.#trigger && isRowReference(tokens, i)) {
        out.push(valueToken(t));
        i += 2;
        continue;
      }
      const qualified =
        (previous?.type === 'punct' && previous.value === '.' && !t.spaced) ||
        (next?.type === 'punct' && (next.value === '.' || next.value === '(') && !next.spaced);
      if ((t.type === 'word' || t.type === 'ident') && !qualified && this.#locals.has(t.value.toLowerCase()))
        out.push(valueToken(t));
      else out.push(t);
    }
    this.#text(joinTokens(out));
  }

  #text(sql: string): void {
    const facts = this.#analyze(sql, { sqlMode: this.#mode });
    for (const s of facts.statements) {
      this.#entries.push({ ...s, findings: s.findings.map(({ statement: _i, ...f }) => f) });
    }
  }

  #unknown(why: string): void {
    this.#entries.push(unknownEntry(`the stored body holds ${why}`));
  }
}

const SELECT_TOKEN: MysqlToken = {
  type: 'word',
  value: 'SELECT',
  canonical: 'SELECT',
  start: 0,
  end: 0,
  spaced: false,
};

function valueToken(at: MysqlToken): MysqlToken {
  return { type: 'param', value: '?', canonical: '?', start: at.start, end: at.end, spaced: true };
}

/** `NEW.col` or `OLD.col` at i, in a trigger body. */
function isRowReference(tokens: readonly MysqlToken[], i: number): boolean {
  const t = tokens[i];
  const dot = tokens[i + 1];
  const column = tokens[i + 2];
  return (
    t?.type === 'word' &&
    (t.value === 'NEW' || t.value === 'OLD') &&
    dot?.type === 'punct' &&
    dot.value === '.' &&
    !dot.spaced &&
    (column?.type === 'word' || column?.type === 'ident')
  );
}

/** Names a `DECLARE a, b INT` declares (cursors, conditions and handlers are not variables). */
function declaredVariables(tokens: readonly MysqlToken[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i]!.type !== 'word' || tokens[i]!.value !== 'DECLARE') continue;
    const names: string[] = [];
    let j = i + 1;
    for (;;) {
      const t = tokens[j];
      if (!t || (t.type !== 'word' && t.type !== 'ident')) break;
      names.push(t.value.toLowerCase());
      if (tokens[j + 1]?.type === 'punct' && tokens[j + 1]!.value === ',') j += 2;
      else {
        j++;
        break;
      }
    }
    const after = tokens[j];
    const kind = after?.type === 'word' ? after.value : '';
    if (kind === 'CURSOR' || kind === 'CONDITION' || kind === 'HANDLER') continue;
    if (['continue', 'exit', 'undo'].includes(names[0] ?? '')) continue;
    out.push(...names);
  }
  return out;
}

/** Index of `word` at parenthesis depth 0 from `from`, or -1. CASE ... END inside is skipped for THEN/END. */
function topLevelWord(tokens: readonly MysqlToken[], word: string, from: number): number {
  let depth = 0;
  let cases = 0;
  for (let i = from; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.type === 'punct' && t.value === '(') depth++;
    else if (t.type === 'punct' && t.value === ')') depth--;
    else if (depth === 0 && t.type === 'word') {
      if (t.value === 'CASE') cases++;
      else if (t.value === 'END' && cases > 0) cases--;
      else if (t.value === word && (cases === 0 || (word !== 'THEN' && word !== 'END' && word !== 'WHEN')))
        return i;
    }
  }
  return -1;
}

/** `SELECT a, b INTO x, y FROM t` → `SELECT a, b FROM t`: INTO names local variables in a routine. */
function withoutLocalInto(tokens: readonly MysqlToken[]): readonly MysqlToken[] {
  const into = topLevelWord(tokens, 'INTO', 1);
  if (into < 0) return tokens;
  let end = into + 1;
  while (end < tokens.length) {
    const t = tokens[end]!;
    if (t.type !== 'word' && t.type !== 'ident' && t.type !== 'variable') break;
    if (
      t.type === 'word' &&
      ['FROM', 'WHERE', 'GROUP', 'ORDER', 'LIMIT', 'FOR', 'LOCK', 'UNION'].includes(t.value)
    )
      break;
    end++;
    if (tokens[end]?.type === 'punct' && tokens[end]!.value === ',') end++;
    else break;
  }
  return [...tokens.slice(0, into), ...tokens.slice(end)];
}
