#!/usr/bin/env node
// `npm run check:docs [-- FILE_OR_DIR ...]`
//
// Parses every ```mermaid block in docs/**/*.md and README.md with Mermaid's
// own parser (mermaid 11's mermaid.parse()), in Node, with the DOM that
// Mermaid expects taken from a jsdom instance: no browser is downloaded or
// started. Prints one line per block and exits 1 naming the file, the line of
// the block's opening fence and the parser's error for every block that does
// not parse. With arguments, checks those files (or the .md files under
// those folders) instead.
//
// An ES module run directly by node: mermaid is ESM-only, and the project's
// TypeScript compiles to CommonJS.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JSDOM } from 'jsdom';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Markdown files under a folder, recursively, in a stable order. */
function markdownFiles(path) {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .filter((entry) => entry.name !== 'node_modules' && !entry.name.startsWith('.'))
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = join(path, entry.name);
      if (entry.isDirectory()) return markdownFiles(full);
      return entry.name.endsWith('.md') ? [full] : [];
    });
}

/**
 * The ```mermaid (or ~~~mermaid) blocks of a Markdown text, each with the
 * 1-based line of its opening fence. A fence closes on the same character
 * repeated at least as often, as CommonMark says.
 */
export function mermaidBlocks(text) {
  const lines = text.split(/\r?\n/);
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[1];
    const body = [];
    let j = i + 1;
    const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (j < lines.length && !close.test(lines[j])) body.push(lines[j++]);
    if (open[2].toLowerCase() === 'mermaid') blocks.push({ line: i + 1, source: body.join('\n'), unclosed: j >= lines.length });
    i = j;
  }
  return blocks;
}

/** Gives Node the browser globals Mermaid reads at import and parse time, from one jsdom window. */
function installDom() {
  const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>', { pretendToBeVisual: true });
  const globals = {
    window,
    document: window.document,
    DOMParser: window.DOMParser,
    Element: window.Element,
    HTMLElement: window.HTMLElement,
    SVGElement: window.SVGElement,
    Node: window.Node,
    XMLSerializer: window.XMLSerializer,
    getComputedStyle: window.getComputedStyle.bind(window),
  };
  for (const [name, value] of Object.entries(globals)) {
    // navigator and a few others are read-only getters on Node's globalThis; define, do not assign.
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  if (globalThis.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: window.navigator, configurable: true });
  }
}

async function main() {
  const args = process.argv.slice(2);
  const targets = args.length > 0 ? args.map((a) => resolve(a)) : [join(root, 'docs'), join(root, 'README.md')];
  const files = targets.flatMap(markdownFiles);

  installDom();
  const { default: mermaid } = await import('mermaid');
  mermaid.initialize({ startOnLoad: false });

  let total = 0;
  const failures = [];
  for (const file of files) {
    const name = relative(process.cwd(), file) || file;
    for (const block of mermaidBlocks(readFileSync(file, 'utf8'))) {
      total++;
      const where = `${name}:${block.line}`;
      const kind = block.source.trim().split(/\s/)[0] || '(empty)';
      try {
        if (block.unclosed) throw new Error('the code fence is never closed');
        await mermaid.parse(block.source);
        console.log(`ok    ${where}  ${kind}`);
      } catch (error) {
        const message = String(error?.message ?? error).trim();
        // The parser counts lines from the block's first line; name the file's line too.
        const inBlock = /on line (\d+)/.exec(message);
        const at = inBlock ? ` (file line ${block.line + Number(inBlock[1])})` : '';
        failures.push({ where: `${where}${at}`, message });
        console.log(`FAIL  ${where}  ${kind}`);
      }
    }
  }

  if (failures.length > 0) {
    console.error(`\n${failures.length} of ${total} Mermaid block(s) do not parse:`);
    for (const { where, message } of failures) {
      console.error(`\n${where}: ${message.split('\n').join('\n    ')}`);
    }
    process.exit(1);
  }
  if (total === 0) {
    console.error(`No Mermaid blocks found in ${targets.map((t) => relative(process.cwd(), t) || t).join(', ')}`);
    process.exit(1);
  }
  console.log(`\n${total} Mermaid block(s) in ${files.length} file(s) parse.`);
}

main().catch((error) => {
  console.error(`check-mermaid: ${error?.stack ?? error}`);
  process.exit(2);
});
