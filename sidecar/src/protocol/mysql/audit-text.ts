import { createHash } from 'node:crypto';
import type { QueryText } from '../../sql/normalize.ts';

const MAX_STATEMENT_CHARS = 64 * 1024;

/**
 * A conservative audit text for MySQL: every quoted string (whatever the quote, so also ANSI-quoted
 * identifiers), number, hex and bit literal becomes `?`, comments go, executable comments keep their
 * content, whitespace collapses. It may over-strip; it never lets a literal value through.
 */
export function stripMysqlLiterals(sql: string): string {
  let out = '';
  let i = 0;
  const n = sql.length;
  let space = false;
  const emit = (text: string) => {
    if (space && out.length > 0) out += ' ';
    space = false;
    out += text;
  };
  while (i < n) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      // Backslash escapes and doubled quotes both stay inside; an unterminated string runs to the end.
      i++;
      while (i < n) {
        if (sql[i] === '\\') i += 2;
        else if (sql[i] === ch) {
          if (sql[i + 1] === ch) i += 2;
          else break;
        } else i++;
      }
      i++;
      emit('?');
      continue;
    }
    if (ch === '`') {
      const close = sql.indexOf('`', i + 1);
      const end = close < 0 ? n : close + 1;
      emit(sql.slice(i, end));
      i = end;
      continue;
    }
    if (ch === '#' || (ch === '-' && sql[i + 1] === '-' && /[\s]/.test(sql[i + 2] ?? ' '))) {
      const newline = sql.indexOf('\n', i);
      i = newline < 0 ? n : newline + 1;
      space = true;
      continue;
    }
    if (ch === '/' && sql[i + 1] === '*') {
      if (sql[i + 2] === '!' || (sql[i + 2] === 'M' && sql[i + 3] === '!')) {
        i += sql[i + 2] === '!' ? 3 : 4;
        while (i < n && sql[i]! >= '0' && sql[i]! <= '9') i++;
        space = true;
        continue;
      }
      const close = sql.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
      space = true;
      continue;
    }
    if (ch === '*' && sql[i + 1] === '/') {
      i += 2;
      space = true;
      continue;
    }
    if (/\s/.test(ch)) {
      space = true;
      i++;
      continue;
    }
    if (/[0-9]/.test(ch) || (ch === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      const prev = out[out.length - 1] ?? ' ';
      if (!space && /[A-Za-z0-9_$@]/.test(prev)) {
        // Part of an identifier such as t1.
        out += ch;
        i++;
        continue;
      }
      while (i < n && /[0-9A-Za-z_.]/.test(sql[i]!)) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '+' || sql[i + 1] === '-')) i++;
        i++;
      }
      emit('?');
      continue;
    }
    if (
      (ch === 'x' || ch === 'X' || ch === 'b' || ch === 'B' || ch === 'n' || ch === 'N') &&
      sql[i + 1] === "'"
    ) {
      const prev = out[out.length - 1] ?? ' ';
      if (space || !/[A-Za-z0-9_$@]/.test(prev)) {
        i++;
        continue;
      }
    }
    emit(ch);
    i++;
  }
  return out.length > MAX_STATEMENT_CHARS ? `${out.slice(0, MAX_STATEMENT_CHARS)}…` : out;
}

/** The audit description of one statement text: stripped text and a fingerprint of it. */
export function describeMysqlStatement(sql: string): QueryText {
  const statement = stripMysqlLiterals(sql);
  if (statement === '') return { statement: '', fingerprint: null };
  return { statement, fingerprint: createHash('sha256').update(statement).digest('hex').slice(0, 16) };
}
