import { assembleFacts, type StatementEntry } from './analyze/assemble-facts.ts';
import type { Finding, StatementFact, StatementFacts } from './analyze/statement-facts.ts';

/**
 * Code stored in the database that a statement runs without saying so: a user function it calls, the
 * triggers, rules, defaults and constraints of a table it writes, the definition of a view it reads.
 * Each unit has facts of its own (what its body does, analysed like a client's statement), and may
 * reach further units (an aggregate's state functions, a trigger's function).
 */
export interface CodeUnit {
  /** Unique per catalog: a cycle (a function calling itself) is followed once per path. */
  readonly id: string;
  /** For the audit record and messages: `function public.gh_d`, `trigger t_audit on public.v`. */
  readonly label: string;
  /** What the body does; its statements' `via` is relative to the unit. */
  facts(): StatementFacts;
  /** Units the unit runs besides what its facts name (an aggregate's functions, a trigger's function). */
  readonly reaches?: () => readonly CodeUnit[];
}

/** How a catalog resolves what a statement names into the stored code it runs. */
export interface CodeCatalog {
  /**
   * The units a call of `name` (as the analyser reports it) may run: every candidate, since overload
   * resolution and search_path are the server's; 'builtin' for a server built-in (judged by the
   * analyser's own rules); undefined for a name the catalog does not know.
   */
  routine(name: string): readonly CodeUnit[] | 'builtin' | undefined;
  /** Units an operator `name` may run (user-defined operators); empty for built-in ones. */
  operator(name: string): readonly CodeUnit[];
  /** Code a cast to the type runs: a domain's constraints, a user-defined cast's function. */
  type?(name: string): readonly CodeUnit[];
  /** Code that runs when the relation is written: triggers, rules, defaults, constraints, index expressions. */
  onWrite(relation: string): readonly CodeUnit[];
  /** Code that runs when the relation is read: a view's definition, row-level security policies. */
  onRead(relation: string): readonly CodeUnit[];
}

export interface ReachedCode {
  /** The statement's facts with the statements of every unit reached added as nested statements. */
  readonly facts: StatementFacts;
  /** Labels of the units reached, in the order first reached: for the audit record. */
  readonly code: readonly string[];
  /** Names called that the catalog does not know: a catalog refresh may tell them. */
  readonly unknown: readonly string[];
}

/**
 * Bodies that run only when called (and are judged again then): names they call that the catalog
 * does not know yet are not held against their creation. An event's body runs unseen, so it is not
 * one of them.
 */
const DEFERRED_BODIES: ReadonlySet<string> = new Set([
  'CREATE FUNCTION',
  'CREATE PROCEDURE',
  'CREATE TRIGGER',
]);

/** How deep code calling code is followed; deeper chains are refused as `dynamic-sql`. */
export const MAX_CODE_DEPTH = 8;
/** Units expanded per statement at most (a call graph that fans out is refused, not walked for long). */
const MAX_UNITS = 256;

/**
 * Adds to `facts` what the stored code its statements reach does, so that a guardrail judges the body
 * of `SELECT gh_d()` as if the client had sent it: the body's statements become nested statements
 * (via `function public.gh_d`), with their classes and findings. A name the catalog does not know, a
 * chain deeper than MAX_CODE_DEPTH, or more than MAX_UNITS units, add a `dynamic-sql` finding: what
 * cannot be seen into is not proven harmless.
 */
export function reachCode(facts: StatementFacts, catalog: CodeCatalog): ReachedCode {
  const code: string[] = [];
  const seenLabels = new Set<string>();
  const unknown = new Set<string>();
  const entries: StatementEntry[] = [];
  let expanded = 0;
  let reachedAny = false;

  const unitsOf = (statement: StatementFact, missing: string[]): CodeUnit[] => {
    const units: CodeUnit[] = [];
    for (const name of statement.functions) {
      const found = catalog.routine(name);
      if (found === 'builtin') continue;
      if (found === undefined) {
        missing.push(name);
        unknown.add(name);
      } else units.push(...found);
    }
    for (const name of statement.operators ?? []) units.push(...catalog.operator(name));
    for (const name of statement.types ?? []) units.push(...(catalog.type?.(name) ?? []));
    for (const table of statement.tablesWritten) units.push(...catalog.onWrite(table));
    for (const table of statement.tablesRead) units.push(...catalog.onRead(table));
    return units;
  };

  /** Pushes the entries of the units `statement` reaches (nested first); findings for it go to `extra`. */
  const follow = (
    statement: StatementFact,
    topLevel: number,
    via: readonly string[],
    path: ReadonlySet<string>,
    extra: Omit<Finding, 'statement'>[],
  ): void => {
    const missing: string[] = [];
    const units = unitsOf(statement, missing);
    // A routine being created may call one created after it: its body is judged again where it runs.
    if (missing.length > 0 && !via.some((label) => DEFERRED_BODIES.has(label)))
      extra.push({
        kind: 'dynamic-sql',
        detail: `it calls ${missing.map((n) => `${n}()`).join(', ')}, which Gatehouse's catalog of the database does not know`,
      });
    expand(units, topLevel, via, path, extra);
  };

  const expand = (
    units: readonly CodeUnit[],
    topLevel: number,
    via: readonly string[],
    path: ReadonlySet<string>,
    extra: Omit<Finding, 'statement'>[],
  ): void => {
    for (const unit of units) {
      if (path.has(unit.id)) continue;
      reachedAny = true;
      if (!seenLabels.has(unit.label)) {
        seenLabels.add(unit.label);
        code.push(unit.label);
      }
      if (path.size >= MAX_CODE_DEPTH || ++expanded > MAX_UNITS) {
        extra.push({
          kind: 'dynamic-sql',
          detail: `it runs ${unit.label} through more stored code than Gatehouse follows`,
        });
        continue;
      }
      const inner = new Set(path).add(unit.id);
      const unitVia = [...via, unit.label];
      for (const body of unit.facts().statements) {
        const own: Omit<Finding, 'statement'>[] = [];
        const bodyVia = [...unitVia, ...body.via];
        follow(body, topLevel, bodyVia, inner, own);
        entries.push({ ...entryOf(body, own), topLevel, via: bodyVia });
      }
      expand(unit.reaches?.() ?? [], topLevel, unitVia, inner, extra);
    }
  };

  const newIndex: number[] = [];
  facts.statements.forEach((statement, index) => {
    const own: Omit<Finding, 'statement'>[] = [];
    follow(statement, statement.topLevel, statement.via, new Set(), own);
    entries.push(entryOf(statement, own));
    newIndex[index] = entries.length - 1;
  });
  if (!reachedAny && unknown.size === 0) return { facts, code, unknown: [] };
  return {
    facts: assembleFacts(entries, {
      ...facts,
      cursors: facts.cursors.map((c) => ({ name: c.name, query: newIndex[c.query] ?? c.query })),
    }),
    code,
    unknown: [...unknown],
  };
}

function entryOf(statement: StatementFact, extra: readonly Omit<Finding, 'statement'>[]): StatementEntry {
  const findings = statement.findings.map(({ statement: _index, ...finding }) => finding);
  const classes =
    extra.length > 0 && !statement.classes.includes('admin')
      ? [...statement.classes, 'admin' as const]
      : statement.classes;
  return { ...statement, classes, findings: [...findings, ...extra] };
}

/** Facts of one call whose code Gatehouse cannot analyse: `dynamic-sql`, and every class it may need. */
export function opaqueCall(label: string, why: string): StatementFacts {
  return opaqueStatement(label, 'CALL', `it runs ${label}, which Gatehouse cannot analyse: ${why}`);
}

/**
 * One statement Gatehouse cannot see into, as facts: an `admin` call with a `dynamic-sql` finding
 * saying why (`detail`), which only a grant of everything lets run.
 */
export function opaqueStatement(label: string, command: string, detail: string): StatementFacts {
  return assembleFacts(
    [
      {
        kind: 'call',
        command,
        summary: label,
        topLevel: 0,
        via: [],
        classes: ['admin'],
        tablesRead: [],
        tablesWritten: [],
        objects: [],
        columnsRead: [],
        columnsWritten: [],
        functions: [],
        findings: [{ kind: 'dynamic-sql', detail }],
      },
    ],
    { parsed: true, statementCount: 1, prepared: [], unresolvedExecutes: [], deallocated: [], cursors: [] },
  );
}

/** Statement kinds that change what stored code exists or where it runs. */
const CODE_CHANGING_KINDS: ReadonlySet<string> = new Set(['create', 'alter', 'drop', 'comment']);

/**
 * Whether the facts hold DDL (nested or not) after which the catalog of stored code may be out of
 * date. Session-private objects (temporary tables and views, which need no `ddl`) do not count: no
 * other session can reach them, and this session's own are judged with their DDL (withPendingCode).
 */
export function changesStoredCode(facts: StatementFacts): boolean {
  return facts.statements.some(
    (s) => CODE_CHANGING_KINDS.has(s.kind) && (s.classes.includes('ddl') || s.classes.includes('admin')),
  );
}

/**
 * The catalog as the session sees it before its DDL is committed (or loaded): `base`, plus the DDL of
 * `pending` texts attached to every name it creates or alters. A CREATE FUNCTION's body counts as a
 * candidate of every call of the function's name; a CREATE TRIGGER, RULE, VIEW, INDEX or POLICY, or
 * an ALTER TABLE, counts as code that runs when its relation is read or written. This over-approximates
 * (the DDL's whole analysis is attached) so that `CREATE OR REPLACE FUNCTION f ... ; SELECT f()` in
 * one text or one transaction is judged by the new body, which no catalog reload can show yet.
 */
export function withPendingCode(base: CodeCatalog, pending: readonly StatementFacts[]): CodeCatalog {
  const byName = new Map<string, CodeUnit[]>();
  let count = 0;
  for (const facts of pending) {
    for (const s of facts.statements) {
      if (s.kind !== 'create' && s.kind !== 'alter') continue;
      const names = new Set([...s.objects, ...s.tablesWritten].map(lastPart));
      if (names.size === 0) continue;
      const id = `pending:${count++}`;
      const label = `uncommitted ${s.summary}`;
      const unit: CodeUnit = { id, label, facts: () => pendingFacts(facts, s.topLevel) };
      for (const name of names) byName.set(name, [...(byName.get(name) ?? []), unit]);
    }
  }
  if (byName.size === 0) return base;
  const extra = (name: string) => byName.get(lastPart(name)) ?? [];
  return {
    routine(name) {
      const found = base.routine(name);
      const more = extra(name);
      if (more.length === 0) return found;
      return typeof found === 'object' ? [...found, ...more] : more;
    },
    operator: (name) => [...base.operator(name), ...extra(name)],
    type: (name) => [...(base.type?.(name) ?? []), ...extra(name)],
    onWrite: (relation) => [...base.onWrite(relation), ...extra(relation)],
    onRead: (relation) => [...base.onRead(relation), ...extra(relation)],
  };
}

function lastPart(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** The statements of one top-level DDL statement, as code that runs: without the DDL class. */
function pendingFacts(facts: StatementFacts, topLevel: number): StatementFacts {
  const entries: StatementEntry[] = facts.statements
    .filter((s) => s.topLevel === topLevel)
    .map((s) => {
      const { findings, ...rest } = s;
      return {
        ...rest,
        topLevel: 0,
        classes: CODE_CHANGING_KINDS.has(s.kind) ? s.classes.filter((c) => c !== 'ddl') : s.classes,
        findings: findings.map(({ statement: _i, ...f }) => f),
      };
    });
  return assembleFacts(entries, {
    parsed: true,
    statementCount: 1,
    prepared: [],
    unresolvedExecutes: [],
    deallocated: [],
    cursors: [],
  });
}
