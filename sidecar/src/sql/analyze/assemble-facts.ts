import type {
  Finding,
  PreparedStatement,
  StatementClass,
  StatementFact,
  StatementFacts,
  StatementKind,
} from './statement-facts.ts';

/** A statement before its findings know their index. */
export interface StatementEntry extends Omit<StatementFact, 'findings'> {
  readonly findings: readonly Omit<Finding, 'statement'>[];
}

export interface FactsMeta {
  readonly parsed: boolean;
  readonly statementCount: number;
  readonly prepared: readonly PreparedStatement[];
  readonly unresolvedExecutes: readonly string[];
  readonly deallocated: readonly string[];
  readonly cursors: readonly { readonly name: string; readonly query: number }[];
}

const CLASS_ORDER: readonly StatementClass[] = ['read', 'write', 'ddl', 'admin'];

/** Freezes entries into StatementFacts: indexes findings, adds unions and the multi-statement finding. */
export function assembleFacts(entries: readonly StatementEntry[], meta: FactsMeta): StatementFacts {
  const statements: StatementFact[] = entries.map((entry, index) =>
    Object.freeze({
      ...entry,
      findings: Object.freeze(entry.findings.map((f) => Object.freeze({ ...f, statement: index }))),
    }),
  );
  const findings: Finding[] = statements.flatMap((s) => s.findings);
  const multi = meta.statementCount > 1 ? multiStatementFinding(statements) : undefined;
  if (multi) findings.push(multi);
  const classes = new Set<StatementClass>();
  const kinds = new Set<StatementKind>();
  for (const s of statements) {
    for (const c of s.classes) classes.add(c);
    kinds.add(s.kind);
  }
  return Object.freeze({
    parsed: meta.parsed,
    statementCount: meta.statementCount,
    statements: Object.freeze(statements),
    classes: Object.freeze(CLASS_ORDER.filter((c) => classes.has(c))),
    kinds: Object.freeze([...kinds]),
    tablesRead: union(statements, (s) => s.tablesRead),
    tablesWritten: union(statements, (s) => s.tablesWritten),
    functions: union(statements, (s) => s.functions),
    findings: Object.freeze(findings),
    prepared: Object.freeze([...meta.prepared]),
    unresolvedExecutes: Object.freeze([...meta.unresolvedExecutes]),
    deallocated: Object.freeze([...meta.deallocated]),
    cursors: Object.freeze(meta.cursors.map((c) => Object.freeze({ ...c }))),
  });
}

function union(statements: readonly StatementFact[], pick: (s: StatementFact) => readonly string[]) {
  // Statement arrays are frozen already; one statement needs no copy.
  if (statements.length === 1) return pick(statements[0]!);
  const out = new Set<string>();
  for (const s of statements) for (const item of pick(s)) out.add(item);
  return Object.freeze([...out]);
}

/**
 * Several top-level statements in one message, at least two of which do something (read or change
 * data or schema: transaction control and plain session settings do not count) and at least one of
 * which changes something. Stacking is how injected SQL rides along with an application's query;
 * `BEGIN; UPDATE ...; COMMIT`, several reads, or a cursor's DECLARE and FETCH are left alone.
 */
function multiStatementFinding(statements: readonly StatementFact[]): Finding | undefined {
  const byTopLevel = new Map<number, { classes: Set<StatementClass>; index: number; command: string }>();
  statements.forEach((s, index) => {
    let entry = byTopLevel.get(s.topLevel);
    if (!entry) {
      entry = { classes: new Set(), index, command: s.command };
      byTopLevel.set(s.topLevel, entry);
    }
    for (const c of s.classes) entry.classes.add(c);
    if (s.via.length === 0) {
      entry.index = index;
      entry.command = s.command;
    }
  });
  const doing = [...byTopLevel.values()].filter((e) => e.classes.size > 0);
  if (doing.length < 2) return undefined;
  const changing = doing.find((e) => [...e.classes].some((c) => c !== 'read'));
  if (!changing) return undefined;
  return Object.freeze({
    kind: 'multi-statement' as const,
    statement: changing.index,
    detail: `the message holds ${byTopLevel.size} statements (${[...byTopLevel.values()].map((e) => e.command).join('; ')}), and stacked statements are how injected SQL rides along`,
  });
}

/**
 * Judges EXECUTE of prepared statements prepared in earlier messages: `lookup` returns what the
 * session stored for a name (the `prepared` facts of the text that PREPAREd it). Names it does not
 * know stay unresolved, and their `unknown-statement` finding stays.
 */
export function resolveExecutes(
  facts: StatementFacts,
  lookup: (name: string) => StatementFacts | undefined,
): StatementFacts {
  if (facts.unresolvedExecutes.length === 0) return facts;
  const entries: StatementEntry[] = [];
  const newIndex: number[] = [];
  const stillUnresolved: string[] = [];
  facts.statements.forEach((s, index) => {
    const name = s.executes;
    const known = name !== undefined && facts.unresolvedExecutes.includes(name) ? lookup(name) : undefined;
    if (name !== undefined && facts.unresolvedExecutes.includes(name) && !known) stillUnresolved.push(name);
    if (known) {
      for (const inner of known.statements) {
        entries.push({
          ...entryOf(inner),
          topLevel: s.topLevel,
          via: Object.freeze([...s.via, 'EXECUTE', ...inner.via]),
        });
      }
      entries.push({
        ...entryOf(s),
        findings: entryOf(s).findings.filter((f) => f.kind !== 'unknown-statement'),
      });
    } else entries.push(entryOf(s));
    newIndex[index] = entries.length - 1;
  });
  return assembleFacts(entries, {
    ...facts,
    unresolvedExecutes: [...new Set(stillUnresolved)],
    cursors: facts.cursors.map((c) => ({ name: c.name, query: newIndex[c.query] ?? c.query })),
  });
}

function entryOf(statement: StatementFact): StatementEntry {
  return {
    ...statement,
    findings: statement.findings.map(({ statement: _index, ...finding }) => finding),
  };
}
