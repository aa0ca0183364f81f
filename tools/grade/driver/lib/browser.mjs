// The browser side: one Chromium, one context per user (Alice, Bob), tabs as pages of a
// context, private windows as extra contexts; console errors per user.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { install } from './agent.js';
import { Fatal, log } from './events.mjs';

// Flags for a closed network and a reproducible browser.
const ARGS = [
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

const NAVIGATION_TIMEOUT_MS = 30_000;

export async function launch(executablePath) {
  if (!executablePath || !fs.existsSync(executablePath)) {
    throw new Fatal(
      `no browser at ${executablePath || '(none given)'}: install Chromium (Debian: apt-get install chromium) or pass --browser PATH`,
    );
  }
  try {
    return await chromium.launch({ executablePath, headless: true, args: ARGS });
  } catch (e) {
    throw new Fatal(`Chromium at ${executablePath} did not start: ${e.message.split('\n')[0]}`);
  }
}

/// Whether a console message is the browser's own noise rather than an app error.
function ignored(text, url) {
  return /favicon\.ico/.test(url || '') || (/Failed to load resource/.test(text) && /favicon/.test(text));
}

/// One user: a profile (context) with named tabs, plus private windows.
export class User {
  constructor(name, browser, options) {
    this.name = name;
    this.browser = browser;
    this.options = options; // { url, headings, trace, onConsoleError }
    this.tabs = new Map(); // name -> { page, context }
    this.current = null;
    this.context = null;
    this.contexts = [];
  }

  async newContext() {
    const context = await this.browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.addInitScript(install, { headings: this.options.headings });
    context.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);
    if (this.options.trace) {
      await context.tracing.start({ snapshots: true, screenshots: true });
      await context.tracing.startChunk();
    }
    this.contexts.push(context);
    return context;
  }

  async start() {
    this.context = await this.newContext();
  }

  watchConsole(page) {
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location()?.url;
      if (ignored(msg.text(), url)) return;
      this.options.onConsoleError(this.name, msg.text(), url);
    });
    page.on('pageerror', (err) => this.options.onConsoleError(this.name, `uncaught: ${err.message}`, undefined));
  }

  async openTab(name, context) {
    const page = await context.newPage();
    this.watchConsole(page);
    this.tabs.set(name, { page, context });
    this.current = name;
    return page;
  }

  page() {
    return this.current ? this.tabs.get(this.current)?.page : undefined;
  }

  tabPage(name) {
    return this.tabs.get(name)?.page;
  }

  /// Loads the app in the current tab, opening the first tab (`main`) if the user has none.
  async open() {
    let page = this.page();
    if (!page) page = await this.openTab('main', this.context);
    await gotoApp(page, this.options.url);
    return page;
  }

  async closeCurrent() {
    const tab = this.tabs.get(this.current);
    if (!tab) throw new Error(`${this.name} has no open tab to close`);
    this.tabs.delete(this.current);
    await tab.page.close({ runBeforeUnload: false });
    if (tab.context !== this.context && ![...this.tabs.values()].some((t) => t.context === tab.context)) {
      await tab.context.close().catch(() => {});
      this.contexts = this.contexts.filter((c) => c !== tab.context);
    }
    const rest = [...this.tabs.keys()];
    this.current = rest.includes('main') ? 'main' : rest[rest.length - 1] ?? null;
  }

  async screenshot(file) {
    const page = this.page();
    if (!page) return null;
    try {
      await page.screenshot({ path: file, timeout: 5000 });
      return file;
    } catch (e) {
      log(`screenshot of ${this.name} failed: ${e.message}`);
      return null;
    }
  }

  /// Ends the trace chunk of the main context; keeps it at `file` when given.
  async traceChunk(file) {
    if (!this.options.trace) return null;
    try {
      await this.context.tracing.stopChunk(file ? { path: file } : undefined);
      await this.context.tracing.startChunk();
      return file;
    } catch (e) {
      log(`trace of ${this.name} failed: ${e.message}`);
      return null;
    }
  }

  async close() {
    for (const c of this.contexts) await c.close().catch(() => {});
  }
}

/// Navigates to the app; a page that cannot be reached is a harness failure for the first
/// load and an action failure afterwards (the caller decides).
export async function gotoApp(page, url) {
  await page.goto(url, { waitUntil: 'load' });
}

/// Loads the app in a throwaway context until it answers with a page twice in a row: Vite
/// answers before its first page is ready and may reload once while it optimises.
export async function warmUp(browser, url) {
  const started = Date.now();
  const context = await browser.newContext();
  const page = await context.newPage();
  let lastError = null;
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await page.goto(url, { waitUntil: 'load', timeout: NAVIGATION_TIMEOUT_MS });
        await page.waitForTimeout(1500);
        await page.reload({ waitUntil: 'load', timeout: NAVIGATION_TIMEOUT_MS });
        lastError = null;
        break;
      } catch (e) {
        lastError = e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    await context.close().catch(() => {});
  }
  if (lastError) {
    throw new Fatal(`the app at ${url} cannot be reached: ${lastError.message.split('\n')[0]}`);
  }
  return Date.now() - started;
}

export function artifactPath(dir, feature, step, what) {
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, `f${String(feature).padStart(2, '0')}-s${step}-${what}`);
}
