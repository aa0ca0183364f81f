// Runs the features' scripts in order (grammar: levels/levels.toml header) and reports
// actions and checks as protocol events.

import { artifactPath, gotoApp } from './browser.mjs';
import { emit, log } from './events.mjs';

const FIND_TIMEOUT_MS = 10_000;
const DEFAULT_WITHIN_S = 5;
const POLL_MS = 100;
// Actions after which the acting user's page is a new document: watchers of that user are
// armed after them, not before.
const NAVIGATING = new Set(['open', 'reload', 'close_tab', 'new_tab', 'new_private_tab', 'switch_tab']);
const TARGET_KINDS = ['button', 'text', 'placeholder', 'holding', 'label', 'title'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function targetOf(item) {
  const kind = TARGET_KINDS.find((k) => item[k] !== undefined);
  if (!kind) return null;
  const value = item[kind];
  return { kind, value, pattern: /\{[^}]+\}/.test(value), exact: !!item.exact, scope: item.in };
}

function describeItem(item) {
  const verb = item.do ?? `expect ${item.expect}`;
  const t = targetOf(item);
  const parts = [verb];
  if (t) parts.push(`${t.kind} ${JSON.stringify(t.value)}`);
  if (item.in) parts.push(`in ${JSON.stringify(item.in)}`);
  if (item.texts) parts.push(JSON.stringify(item.texts));
  if (item.value !== undefined && item.do !== undefined) parts.push(`= ${JSON.stringify(item.value)}`);
  if (item.option) parts.push(`→ ${JSON.stringify(item.option)}`);
  if (item.key) parts.push(item.key);
  if (item.tab) parts.push(`tab ${item.tab}`);
  if (item.seconds) parts.push(`${item.seconds} s`);
  if (item.time_from_now_s !== undefined) parts.push(`now ${item.time_from_now_s >= 0 ? '+' : ''}${item.time_from_now_s} s`);
  return parts.join(' ');
}

export class Runner {
  constructor(program, users) {
    this.program = program;
    this.users = users; // { alice: User, bob: User }
    this.remembered = new Map();
    this.feature = null;
    this.step = null;
  }

  user(name) {
    const u = this.users[name];
    if (!u) throw new Error(`unknown user ${name}`);
    return u;
  }

  onConsoleError(user, text, url) {
    if (this.feature == null) return;
    emit('console_error', { feature: this.feature, step: this.step ?? undefined, user, text, url });
  }

  async runAll() {
    for (const f of this.program.features) await this.runFeature(f);
  }

  /// Every item of the feature in order, with the action each expectation counts from.
  plan(feature) {
    const flat = [];
    let lastAction = null;
    for (const step of feature.steps) {
      (step.script || []).forEach((item, i) => {
        const entry = { step, item, index: i + 1, key: `${feature.id}.${step.index}.${i + 1}` };
        if (item.do !== undefined) {
          entry.triggers = [];
          if (item.do !== 'wait') lastAction = entry;
        } else {
          entry.trigger = lastAction;
          if (lastAction) lastAction.triggers.push(entry);
        }
        flat.push(entry);
      });
    }
    return flat;
  }

  async runFeature(feature) {
    const begun = Date.now();
    this.feature = feature.id;
    emit('feature_start', { feature: feature.id });
    const flat = this.plan(feature);
    const failedSteps = [];
    for (const step of feature.steps) {
      this.step = step.index;
      const entries = flat.filter((e) => e.step === step);
      const failed = await this.runStep(feature, step, entries);
      if (failed) failedSteps.push({ step: step.index, shots: await this.screenshots(feature.id, step.index) });
    }
    await this.saveArtifacts(feature.id, failedSteps);
    this.step = null;
    emit('feature_end', { feature: feature.id, ms: Date.now() - begun });
  }

  async runStep(feature, step, entries) {
    let failed = false;
    let blocked = null;
    for (const e of entries) {
      if (blocked) {
        if (e.item.expect !== undefined) {
          this.emitCheck(e, { passed: false, observed: `not checked: ${blocked}`, skipped: true });
          failed = true;
        }
        continue;
      }
      if (e.item.do !== undefined) {
        const ok = await this.runAction(feature, e);
        if (!ok) {
          failed = true;
          blocked = `action ${e.index} (${describeItem(e.item)}) failed`;
        }
      } else if (!(await this.runCheck(e))) {
        failed = true;
      }
    }
    for (const e of entries) if (e.item.expect !== undefined) await this.disarm(e);
    return failed;
  }

  // ---- actions -------------------------------------------------------------------------

  async runAction(feature, e) {
    const { item } = e;
    const u = this.user(item.user);
    const navigates = NAVIGATING.has(item.do);
    for (const x of e.triggers) {
      if (!(navigates && x.item.user === item.user && !x.item.tab)) await this.arm(x);
    }
    const started = Date.now();
    let mark = null;
    try {
      const page = u.page();
      if (page && !navigates) mark = await page.evaluate(() => window.__benchAgent?.now() ?? null).catch(() => null);
      const extra = await this.act(u, item);
      let at = started;
      if (mark != null && u.page()) {
        const first = await u.page().evaluate((m) => window.__benchAgent?.firstInputAfter(m) ?? null, mark).catch(() => null);
        if (first != null) at = first;
      }
      e.startedAt = at;
      if (item.remember) this.remembered.set(item.remember, extra?.at ?? at);
      for (const x of e.triggers) {
        if (navigates && x.item.user === item.user && !x.item.tab) await this.arm(x);
      }
      emit('action', {
        feature: feature.id, step: e.step.index, item: e.index, user: item.user,
        what: describeItem(item) + (extra?.note ? ` (${extra.note})` : ''), ok: true, ms: Date.now() - started,
      });
      return true;
    } catch (err) {
      e.startedAt = started;
      emit('action', {
        feature: feature.id, step: e.step.index, item: e.index, user: item.user,
        what: describeItem(item), ok: false, error: err.message.split('\n')[0], ms: Date.now() - started,
      });
      return false;
    }
  }

  async act(u, item) {
    switch (item.do) {
      case 'open':
        await u.open();
        return null;
      case 'reload':
        await this.pageOf(u).reload({ waitUntil: 'load' });
        return null;
      case 'new_tab':
        await u.openTab(item.tab, u.context);
        return null;
      case 'new_private_tab':
        await u.openTab(item.tab, await u.newContext());
        return null;
      case 'switch_tab':
        if (!u.tabPage(item.tab)) throw new Error(`${u.name} has no tab ${item.tab}`);
        u.current = item.tab;
        await u.page().bringToFront();
        return null;
      case 'close_tab':
        await u.closeCurrent();
        return null;
      case 'wait':
        await sleep(item.seconds * 1000);
        return null;
      case 'install_clock':
        await this.contextOf(u).clock.install();
        return null;
      case 'fast_forward':
        await this.contextOf(u).clock.fastForward(Math.round(item.seconds * 1000));
        return null;
      case 'real_time':
        await this.contextOf(u).clock.setSystemTime(Date.now());
        return null;
      default:
        return this.actOnElement(u, item);
    }
  }

  async actOnElement(u, item) {
    const page = this.pageOf(u);
    if (item.do === 'click' && item.unless && (await this.shownAnyKind(page, item.unless))) {
      return { note: `skipped: ${JSON.stringify(item.unless)} is already shown` };
    }
    if (item.do === 'press' && !targetOf(item)) {
      await page.keyboard.press(item.key);
      return null;
    }
    const target = targetOf(item);
    if (item.do === 'type') {
      // Typing is not retried: a half-typed text cannot be taken back.
      const el = await this.resolve(page, target, Date.now() + FIND_TIMEOUT_MS);
      await el.type(item.value, { delay: 15, timeout: 10000 });
      return null;
    }
    if (item.do === 'fill' && item.time_from_now_s !== undefined) {
      const when = await page.evaluate((ms) => window.__benchAgent.localDateTime(ms), item.time_from_now_s * 1000);
      await this.withElement(page, target, (el, timeout, force) => el.fill(when.text, { timeout, force }));
      return { at: when.at, note: when.text };
    }
    await this.withElement(page, target, (el, timeout, force) => this.actOn(el, item, timeout, force));
    return null;
  }

  async actOn(el, item, timeout, force) {
    switch (item.do) {
      case 'click':
        return el.click({ timeout, force });
      case 'hover':
        return el.hover({ timeout, force });
      case 'press':
        return el.press(item.key, { timeout });
      case 'check':
        return el.check({ timeout, force });
      case 'fill':
        return el.fill(item.value, { timeout, force });
      case 'select':
        try {
          return await el.selectOption({ label: item.option }, { timeout, force });
        } catch {
          return el.selectOption(item.option, { timeout, force });
        }
      default:
        throw new Error(`unknown action ${item.do}`);
    }
  }

  /// Finds the target and acts on it; when the element is replaced while the action waits
  /// for it (a re-render), the target is found again, until the time to find it is up.
  async withElement(page, target, fn) {
    const deadline = Date.now() + FIND_TIMEOUT_MS;
    for (let attempt = 1; ; attempt++) {
      const el = await this.resolve(page, target, deadline);
      // After two attempts whose element never became actionable (an app that re-renders
      // its lists all the time), act without Playwright's stability checks.
      const force = attempt > 2;
      try {
        return await fn(el, Math.max(500, Math.min(2000, deadline - Date.now())), force);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  }

  pageOf(u) {
    const page = u.page();
    if (!page) throw new Error(`${u.name} has no open tab (open the app first)`);
    return page;
  }

  contextOf(u) {
    const t = u.tabs.get(u.current);
    return t ? t.context : u.context;
  }

  async shownAnyKind(page, value) {
    const kinds = ['text', 'button', 'label', 'placeholder'];
    return page
      .evaluate(
        ([v, ks]) => ks.some((kind) => window.__benchAgent.shown({ kind, value: v, pattern: false, exact: true })),
        [value, kinds],
      )
      .catch(() => false);
  }

  /// The element for a target, waiting for it; controls shown on hover are hovered into
  /// view through their scope's anchor.
  async resolve(page, target, deadline) {
    const begun = Date.now();
    let hovered = false;
    for (;;) {
      const handle = await page.evaluateHandle((t) => window.__benchAgent?.findOne(t) ?? null, target).catch(() => null);
      const el = handle?.asElement();
      if (el) return el;
      if (!hovered && target.scope && Date.now() > begun + 500) {
        hovered = true;
        const anchor = (await page.evaluateHandle((s) => window.__benchAgent?.anchors(s)[0] ?? null, target.scope).catch(() => null))?.asElement();
        if (anchor) await anchor.hover({ timeout: 2000 }).catch(() => {});
        continue;
      }
      if (Date.now() > deadline) {
        const where = target.scope ? ` in the region of ${JSON.stringify(target.scope)}` : '';
        throw new Error(`no ${target.kind} ${JSON.stringify(target.value)}${where} within ${FIND_TIMEOUT_MS / 1000} s`);
      }
      await sleep(100);
    }
  }

  // ---- checks --------------------------------------------------------------------------

  condition(item) {
    return {
      expect: item.expect,
      target: targetOf(item),
      count: item.count,
      value: item.value,
      attribute: item.attribute,
      texts: item.texts,
      exact: !!item.exact,
      scope: item.in,
    };
  }

  checkPage(e) {
    const u = this.user(e.item.user);
    return e.item.tab ? u.tabPage(e.item.tab) : u.page();
  }

  async arm(e) {
    const page = this.checkPage(e);
    if (!page) return;
    try {
      await page.evaluate(([k, c]) => window.__benchAgent.arm(k, c), [e.key, this.condition(e.item)]);
      e.armedOn = page;
    } catch (err) {
      log(`arming ${e.key} failed: ${err.message.split('\n')[0]}`);
    }
  }

  async disarm(e) {
    if (!e.armedOn || e.armedOn.isClosed()) return;
    await e.armedOn.evaluate((k) => window.__benchAgent?.disarm(k), e.key).catch(() => {});
  }

  async state(e) {
    const page = this.checkPage(e);
    if (!page) return null;
    if (e.armedOn !== page) await this.arm(e);
    let s = await page.evaluate((k) => window.__benchAgent?.state(k) ?? null, e.key).catch(() => null);
    if (!s) {
      // The page was replaced (reload, navigation): watch the new document.
      await this.arm(e);
      s = await page.evaluate((k) => window.__benchAgent?.state(k) ?? null, e.key).catch(() => null);
    }
    return s;
  }

  async runCheck(e) {
    const { item } = e;
    const reached = Date.now();
    const withinS = item.within_s ?? e.step.within_s ?? DEFAULT_WITHIN_S;
    const within = withinS * 1000;
    let start = e.trigger?.startedAt ?? reached;
    if (item.since) start = this.remembered.get(item.since) ?? start;
    if (!this.checkPage(e)) {
      this.emitCheck(e, { passed: false, observed: `${item.user} has no open tab${item.tab ? ` ${item.tab}` : ''}`, within_s: withinS });
      return false;
    }
    if (!e.armedOn) await this.arm(e);
    const outcome = item.expect === 'absent'
      ? await this.watchAbsent(e, item.since ? start + within : reached + within, start)
      : await this.waitFor(e, start, within);
    this.emitCheck(e, { ...outcome, within_s: withinS });
    return outcome.passed;
  }

  /// Waits for the condition up to twice the limit, so that a late observation is timed.
  async waitFor(e, start, within) {
    const { item } = e;
    const deadline = Math.max(start + 2 * within, Date.now() + 300);
    let s = null;
    for (;;) {
      s = await this.state(e);
      const seen = item.expect === 'gone' ? (s?.okNow ? s.okSince : null) : s?.firstOk;
      if (seen != null) {
        const latency = Math.round(seen - start);
        const shown = Math.max(0, latency);
        if (item.since && latency < -1500) {
          return { passed: false, latency_ms: latency, observed: `${s.observed}, ${(-latency / 1000).toFixed(1)} s before its time` };
        }
        if (item.after_s != null && latency < item.after_s * 1000) {
          return { passed: false, latency_ms: shown, observed: `${s.observed}, after ${(shown / 1000).toFixed(2)} s: sooner than ${item.after_s} s` };
        }
        const late = latency > within;
        return { passed: !late, latency_ms: shown, observed: late ? `${s.observed}, late: after ${(shown / 1000).toFixed(2)} s` : s.observed };
      }
      if (Date.now() > deadline) break;
      await sleep(POLL_MS);
    }
    return { passed: false, observed: `${s?.observed ?? 'page not available'} (waited ${((Date.now() - start) / 1000).toFixed(1)} s)` };
  }

  async watchAbsent(e, end, start) {
    let s = null;
    do {
      s = await this.state(e);
      if (s?.firstNotOk != null) {
        return { passed: false, latency_ms: Math.max(0, Math.round(s.firstNotOk - start)), observed: s.notOkObserved ?? s.observed };
      }
      await sleep(POLL_MS);
    } while (Date.now() < end);
    return { passed: true, observed: s?.observed ?? 'not shown' };
  }

  emitCheck(e, outcome) {
    const { item } = e;
    emit('check', {
      feature: this.feature,
      step: e.step.index,
      item: e.index,
      user: item.user,
      what: describeItem(item),
      expect: item.expect,
      severity: item.severity ?? 'major',
      counts_for: item.feature,
      ...outcome,
    });
  }

  // ---- artifacts -----------------------------------------------------------------------

  async screenshots(feature, step) {
    const shots = {};
    for (const [name, u] of Object.entries(this.users)) {
      const file = await u.screenshot(artifactPath(this.program.artifacts_dir, feature, step, `${name}.png`));
      if (file) shots[name] = file;
    }
    return shots;
  }

  async saveArtifacts(feature, failedSteps) {
    const traces = {};
    for (const [name, u] of Object.entries(this.users)) {
      const file = failedSteps.length ? artifactPath(this.program.artifacts_dir, feature, 'all', `${name}-trace.zip`) : null;
      const kept = await u.traceChunk(file);
      if (kept) traces[name] = kept;
    }
    for (const f of failedSteps) {
      emit('artifacts', { feature, step: f.step, screenshots: f.shots, trace: traces.alice ?? traces.bob, traces });
    }
  }
}

export { gotoApp };
