import type { CatalogQuery } from '../catalog-loader.ts';
import { type CodeCatalog, type CodeUnit, opaqueCall, opaqueStatement } from '../code-reach.ts';
import { analyzeStatement } from './analyze-statement.ts';
import { assembleFacts, type StatementEntry } from './assemble-facts.ts';
import type { StatementFact, StatementFacts } from './statement-facts.ts';

/**
 * PostgreSQL's first OID for objects made after initdb (FirstNormalObjectId): below it, the server's
 * built-ins, judged by the analyser's own rules; at or above it, code somebody created.
 */
export const FIRST_NORMAL_OID = 16384;

/**
 * Everything that can run stored code, in one round trip: every routine (built-ins only by OID and
 * name; user ones with their language, volatility and definition, aggregates with their support
 * functions), the triggers and non-view rules of every relation, user views' definitions, the user
 * functions a relation's defaults, constraints (its own and its columns' domains'), index
 * expressions and row-level security policies depend on, user-defined operators, and the user
 * functions a cast to a type runs (its domain constraints, user-defined casts to it), and the foreign
 * keys whose ON DELETE/UPDATE actions write a referencing table (whose triggers then fire).
 */
export const CODE_CATALOG_SQL = `
SELECT p.oid::bigint, n.nspname, p.proname, p.prokind::text, l.lanname, p.provolatile::text,
       CASE WHEN p.oid >= ${FIRST_NORMAL_OID} AND p.prokind <> 'a' AND l.lanname NOT IN ('c', 'internal')
            THEN pg_get_functiondef(p.oid) END,
       CASE WHEN p.prokind = 'a' THEN (
         SELECT concat_ws(',', NULLIF(a.aggtransfn::oid, 0), NULLIF(a.aggfinalfn::oid, 0),
                NULLIF(a.aggcombinefn::oid, 0), NULLIF(a.aggserialfn::oid, 0),
                NULLIF(a.aggdeserialfn::oid, 0), NULLIF(a.aggmtransfn::oid, 0),
                NULLIF(a.aggminvtransfn::oid, 0), NULLIF(a.aggmfinalfn::oid, 0))
           FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang;
SELECT n.nspname, c.relname, t.tgname, t.tgfoid::bigint
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT t.tgisinternal AND t.tgenabled <> 'D';
SELECT n.nspname, c.relname, r.rulename, pg_get_ruledef(r.oid)
  FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE r.rulename <> '_RETURN' AND r.ev_enabled <> 'D';
SELECT n.nspname, c.relname, pg_get_viewdef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema');
SELECT n.nspname, c.relname, x.fn::bigint, x.on_read
  FROM (SELECT d.refobjid AS fn, a.adrelid AS rel, false AS on_read
          FROM pg_depend d JOIN pg_attrdef a ON d.classid = 'pg_attrdef'::regclass AND a.oid = d.objid
         WHERE d.refclassid = 'pg_proc'::regclass
        UNION ALL
        SELECT d.refobjid, co.conrelid, false
          FROM pg_depend d JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
         WHERE d.refclassid = 'pg_proc'::regclass AND co.conrelid <> 0
        UNION ALL
        SELECT d.refobjid, at.attrelid, false
          FROM pg_depend d JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
          JOIN pg_attribute at ON at.atttypid = co.contypid AND at.attnum > 0 AND NOT at.attisdropped
         WHERE d.refclassid = 'pg_proc'::regclass AND co.contypid <> 0
        UNION ALL
        SELECT d.refobjid, i.indrelid, false
          FROM pg_depend d JOIN pg_index i ON d.classid = 'pg_class'::regclass AND i.indexrelid = d.objid
         WHERE d.refclassid = 'pg_proc'::regclass
        UNION ALL
        SELECT d.refobjid, po.polrelid, true
          FROM pg_depend d JOIN pg_policy po ON d.classid = 'pg_policy'::regclass AND po.oid = d.objid
         WHERE d.refclassid = 'pg_proc'::regclass) x
  JOIN pg_class c ON c.oid = x.rel JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE x.fn >= ${FIRST_NORMAL_OID};
SELECT o.oprname, o.oprcode::oid::bigint FROM pg_operator o WHERE o.oid >= ${FIRST_NORMAL_OID};
SELECT t.typname, x.fn::bigint
  FROM (SELECT co.contypid AS typ, d.refobjid AS fn
          FROM pg_depend d JOIN pg_constraint co ON d.classid = 'pg_constraint'::regclass AND co.oid = d.objid
         WHERE d.refclassid = 'pg_proc'::regclass AND co.contypid <> 0
        UNION ALL
        SELECT c.casttarget, c.castfunc FROM pg_cast c WHERE c.castfunc <> 0) x
  JOIN pg_type t ON t.oid = x.typ
 WHERE x.fn >= ${FIRST_NORMAL_OID};
SELECT pn.nspname, p.relname, cn.nspname, c.relname
  FROM pg_constraint co
  JOIN pg_class p ON p.oid = co.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
  JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
 WHERE co.contype = 'f' AND (co.confdeltype IN ('c', 'n', 'd') OR co.confupdtype IN ('c', 'n', 'd'));
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'f';`;

type Rows = (string | null)[][];

interface RoutineRow {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly language: string;
  readonly volatility: string;
  readonly definition: string | null;
  readonly components: readonly number[];
}

/** The PostgreSQL catalog of stored code, with what fast-path calls need (routines by OID). */
export interface PgCodeCatalog extends CodeCatalog {
  /** A fast-path FunctionCall's target by OID, or undefined when the catalog does not know it. */
  byOid(oid: number): { readonly schema: string; readonly name: string } | undefined;
}

export async function loadPgCodeCatalog(query: CatalogQuery): Promise<PgCodeCatalog> {
  const [
    routines = [],
    triggers = [],
    rules = [],
    views = [],
    implicit = [],
    operators = [],
    casts = [],
    cascades = [],
    foreign = [],
  ] = await query(CODE_CATALOG_SQL);
  return buildPgCodeCatalog({
    routines,
    triggers,
    rules,
    views,
    implicit,
    operators,
    casts,
    cascades,
    foreign,
  });
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);
const EMPTY: StatementFacts = assembleFacts([], {
  parsed: true,
  statementCount: 0,
  prepared: [],
  unresolvedExecutes: [],
  deallocated: [],
  cursors: [],
});

export function buildPgCodeCatalog(rows: {
  routines: Rows;
  triggers: Rows;
  rules: Rows;
  views: Rows;
  implicit: Rows;
  operators: Rows;
  casts?: Rows;
  cascades?: Rows;
  /** Foreign tables (schema, name): writing one changes rows on another server. */
  foreign?: Rows;
}): PgCodeCatalog {
  const builtinNames = new Set<string>();
  const builtinByOid = new Map<number, { schema: string; name: string }>();
  const userByOid = new Map<number, RoutineRow>();
  const userByName = new Map<string, RoutineRow[]>();
  for (const [oid, schema, name, kind, language, volatility, definition, components] of rows.routines) {
    const id = Number(oid);
    if (id < FIRST_NORMAL_OID) {
      builtinNames.add(name!);
      builtinByOid.set(id, { schema: schema!, name: name! });
      continue;
    }
    const routine: RoutineRow = {
      oid: id,
      schema: schema!,
      name: name!,
      kind: kind!,
      language: language!,
      volatility: volatility!,
      definition: definition ?? null,
      components: components ? components.split(',').map(Number) : [],
    };
    userByOid.set(id, routine);
    userByName.set(name!, [...(userByName.get(name!) ?? []), routine]);
  }

  const units = new Map<string, CodeUnit>();
  const once = (id: string, make: () => CodeUnit): CodeUnit => {
    let unit = units.get(id);
    if (!unit) {
      unit = make();
      units.set(id, unit);
    }
    return unit;
  };

  const routineUnit = (routine: RoutineRow): CodeUnit =>
    once(`routine:${routine.oid}`, () => {
      const label = `${routine.kind === 'p' ? 'procedure' : routine.kind === 'a' ? 'aggregate' : 'function'} ${routine.schema}.${routine.name}`;
      return {
        id: `routine:${routine.oid}`,
        label,
        facts: lazy(() => routineFacts(routine, label)),
        ...(routine.components.length > 0 && {
          reaches: () => routine.components.flatMap((oid) => oidUnits(oid)),
        }),
      };
    });
  const oidUnits = (oid: number): CodeUnit[] => {
    const routine = userByOid.get(oid);
    return routine ? [routineUnit(routine)] : [];
  };

  const relations = new RelationIndex();
  const onWrite = new Map<string, (() => CodeUnit)[]>();
  const onRead = new Map<string, (() => CodeUnit)[]>();
  const add = (map: Map<string, (() => CodeUnit)[]>, key: string, unit: () => CodeUnit) => {
    map.set(key, [...(map.get(key) ?? []), unit]);
  };

  for (const [schema, table, name, fn] of rows.triggers) {
    const key = relations.add(schema!, table!);
    const id = `trigger:${key}:${name}`;
    add(onWrite, key, () =>
      once(id, () => ({
        id,
        label: `trigger ${name} on ${schema}.${table}`,
        facts: () => EMPTY,
        reaches: () => oidUnitsOrUnknown(Number(fn)),
      })),
    );
  }
  for (const [schema, table, name, definition] of rows.rules) {
    const key = relations.add(schema!, table!);
    const id = `rule:${key}:${name}`;
    const label = `rule ${name} on ${schema}.${table}`;
    add(onWrite, key, () =>
      once(id, () => ({ id, label, facts: lazy(() => nestedFacts(definition ?? '', label)) })),
    );
  }
  const viewReads = new Map<string, () => StatementFacts>();
  for (const [schema, view, definition] of rows.views) {
    const key = relations.add(schema!, view!);
    const id = `view:${key}`;
    const label = `view ${schema}.${view}`;
    const facts = lazy(() => analyzeStatement(definition ?? ''));
    viewReads.set(key, facts);
    add(onRead, key, () => once(id, () => ({ id, label, facts })));
  }
  for (const [schema, table, fn, onReadToo] of rows.implicit) {
    const key = relations.add(schema!, table!);
    for (const unit of [() => oidUnitsOrUnknown(Number(fn))[0]!]) {
      add(onWrite, key, unit);
      if (onReadToo === 't') add(onRead, key, unit);
    }
  }
  const castUnits = new Map<string, number[]>();
  for (const [type, fn] of rows.casts ?? [])
    castUnits.set(type!, [...(castUnits.get(type!) ?? []), Number(fn)]);
  const operatorUnits = new Map<string, number[]>();
  for (const [name, fn] of rows.operators)
    operatorUnits.set(name!, [...(operatorUnits.get(name!) ?? []), Number(fn)]);

  /** A function OID the routines list misses (dropped meanwhile): opaque, never trusted. */
  const oidUnitsOrUnknown = (oid: number): CodeUnit[] => {
    const found = oidUnits(oid);
    if (found.length > 0 || oid < FIRST_NORMAL_OID) return found;
    const id = `missing:${oid}`;
    return [
      once(id, () => ({
        id,
        label: `function ${oid}`,
        facts: () => opaqueCall(`function ${oid}`, 'its definition could not be read'),
      })),
    ];
  };

  // A foreign table's rows live on another server: what a write does there (its triggers, how many rows
  // it changes) is not seen, nor counted by this database's statistics.
  for (const [schema, table] of rows.foreign ?? []) {
    const key = relations.add(schema!, table!);
    const id = `foreign:${key}`;
    const label = `foreign table ${schema}.${table}`;
    add(onWrite, key, () => once(id, () => ({ id, label, facts: () => foreignWrite(label) })));
  }

  // Referenced table → tables its foreign keys' CASCADE / SET NULL / SET DEFAULT actions write.
  const cascadesTo = new Map<string, string[]>();
  for (const [schema, table, childSchema, child] of rows.cascades ?? []) {
    const key = relations.add(schema!, table!);
    relations.add(childSchema!, child!);
    cascadesTo.set(key, [...(cascadesTo.get(key) ?? []), `${childSchema}.${child}`]);
  }

  const writeUnits = (relation: string, seen: Set<string>): CodeUnit[] => {
    const out: CodeUnit[] = [];
    for (const key of relations.resolve(relation)) {
      if (seen.has(key)) continue;
      seen.add(key);
      for (const make of onWrite.get(key) ?? []) out.push(make());
      // Writing through a view writes the tables it reads (auto-updatable views): their code runs too.
      const view = viewReads.get(key);
      if (view) for (const base of view().tablesRead) out.push(...writeUnits(base, seen));
      for (const child of cascadesTo.get(key) ?? []) out.push(...writeUnits(child, seen));
    }
    return out;
  };

  return {
    routine(name) {
      const parts = name.split('.');
      const fn = parts.at(-1) ?? '';
      const schema = parts.length > 1 ? parts.at(-2) : undefined;
      const candidates = (userByName.get(fn) ?? []).filter((r) => schemaMatches(schema, r.schema));
      if (candidates.length > 0) return candidates.map(routineUnit);
      if (builtinNames.has(fn) && (schema === undefined || SYSTEM_SCHEMAS.has(schema))) return 'builtin';
      return undefined;
    },
    operator(name) {
      const op = name.slice(name.lastIndexOf('.') + 1);
      return (operatorUnits.get(op) ?? []).flatMap((oid) => oidUnitsOrUnknown(oid));
    },
    type(name) {
      const type = name.slice(name.lastIndexOf('.') + 1);
      return (castUnits.get(type) ?? []).flatMap((oid) => oidUnitsOrUnknown(oid));
    },
    onWrite(relation) {
      return writeUnits(relation, new Set());
    },
    onRead(relation) {
      return relations.resolve(relation).flatMap((key) => (onRead.get(key) ?? []).map((make) => make()));
    },
    byOid(oid) {
      return builtinByOid.get(oid) ?? userByOid.get(oid);
    },
  };
}

function schemaMatches(written: string | undefined, actual: string): boolean {
  if (written === undefined) return true;
  // pg_temp names the session's own temporary schema, pg_temp_N.
  return written === actual || (written === 'pg_temp' && actual.startsWith('pg_temp_'));
}

/** Relations by `schema\0name`, found from a name as written (qualified or not: any schema then). */
class RelationIndex {
  private readonly byName = new Map<string, Set<string>>();

  add(schema: string, name: string): string {
    const key = `${schema}\u0000${name}`;
    let keys = this.byName.get(name);
    if (!keys) {
      keys = new Set();
      this.byName.set(name, keys);
    }
    keys.add(key);
    return key;
  }

  resolve(written: string): string[] {
    const parts = written.split('.');
    const name = parts.at(-1) ?? '';
    const schema = parts.length > 1 ? parts.at(-2) : undefined;
    return [...(this.byName.get(name) ?? [])].filter(
      (key) => schema === undefined || schemaMatches(schema, key.slice(0, key.indexOf('\u0000'))),
    );
  }
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= make();
    return value;
  };
}

/**
 * What a call of a user routine does. C and internal code (only a superuser can install it) is
 * trusted as far as its declared volatility: IMMUTABLE and STABLE are taken at their word, VOLATILE
 * is opaque. SQL and PL/pgSQL bodies are analysed like a client's text (the CREATE statement that
 * pg_get_functiondef prints); its findings (SECURITY DEFINER, opaque languages, EXECUTE of built
 * strings) stay with the call, the DDL class it needs to create does not.
 */
function routineFacts(routine: RoutineRow, label: string): StatementFacts {
  if (routine.kind === 'a') return EMPTY;
  if (routine.language === 'c' || routine.language === 'internal') {
    return routine.volatility === 'v'
      ? opaqueCall(label, `it is VOLATILE code in language ${routine.language}`)
      : EMPTY;
  }
  if (routine.definition === null) return opaqueCall(label, 'its definition could not be read');
  const facts = analyzeStatement(routine.definition);
  if (!facts.parsed) return opaqueCall(label, 'its definition does not parse');
  const entries: StatementEntry[] = facts.statements.map((s) =>
    s.via.length === 0 ? callEntry(s, label) : relative(s),
  );
  return assembleFacts(entries, { ...facts, prepared: [], unresolvedExecutes: [], cursors: [] });
}

/** The statements nested in a CREATE RULE (its actions), relative to the rule. */
function nestedFacts(definition: string, label: string): StatementFacts {
  const facts = analyzeStatement(definition);
  if (!facts.parsed) return opaqueCall(label, 'its definition does not parse');
  const entries = facts.statements.filter((s) => s.via.length > 0).map(relative);
  return assembleFacts(entries, { ...facts, prepared: [], unresolvedExecutes: [], cursors: [] });
}

function relative(statement: StatementFact): StatementEntry {
  return { ...withoutIndexes(statement), via: statement.via.slice(1) };
}

/** The CREATE FUNCTION statement as the call it stands for: its findings and non-DDL classes. */
function callEntry(statement: StatementFact, label: string): StatementEntry {
  return {
    ...withoutIndexes(statement),
    kind: 'call',
    command: 'CALL',
    summary: label,
    classes: statement.classes.filter((c) => c !== 'ddl'),
    objects: [],
  };
}

function withoutIndexes(statement: StatementFact): StatementEntry {
  return { ...statement, findings: statement.findings.map(({ statement: _i, ...f }) => f) };
}

/** The command of the statement a write to a foreign table reaches (see row-limits.ts uncountableChange). */
export const FOREIGN_WRITE = 'FOREIGN TABLE WRITE';

/** A write to a foreign table, as code Gatehouse cannot see into: it runs on another server. */
function foreignWrite(label: string): StatementFacts {
  return opaqueStatement(
    label,
    FOREIGN_WRITE,
    `it writes ${label}, whose rows and code are on another server`,
  );
}
