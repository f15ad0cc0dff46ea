/** A column of a table or view in the catalog, as the lineage of an output column names it. */
export interface ColumnRef {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
}

/** A table or view in the catalog. */
export interface TableRef {
  readonly schema: string;
  readonly table: string;
}

/** Where the values of one expression come from. */
export interface Lineage {
  /** Every catalog column whose values flow into this one (views add their own column besides the base column). */
  readonly sources: readonly ColumnRef[];
  /** Relations whose whole rows flow into this one (`SELECT c`, `row_to_json(c)`); their columns are in `sources` too. */
  readonly wholeRows: readonly TableRef[];
  /** False only when the value is a source value passed through unchanged (aliases, subqueries, views, UNION). */
  readonly transformed: boolean;
  /**
   * The value cannot be traced: an unknown function, relation, cursor or construct. Mask it when the
   * statement reads a sensitive relation or `readsUnknown` is set.
   */
  readonly opaque: boolean;
}

/** One output column of a statement, in result order. */
export interface ColumnLineage extends Lineage {
  /** The name PostgreSQL gives the column, as far as it can be told from the text. */
  readonly name: string;
}

/** Where a statement stores values, so a policy can refuse laundering sensitive values into clear ones. */
export type WriteTarget =
  | { readonly kind: 'column'; readonly column: ColumnRef }
  /** A function that stores or publishes its arguments: set_config, setval, pg_notify, unknown functions. */
  | { readonly kind: 'function'; readonly name: string };

export interface WriteLineage extends Lineage {
  readonly target: WriteTarget;
}

/** Session state a statement changes, which later statements of the session depend on. */
export type SessionEffect =
  | { readonly kind: 'view'; readonly view: CatalogViewEntry }
  | {
      readonly kind: 'cursor';
      readonly name: string;
      readonly holdable: boolean;
      readonly lineage: StatementLineage;
    }
  /** CLOSE; a null name is CLOSE ALL. */
  | { readonly kind: 'close-cursor'; readonly name: string | null }
  /** Something ran that may open portals under any name (functions, DO, CALL): no cursor can be trusted. */
  | { readonly kind: 'forget-cursors' }
  /** COMMIT, ROLLBACK or PREPARE TRANSACTION: cursors declared without HOLD are gone. */
  | { readonly kind: 'transaction-end' }
  | { readonly kind: 'prepare'; readonly name: string; readonly statement: PreparedStatement }
  /** DEALLOCATE; a null name is DEALLOCATE ALL. */
  | { readonly kind: 'deallocate'; readonly name: string | null }
  /** SET search_path; null when the new path cannot be told (set_config with a computed value). */
  | { readonly kind: 'search-path'; readonly path: readonly string[] | null }
  /** set_config stored a value in a setting; null name when the setting's name is computed. */
  | { readonly kind: 'setting'; readonly name: string | null; readonly lineage: Lineage }
  /** A function, aggregate or operator was created or renamed: a built-in of that name may now be shadowed. */
  | { readonly kind: 'routine'; readonly name: string };

/** A view definition, from the catalog or created in the session. */
export interface CatalogViewEntry {
  readonly schema: string;
  readonly name: string;
  /** Column names in order; when absent, the names the definition's query gives. */
  readonly columns?: readonly string[];
  /** The view's query, as `pg_get_viewdef` returns it (a SELECT, VALUES or WITH query). */
  readonly definition: string;
}

/** A statement kept for a later EXECUTE: its parse tree, analysed again at EXECUTE time. */
export interface PreparedStatement {
  readonly node: unknown;
}

/** The lineage facts of one statement. */
export interface StatementLineage {
  /** The parse-tree node type: 'SelectStmt', 'FetchStmt', 'ExplainStmt', ... */
  readonly kind: string;
  /**
   * Output columns in order when the statement returns rows (RowDescription, or the COPY data
   * stream for COPY ... TO STDOUT); null when it returns none.
   */
  readonly columns: readonly ColumnLineage[] | null;
  /**
   * False when `columns` may not match the result one to one (a `*` over a relation or function whose
   * columns are unknown): apply the union of all column lineages to every result column.
   */
  readonly exact: boolean;
  /** Every relation the statement reads, through views, subqueries and CTEs. */
  readonly reads: readonly TableRef[];
  /** The statement may read data that is not visible in its text (unknown relations, functions, cursors). */
  readonly readsUnknown: boolean;
  /**
   * Columns that decide which rows come back or in what order: WHERE, JOIN, HAVING, GROUP BY,
   * ORDER BY, DISTINCT ON, window PARTITION/ORDER BY, aggregate FILTER/ORDER BY, LIMIT, EXISTS and IN.
   */
  readonly predicates: Lineage;
  /**
   * Groups of columns that are compared only for equality with each other (GROUP BY, DISTINCT, UNION,
   * JOIN equality): revealing no more than deterministic tokens of them do. Absent: none.
   */
  readonly equalities?: readonly Lineage[];
  /** Columns and functions the statement writes to, with the lineage of what it writes. */
  readonly writes: readonly WriteLineage[];
  /** Session state the statement changes; apply them with `applySessionEffects` once it succeeds. */
  readonly effects: readonly SessionEffect[];
  /** For COPY ... TO STDOUT: how its data stream is laid out, so that masking can rewrite its rows. */
  readonly copyOut?: CopyOut;
}

/** The data stream of a COPY ... TO STDOUT. */
export interface CopyOut {
  /**
   * True only for COPY's default text format with no option that changes its layout (DELIMITER,
   * NULL, HEADER, ENCODING...): rows the proxy can split into fields without doubt.
   */
  readonly plainText: boolean;
  /** Type OID of each output column where the catalog tells it (COPY of a table); undefined otherwise. */
  readonly types: readonly (number | undefined)[];
}

/** One entry per statement in the text, in order. */
export interface LineageResult {
  readonly statements: readonly StatementLineage[];
  /**
   * The text cannot be parsed: a syntax error (PostgreSQL rejects it too) or nesting deeper than the
   * parser's stack. Nothing is known about it, so refuse it.
   */
  readonly parseError: boolean;
}
