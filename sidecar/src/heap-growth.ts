import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past its live size before the next full collection. By
 * default the factor reaches 4 when the heap limit is large (a quarter of the machine's memory unless a
 * container limits it), and a proxy promotes much short-lived per-statement data (everything that
 * waits on a server round trip outlives two scavenges): under `npm run bench` the old generation
 * climbed from 27 MB live to 108 MB before a full collection, and the peak RSS stood about 80 MB over
 * idle. At 1.5 the peak stands about 40 MB over idle, for a full collection every second or so of a
 * busy proxy, which on a heap of this size is mostly concurrent marking.
 */
export const HEAP_GROWING_PERCENT = 50;

/** The flag as a user may spell it on the command line or in NODE_OPTIONS (V8 takes - and _ alike). */
const USER_SETTING = /^--heap[-_]growing[-_]percent(=|$)/;

/**
 * Sets the growing factor unless the user chose one (`node --heap-growing-percent=N`, or NODE_OPTIONS).
 * V8 reads this flag at every collection, so setting it once the process runs takes effect; the
 * young generation's size (`--max-semi-space-size`) is read only at start and stays on the command line.
 */
export function limitHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): boolean {
  if (userChoseHeapGrowth(execArgv, nodeOptions)) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}

export function userChoseHeapGrowth(execArgv: readonly string[], nodeOptions: string): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => USER_SETTING.test(arg));
}
