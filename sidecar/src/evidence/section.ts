/**
 * What every section file holds besides its rows: what it is, what it shows and what it does not,
 * and how many rows of each kind it has (the counts the controls mapping cites).
 */
export interface SectionHeader {
  readonly section: string;
  readonly title: string;
  readonly period: { readonly from: string; readonly to: string };
  readonly shows: string;
  readonly doesNotShow: string;
  readonly counts: Readonly<Record<string, number>>;
}

/** The file a section is written to. */
export function sectionFile(section: string): string {
  return `${section}.json`;
}
