import type { CodeCatalog } from '../sql/code-reach.ts';
import type { Policy } from './load-policy.ts';

/** Where a session reads the policy in force; a reload swaps what it returns. */
export type PolicySource = () => Policy | undefined;

/** Where a session reads the database's stored code; undefined while no catalog could be loaded. */
export type CodeSource = () => CodeCatalog | undefined;
