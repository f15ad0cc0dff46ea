import { scanSync } from 'libpg-query';
import { parseTree } from './parse-tree.ts';

/**
 * The analyser (libpg-query) reads every text as PostgreSQL does with standard_conforming_strings
 * on and UTF-8 text. A session may make the server read differently: `'a\' OR true --'` is one
 * string to the analyser and a string, `OR true` and a comment to a server with
 * standard_conforming_strings off; in SJIS, BIG5, GBK, GB18030, UHC or JOHAB a backslash or other
 * ASCII byte can be the second half of a character. Rather than a second reading, Gatehouse lets
 * through only texts that every reading it cannot rule out agrees on, and refuses the rest:
 *
 * - A text with no `'...'` string holding a backslash (as the analyser reads it) is lexed the same
 *   under both settings of standard_conforming_strings: both lexers agree token by token up to the
 *   first such string. E'...' and dollar-quoted strings, identifiers and comments do not matter.
 * - A text of ASCII characters only is read the same in every encoding PostgreSQL accepts from a
 *   client (all are ASCII supersets outside multibyte characters, and there are none).
 */
export interface ServerReading {
  /** The server's standard_conforming_strings as it last reported it; undefined until it has. */
  readonly standardConformingStrings: boolean | undefined;
  /** The server's client_encoding as it last reported it, upper case; undefined until it has. */
  readonly clientEncoding: string | undefined;
}

export const UNKNOWN_READING: ServerReading = Object.freeze({
  standardConformingStrings: undefined,
  clientEncoding: undefined,
});

/** The reading after a ParameterStatus (at startup or after a statement changed a setting). */
export function withParameter(reading: ServerReading, name: string, value: string): ServerReading {
  if (name === 'standard_conforming_strings')
    return { ...reading, standardConformingStrings: value.toLowerCase() === 'on' };
  if (name === 'client_encoding') return { ...reading, clientEncoding: value.toUpperCase() };
  return reading;
}

/**
 * Why the server may read `sql` differently from the analyser, or undefined when it cannot.
 * `settled` is false while earlier statements of the session are still running: any of them may
 * have changed a setting (a function can call set_config) that the server reports only after it.
 */
export function readingRefusal(sql: string, reading: ServerReading, settled: boolean): string | undefined {
  if (sql.includes('\uFFFD'))
    return 'the text is not valid UTF-8 (or holds U+FFFD), which Gatehouse cannot read as the server does';
  if (/[^\x00-\x7f]/.test(sql)) {
    if (reading.clientEncoding !== 'UTF8')
      return reading.clientEncoding === undefined
        ? 'the server has not told the session its client_encoding, so only ASCII texts are read the same by Gatehouse and the server'
        : `with client_encoding ${reading.clientEncoding} only ASCII texts are read the same by Gatehouse (which reads UTF-8) and the server; set client_encoding to UTF8`;
    if (!settled) return UNSETTLED;
  }
  if (sql.includes('\\') && backslashInPlainString(sql)) {
    if (reading.standardConformingStrings !== true)
      return "standard_conforming_strings is not on in this session, so a backslash in a '...' string would be read differently by the server than by Gatehouse; use E'...' for backslash escapes, or set standard_conforming_strings = on";
    if (!settled) return UNSETTLED;
  }
  return settingRefusal(sql);
}

const UNSETTLED =
  "it was sent before an earlier statement finished, which may change how the server reads it (a backslash in a '...' string, or characters outside ASCII); send it after the earlier results";

/** Whether the analyser's reading has a `'...'` (or N'...') string with a backslash in it. */
export function backslashInPlainString(sql: string): boolean {
  let tokens: ReturnType<typeof scanSync>['tokens'];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return true;
  }
  return tokens.some((t) => t.tokenName === 'SCONST' && t.text.startsWith("'") && t.text.includes('\\'));
}

/** Boolean spellings PostgreSQL's parse_bool takes as true (any unambiguous prefix of true/yes, on, 1). */
const TRUE_SPELLINGS = new Set(['t', 'tr', 'tru', 'true', 'y', 'ye', 'yes', 'on', '1']);

/**
 * A statement anywhere in the text (SET, SET LOCAL, ALTER ROLE/DATABASE/SYSTEM ... SET, a
 * function's SET clause, set_config) that would turn standard_conforming_strings off, or set it to
 * a value not known until run time. RESET and DEFAULT return to the session's startup value, which
 * the server reported and the session follows.
 */
function settingRefusal(sql: string): string | undefined {
  // Settings are changed by SET (a keyword, never escaped) or set_config (maybe spelled U&"..."),
  // both starting a word.
  if (!/\bset|u&/i.test(sql)) return undefined;
  const stmts = parseTree(sql);
  if (typeof stmts === 'string') return undefined;
  let refused = false;
  visit(stmts, (key, node) => {
    // ALTER ROLE/DATABASE/SYSTEM hold theirs unwrapped, as `setstmt`.
    if (key === 'VariableSetStmt' || key === 'setstmt') {
      const set = node as { name?: string; kind?: string; args?: unknown[] };
      if (set.name?.toLowerCase() !== 'standard_conforming_strings') return;
      if (set.kind === 'VAR_SET_DEFAULT' || set.kind === 'VAR_RESET') return;
      if (set.kind !== 'VAR_SET_VALUE' || set.args?.length !== 1 || !isTrueConstant(set.args[0]))
        refused = true;
    } else if (key === 'FuncCall') {
      const call = node as { funcname?: { String?: { sval?: string } }[]; args?: unknown[] };
      const name = call.funcname?.[call.funcname.length - 1]?.String?.sval?.toLowerCase();
      if (name !== 'set_config') return;
      const [nameArg, value] = positionalArgs(call.args ?? [], ['setting_name', 'new_value']);
      const setting = constantText(nameArg);
      // A computed name may be this one (pg_dump's `set_config(name, ...) FROM pg_settings WHERE ...`):
      // refused unless the value is a constant no boolean parse reads as off. A literal name other than
      // this one does not change how text is read.
      if (setting === undefined) {
        const text = constantText(value);
        if (text === undefined || mayReadAsOff(text)) refused = true;
      } else if (setting.toLowerCase() === 'standard_conforming_strings' && !isTrueConstant(value))
        refused = true;
    }
  });
  return refused
    ? "Gatehouse reads SQL as PostgreSQL does with standard_conforming_strings on; turning it off is refused (a backslash in '...' strings would then mean something else to the server). Use E'...' for backslash escapes"
    : undefined;
}

/** Arguments in declaration order, whether passed by position or by name (`setting_name => ...`). */
function positionalArgs(args: readonly unknown[], names: readonly string[]): unknown[] {
  const out: unknown[] = [];
  args.forEach((arg, index) => {
    const named = (arg as { NamedArgExpr?: { name?: string; arg?: unknown } }).NamedArgExpr;
    if (!named) out[index] = arg;
    else {
      const at = names.indexOf(named.name?.toLowerCase() ?? '');
      if (at >= 0) out[at] = named.arg;
    }
  });
  return out;
}

/**
 * Whether PostgreSQL's boolean input could read `text` as false: `false`, `no`, `off`, `0` and their
 * unique prefixes (`f`, `n`, `of`), in any case, with surrounding blanks. Anything else is true or an
 * error, and neither turns the setting off.
 */
function mayReadAsOff(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (t.length === 0) return false;
  return 'false'.startsWith(t) || 'no'.startsWith(t) || (t.length >= 2 && 'off'.startsWith(t)) || t === '0';
}

function isTrueConstant(node: unknown): boolean {
  const text = constantText(node);
  return text !== undefined && TRUE_SPELLINGS.has(text.toLowerCase());
}

/** The text of a string, integer or boolean constant (also cast: `'on'::text`); undefined for anything else. */
function constantText(node: unknown): string | undefined {
  const n = node as {
    A_Const?: { sval?: { sval?: string }; ival?: { ival?: number }; boolval?: { boolval?: boolean } };
    TypeCast?: { arg?: unknown };
  };
  if (n?.TypeCast) return constantText(n.TypeCast.arg);
  const c = n?.A_Const;
  if (!c) return undefined;
  if (c.sval) return c.sval.sval ?? '';
  if (c.ival) return String(c.ival.ival ?? 0);
  if (c.boolval) return c.boolval.boolval ? 'true' : 'false';
  return undefined;
}

function visit(node: unknown, onNode: (key: string, value: unknown) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) visit(item, onNode);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    onNode(key, value);
    visit(value, onNode);
  }
}
