#!/usr/bin/env node
// The `vmplane` command (package.json "bin"). Plain JavaScript, so that it runs on a fresh
// clone before anything is built. It runs the CLI compiled into dist/cli/. When that is
// missing or was compiled from other sources (after `npm ci`, a pull, an edit), it compiles
// them first, file by file with TypeScript's transpileModule: seconds, against tens of seconds
// for `npm run build`. That skips the type check, which `npm run build` and the tests do;
// the sources use isolatedModules, so file-by-file output is what the full build would emit.
// The output is tagged with a hash of the sources it came from (mtimes lie after a copy that
// keeps them, or a checkout within the same second); hashing them costs ~2 ms a call.
'use strict';
// fetch parses HTTP with llhttp compiled to WebAssembly, and V8 optimises that module on a background
// thread that Node waits for at exit: ~0.2 s of every call (docs/cli.md, "Install"). Its baseline
// compiler alone is fast enough for a CLI's few responses.
require('node:v8').setFlagsFromString('--liftoff-only');
const { createHash } = require('node:crypto');
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join, relative } = require('node:path');

const root = join(__dirname, '..', '..', '..');
const out = join(root, 'dist', 'cli');
const entry = join(out, 'libs', 'cli', 'src', 'main.js');
const stamp = join(out, '.built');
const sourceDirs = [join(root, 'libs', 'cli', 'src'), join(root, 'libs', 'client', 'src')];

/** The .ts files that compile to JavaScript, with their contents, and a hash of both. */
function sources() {
  const files = [];
  const hash = createHash('sha256');
  for (const dir of sourceDirs) {
    for (const name of readdirSync(dir).sort()) {
      if (!name.endsWith('.ts') || name.endsWith('.d.ts') || name.endsWith('.spec.ts')) continue;
      const path = join(dir, name);
      const text = readFileSync(path, 'utf8');
      files.push({ path, text });
      hash.update(`${relative(root, path)}\0${text}\0`);
    }
  }
  return { files, digest: hash.digest('hex') };
}

function builtFrom() {
  return existsSync(entry) && existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : null;
}

/** Writes through a temporary file and a rename, so that a CLI started meanwhile never loads half a file. */
function writeAtomically(path, text) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

function compile(files, digest) {
  let ts;
  try {
    ts = require('typescript');
  } catch {
    process.stderr.write('vmplane: dependencies are missing; run: npm ci\n');
    process.exit(1);
  }
  const configFile = join(root, 'tsconfig.json');
  const config = ts.readConfigFile(configFile, ts.sys.readFile);
  const { options, errors } = ts.convertCompilerOptionsFromJson(config.config?.compilerOptions ?? {}, root, configFile);
  if (config.error || errors.length > 0) {
    process.stderr.write(`vmplane: cannot read ${configFile}\n`);
    process.exit(1);
  }
  for (const { path, text } of files) {
    const target = join(out, relative(root, path)).replace(/\.ts$/, '.js');
    const { outputText, sourceMapText } = ts.transpileModule(text, {
      compilerOptions: { ...options, sourceMap: true, inlineSourceMap: false, declaration: false, incremental: false },
      fileName: path,
      reportDiagnostics: false,
    });
    const map = JSON.parse(sourceMapText);
    map.sources = [relative(dirname(target), path)];
    writeAtomically(`${target}.map`, JSON.stringify(map));
    writeAtomically(target, outputText);
  }
  writeAtomically(stamp, `${digest}\n`);
}

const { files, digest } = sources();
if (builtFrom() !== digest) {
  process.stderr.write(`vmplane: compiling the CLI (${files.length} files) into ${relative(root, out)}/…\n`);
  compile(files, digest);
}

require(entry)
  .run(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
    // Done. fetch keeps its connection to the API open for reuse, which held the process ~0.5 s more
    // (undici's idle timer); exit once what was written to stdout and stderr has left.
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  });
