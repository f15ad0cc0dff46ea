import { render, type SqlNode, type SqlPart, size } from './statement-tree.ts';

/** Every tree one step smaller than `root`: an optional clause dropped, or an expression replaced by a descendant expression. */
export function shrinkSteps(root: SqlNode): SqlNode[] {
  const out: SqlNode[] = [];
  const visit = (node: SqlNode, rebuild: (replacement: SqlNode | null) => SqlNode) => {
    if (node.optional) out.push(rebuild(null));
    if (node.kind === 'expr') {
      for (const inner of descendantExpressions(node)) out.push(rebuild(inner));
    }
    node.parts.forEach((part, i) => {
      if (typeof part === 'string') return;
      visit(part, (replacement) =>
        rebuild({
          ...node,
          parts: replacement === null ? withoutPart(node.parts, i) : node.parts.with(i, replacement),
        }),
      );
    });
  };
  visit(root, (replacement) => replacement ?? root);
  // Largest cuts first: a leak usually needs a small core, so big steps get there in few tries.
  return out.filter((candidate) => candidate !== root).sort((a, b) => size(a) - size(b));
}

function withoutPart(parts: readonly SqlPart[], index: number): SqlPart[] {
  return parts.filter((_, i) => i !== index);
}

function descendantExpressions(node: SqlNode): SqlNode[] {
  const found: SqlNode[] = [];
  const walk = (part: SqlPart) => {
    if (typeof part === 'string') return;
    if (part.kind === 'expr') found.push(part);
    // Inside a subquery an expression names the subquery's own tables; lifting it out would only fail.
    if (part.kind !== 'query') part.parts.forEach(walk);
  };
  node.parts.forEach(walk);
  return found;
}

/**
 * Greedy shrinking: takes the first one-step-smaller statement that still `fails` and starts again
 * from it, until no step keeps the failure or `budget` checks are spent. Returns the smallest found.
 */
export async function minimizeStatement(
  root: SqlNode,
  fails: (sql: string) => Promise<boolean>,
  budget = 400,
): Promise<SqlNode> {
  let current = root;
  let checks = 0;
  const tried = new Set<string>([render(root)]);
  for (;;) {
    let smaller: SqlNode | undefined;
    for (const candidate of shrinkSteps(current)) {
      const sql = render(candidate);
      if (tried.has(sql)) continue;
      tried.add(sql);
      if (++checks > budget) return current;
      if (await fails(sql)) {
        smaller = candidate;
        break;
      }
    }
    if (smaller === undefined) return current;
    current = smaller;
  }
}
