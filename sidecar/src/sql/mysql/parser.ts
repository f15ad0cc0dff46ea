import { init, parse } from '@guanmingchiu/sqlparser-ts';

/** A node of datafusion-sqlparser's AST as JSON: enum variants are single-key objects. */
export type MysqlAst = Record<string, unknown>;

let loaded = false;

/** Loads the MySQL parser's WebAssembly module. Call once at startup, before analysing MySQL text. */
export async function loadMysqlParser(): Promise<void> {
  if (loaded) return;
  await init();
  loaded = true;
}

/**
 * Parses one canonical statement (lexer.ts) with the MySQL dialect; null when the parser rejects it
 * or it is not exactly one statement. The text never holds `;`, so one statement is all it can be.
 */
export function parseMysqlStatement(canonical: string): MysqlAst | null {
  if (!loaded) throw new Error('loadMysqlParser() must finish before MySQL text is analysed');
  try {
    const statements = parse(canonical, 'mysql') as unknown as MysqlAst[];
    return statements.length === 1 ? statements[0]! : null;
  } catch (error) {
    // Deep nesting exhausts the parser's stack: nothing is known about that text.
    if (error instanceof Error) return null;
    throw error;
  }
}
