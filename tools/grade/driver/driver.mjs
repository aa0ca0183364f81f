#!/usr/bin/env node
// The grading driver: reads a program (PROTOCOL.md), carries out the levels' test scripts
// in the system Chromium with two users, and prints one JSON event per line.
//
//   node driver.mjs PROGRAM.json

import fs from 'node:fs';

import { User, launch, warmUp } from './lib/browser.mjs';
import { Fatal, emit, log } from './lib/events.mjs';
import { Runner } from './lib/runner.mjs';

const PROGRAM_VERSION = 1;

function readProgram(file) {
  if (!file) throw new Fatal('usage: node driver.mjs PROGRAM.json (see PROTOCOL.md)');
  let program;
  try {
    program = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Fatal(`cannot read the program ${file}: ${e.message}`);
  }
  if (program.version !== PROGRAM_VERSION) {
    throw new Fatal(`program version ${program.version} is not supported (this driver reads ${PROGRAM_VERSION})`);
  }
  for (const field of ['url', 'browser', 'artifacts_dir', 'features']) {
    if (program[field] === undefined) throw new Fatal(`the program has no \`${field}\``);
  }
  return program;
}

/// Panel headings of the UI contract: `text` entries whose element is "the heading of …",
/// plus the program's `headings` (those of features not graded this time).
function headingsOf(program) {
  const out = new Set(program.headings || []);
  for (const f of program.features) {
    for (const u of f.ui || []) {
      if (u.kind === 'text' && /^the heading of\b/.test(u.on || '')) out.add(u.text);
    }
  }
  return [...out];
}

async function reachable(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
  } catch (e) {
    throw new Fatal(`the app at ${url} cannot be reached (${e.cause?.code ?? e.message}): start it first`);
  }
}

async function main() {
  const program = readProgram(process.argv[2]);
  await reachable(program.url);
  const browser = await launch(program.browser);
  let runner = null;
  try {
    const warmupMs = program.warmup === false ? 0 : await warmUp(browser, program.url);
    const options = {
      url: program.url,
      headings: headingsOf(program),
      trace: !!program.trace,
      onConsoleError: (user, text, url) => runner?.onConsoleError(user, text, url),
    };
    const users = { alice: new User('alice', browser, options), bob: new User('bob', browser, options) };
    for (const u of Object.values(users)) await u.start();
    runner = new Runner(program, users);
    emit('ready', { browser_version: browser.version(), warmup_ms: warmupMs });
    await runner.runAll();
    for (const u of Object.values(users)) await u.close();
    emit('done');
  } finally {
    await browser.close().catch(() => {});
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    const message = e instanceof Fatal ? e.message : `driver error: ${e.stack || e.message}`;
    log(message);
    emit('fatal', { error: e instanceof Fatal ? e.message : `driver error: ${e.message}` });
    process.exit(1);
  },
);
