/**
 * V8 re-compiles hot WebAssembly with its optimising tier in the background. For libpg-query's parser
 * that compile takes about 600 MB for a second, in the middle of serving traffic: a sidecar that idles
 * at 110 MB would peak at 750 MB. The baseline tier parses about as fast (measured 9.4 µs against
 * 7.7 µs for a pgbench statement), so Gatehouse runs with `node --liftoff-only`. V8 reads the flag only
 * at start-up, so it must be on the command line; this says so when it is not.
 */
export function wasmTieringWarning(): string | undefined {
  if (process.execArgv.includes('--liftoff-only')) return undefined;
  return 'node was started without --liftoff-only: expect a one-time memory peak of about 600 MB when the SQL parser first runs hot (see the README, "Memory")';
}
