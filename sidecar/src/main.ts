#!/usr/bin/env -S node --liftoff-only --max-semi-space-size=8
// No static imports here: an older Node must reach the version check below instead of failing
// inside a dependency with an error that names neither Gatehouse nor Node.
const REQUIRED_NODE_MAJOR = 24;

const major = Number(process.versions.node.split('.')[0]);
if (major < REQUIRED_NODE_MAJOR) {
  process.stderr.write(
    `gatehouse: needs Node.js ${REQUIRED_NODE_MAJOR} or later, but ${process.execPath} is Node.js ${process.versions.node}; ` +
      `install Node.js ${REQUIRED_NODE_MAJOR} (https://nodejs.org) and put it first on PATH\n`,
  );
  process.exitCode = 2;
} else {
  const { runAsProcess } = await import('./cli/run-cli.ts');
  runAsProcess(process.argv.slice(2));
}
