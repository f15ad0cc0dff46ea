import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MYSQL_TARGET_NAMES } from './mysql-bench.ts';
import { STAGE_KINDS } from './stages.ts';
import { TARGET_NAMES } from './target.ts';

const README = readFileSync(join(import.meta.dirname, 'README.md'), 'utf8');
const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight'];

/** The section of the README from a heading-like marker to the next `## ` heading. */
function section(start: string): string {
  const from = README.indexOf(start);
  expect(from, `README section starting with ${start}`).toBeGreaterThanOrEqual(0);
  const next = README.indexOf('\n## ', from + start.length);
  return README.slice(from, next === -1 ? undefined : next);
}

describe('the benchmark README describes the targets the benchmark runs', () => {
  it.each([
    { protocol: 'PostgreSQL', text: () => section('## What runs'), names: TARGET_NAMES },
    { protocol: 'MySQL', text: () => section('## MySQL rows'), names: MYSQL_TARGET_NAMES },
  ])('$protocol: every target named, and counted right', ({ text, names }) => {
    const body = text();
    for (const name of names) expect(body).toContain(`\`${name}\``);
    const counted = /\b(\w+) targets\b/.exec(body)?.[1]?.toLowerCase();
    expect(counted).toBe(NUMBER_WORDS[names.length]);
  });

  it('describes every stage whose cost the benchmark measures', () => {
    const body = section('## Cost of each stage');
    for (const kind of STAGE_KINDS) expect(body).toContain(`\`${kind}`);
  });

  it('speaks of the project goals, not of an issue', () => {
    expect(README).not.toMatch(/\bissue'?s?\b/i);
  });
});
