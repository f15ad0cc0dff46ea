/**
 * What a masking plan was made under, for both protocols: the catalog lineage read (PostgreSQL's
 * proxy-wide snapshot, MySQL's session catalog with the views in force) and the masking settings in
 * force. A plan kept past its statement (a prepared statement's, made at prepare and used at every
 * execution) may be used only while both are still the ones in force and no DDL through the proxy has
 * outdated the catalog: a view redefined since, or a table replaced by a view, would otherwise let a
 * column the old plan left clear carry masked values.
 *
 * Both are immutable objects that a catalog reload or a policy change replaces, so the check on each
 * execution is two identity compares and a flag, and a plan is made again only after a change.
 */
export interface PlanBasis {
  /** The catalog the plan traced against; undefined when there was none (everything was masked). */
  readonly catalog: object | undefined;
  /** The masking settings it was planned with. */
  readonly settings: object;
}

/** Whether a kept plan may still be used: the catalog and masking in force now are the ones it was made under. */
export function planInForce(
  planned: PlanBasis,
  catalog: object | undefined,
  settings: object | undefined,
  outdated: boolean,
): boolean {
  return !outdated && planned.catalog === catalog && planned.settings === settings;
}
