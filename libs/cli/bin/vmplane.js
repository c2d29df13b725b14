#!/usr/bin/env node
// The `vmplane` command (package.json "bin"): runs the compiled CLI from dist/.
// Written by hand, in plain JavaScript so it runs before anything is built. When dist/
// is missing or older than the CLI's sources (a fresh clone after `npm ci`, or after a
// pull), it builds first with `npm run build`, its output on stderr so stdout stays clean.
'use strict';
const { existsSync, readdirSync, statSync, writeFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..', '..', '..');
const entry = join(root, 'dist', 'libs', 'cli', 'src', 'main.js');
const stamp = join(root, 'dist', 'libs', 'cli', '.built');
const sources = [join(root, 'libs', 'cli', 'src'), join(root, 'libs', 'client', 'src')];

function newest(dir) {
  let latest = 0;
  if (!existsSync(dir)) return latest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path));
    else if (!entry.name.endsWith('.spec.ts')) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

// Built when the outputs (or the stamp this file leaves after a build of its own) are newer
// than every source. The stamp covers sources without output, like the generated schema.d.ts.
function stale() {
  if (!existsSync(entry)) return true;
  const outputs = [join(root, 'dist', 'libs', 'cli'), join(root, 'dist', 'libs', 'client')];
  const built = Math.max(existsSync(stamp) ? statSync(stamp).mtimeMs : 0, ...outputs.map(newest));
  return sources.some((dir) => newest(dir) > built);
}

if (stale()) {
  if (!existsSync(join(root, 'node_modules', 'commander'))) {
    process.stderr.write('vmplane: dependencies are missing; run: npm ci\n');
    process.exit(1);
  }
  process.stderr.write('vmplane: building the CLI first (npm run build)…\n');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const build = spawnSync(npm, ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 2, 2], shell: process.platform === 'win32' });
  if (build.status !== 0 || !existsSync(entry)) {
    process.stderr.write('vmplane: the build failed; run `npm run build` to see why\n');
    process.exit(1);
  }
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}

require(entry)
  .run(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
