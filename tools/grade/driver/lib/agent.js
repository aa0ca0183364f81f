// The in-page half of the driver: finds elements from UI-contract strings, computes
// regions, and watches conditions with timestamps taken in the page. It is installed with
// `context.addInitScript(install, options)` before any app code runs, so it keeps the
// browser's real clock functions even after Playwright's page clock replaces them.
//
// Nothing here knows the reference app's markup: targets are found by accessible name,
// placeholder, aria-label, title or the text of the element that carries it.

export function install(options) {
  if (window.__benchAgent) return;
  const realPerfNow = performance.now.bind(performance);
  const origin = performance.timeOrigin;
  const realRaf = window.requestAnimationFrame.bind(window);
  const realSetInterval = window.setInterval.bind(window);
  const now = () => origin + realPerfNow();
  const headings = new Set(options.headings || []);

  const norm = (s) =>
    (s || '').replace(/\uFE0F/g, '').replace(/\s+/g, ' ').trim();

  // A contract string with `{…}` holes becomes a pattern; `exact` anchors it to the whole text.
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  function matcher(value, { pattern, exact }) {
    const v = norm(value);
    let body;
    if (pattern) {
      body = v
        .split(/\{[^}]*\}/)
        .map(escape)
        .join('.+?');
    } else {
      body = escape(v);
    }
    const re = exact
      ? new RegExp(`^${body}$`, 'u')
      : new RegExp(`(?:^|[^\\p{L}\\p{N}_])${body}(?:$|[^\\p{L}\\p{N}_])`, 'u');
    const within = new RegExp(body, 'u');
    const test = (text) => re.test(norm(text));
    // Whether an element's subtree can hold a match at all (its whole text contains it).
    test.within = (text) => within.test(norm(text));
    return test;
  }

  function visible(el) {
    if (!el.isConnected) return false;
    if (el.checkVisibility && !el.checkVisibility({ visibilityProperty: true })) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 || r.height > 0;
  }

  // The text of an element: its text nodes joined by spaces (so that adjacent elements are
  // not glued together), without scripts, styles or select options.
  // Work shared by the evaluations of one moment (a tick of every watcher, or one call from
  // the driver): texts of elements, heading elements and regions. The page does not change
  // during a synchronous evaluation, so nothing goes stale.
  let memo = null;
  function withMemo(fn) {
    if (memo) return fn();
    memo = { text: new WeakMap(), heads: new Map(), regions: new Map() };
    try {
      return fn();
    } finally {
      memo = null;
    }
  }

  function ownText(el) {
    if (memo) {
      let t = memo.text.get(el);
      if (t === undefined) {
        t = computeText(el);
        memo.text.set(el, t);
      }
      return t;
    }
    return computeText(el);
  }

  function computeText(el) {
    const parts = [];
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT, {
      acceptNode(n) {
        const p = n.parentElement;
        if (!p || p.closest('script,style,noscript,option,template')) return NodeFilter.FILTER_REJECT;
        return NodeFilter.FILTER_ACCEPT;
      },
    });
    for (let n = walker.nextNode(); n; n = walker.nextNode()) parts.push(n.nodeValue);
    return norm(parts.join(' '));
  }

  // Deepest visible elements whose text matches: an element matches when its text does and
  // none of its element children's does.
  function textElements(test, root = document.body) {
    const out = [];
    // Returns whether `el` or an element below it matches.
    const visit = (el) => {
      if (el.matches('script,style,noscript,option,template,select')) return false;
      const text = ownText(el);
      if (!(test.within ? test.within(text) : test(text))) return false;
      let child = false;
      for (const c of el.children) if (visit(c)) child = true;
      if (child) return true;
      if (!test(text)) return false;
      if (visible(el)) out.push(el);
      return true;
    };
    if (root) visit(root);
    return out;
  }

  function accessibleName(el) {
    const label = el.getAttribute('aria-label');
    if (label) return norm(label);
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const t = by
        .split(/\s+/)
        .map((id) => document.getElementById(id))
        .filter(Boolean)
        .map((e) => ownText(e))
        .join(' ');
      if (norm(t)) return norm(t);
    }
    if (el.labels && el.labels.length) return norm([...el.labels].map(ownText).join(' '));
    if (el.matches('input[type=submit],input[type=button]')) return norm(el.value);
    const t = ownText(el);
    if (t) return t;
    return norm(el.getAttribute('title') || '');
  }

  const BUTTONS = 'button,[role=button],input[type=submit],input[type=button],summary';
  const INPUTS = 'input,textarea,select,[contenteditable=""],[contenteditable=true]';

  // Candidates for one target, before scoping; exact names win over bounded substrings.
  function candidates(t) {
    const exactFirst = (els, nameOf) => {
      const ex = matcher(t.value, { pattern: t.pattern, exact: true });
      const loose = matcher(t.value, { pattern: t.pattern, exact: false });
      const named = els.filter(visible).map((el) => [el, nameOf(el)]);
      const exact = named.filter(([, n]) => ex(n)).map(([el]) => el);
      if (exact.length || t.exact) return exact;
      return named.filter(([, n]) => loose(n)).map(([el]) => el);
    };
    const all = (sel) => [...document.querySelectorAll(sel)];
    switch (t.kind) {
      case 'button':
        return exactFirst(all(BUTTONS), accessibleName);
      case 'placeholder':
        return exactFirst(all('[placeholder]'), (el) => norm(el.getAttribute('placeholder')));
      case 'label': {
        const els = all('[aria-label],[aria-labelledby],' + INPUTS);
        return exactFirst(els, (el) => {
          if (el.hasAttribute('aria-label') || el.hasAttribute('aria-labelledby')) return accessibleName(el);
          return el.labels && el.labels.length ? norm([...el.labels].map(ownText).join(' ')) : '';
        });
      }
      case 'title':
        return exactFirst(all('[title]'), (el) => norm(el.getAttribute('title')));
      case 'holding':
        return all('input,textarea').filter((el) => visible(el) && norm(el.value) === norm(t.value));
      default: {
        const test = matcher(t.value, { pattern: t.pattern, exact: !!t.exact });
        return textElements(test);
      }
    }
  }

  // ---- regions -------------------------------------------------------------------------
  const isHeadingEl = (el) => /^H[1-6]$/.test(el.tagName) || el.getAttribute('role') === 'heading';

  // Elements showing a contract heading; when some of them are headings (h1–h6,
  // role=heading), only those: `Online` is also the status text next to each user.
  function headingElements(h) {
    if (memo?.heads.has(h)) return memo.heads.get(h);
    const found = findHeadingElements(h);
    memo?.heads.set(h, found);
    return found;
  }

  function findHeadingElements(h) {
    const all = textElements(matcher(h, { exact: true }));
    const marked = all.filter((a) => isHeadingEl(a) || a.closest('h1,h2,h3,h4,h5,h6,[role=heading]'));
    return marked.length ? marked : all;
  }

  function headingBoundaries(except) {
    const out = [];
    for (const h of headings) {
      if (h !== except) out.push(...headingElements(h));
    }
    return out;
  }

  const containsAny = (el, list) => list.some((b) => b !== el && el.contains(b));

  function isRow(el) {
    if (el.matches('li,tr,article,[role=listitem],[role=row],[role=option],[role=treeitem],[role=article]')) return true;
    const parent = el.parentElement;
    if (!parent) return false;
    const classes = [...el.classList];
    const siblings = [...parent.children];
    if (classes.length) {
      // A sibling of the same tag with a class in common.
      return siblings.some((s) => s !== el && s.tagName === el.tagName && classes.some((c) => s.classList.contains(c)));
    }
    // Without classes: one of several block children that all have the same tag (a plain
    // list of divs); inline elements side by side (a name and its badge) are not rows.
    return (
      /^(DIV|P|SECTION|LI|ARTICLE)$/.test(el.tagName) &&
      siblings.length > 1 &&
      siblings.every((s) => s.tagName === el.tagName)
    );
  }

  // Largest ancestor of `el` (itself included) holding none of `bounds`.
  function largestFree(el, bounds) {
    let e = el;
    while (e.parentElement && e.parentElement !== document.documentElement && !containsAny(e.parentElement, bounds)) {
      e = e.parentElement;
    }
    return e;
  }

  // The region of one anchor element: a list of root elements and an optional top limit.
  function regionOf(anchor, anchorText) {
    if (headings.has(anchorText)) {
      // Other panels end this one: their contract headings, and any heading element, so
      // that a panel the graded features do not name (a level-12 app graded at level 1)
      // still bounds it.
      const generic = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6,[role=heading]')].filter(
        (h) => visible(h) && !h.contains(anchor) && !anchor.contains(h),
      );
      const bounds = [...headingBoundaries(anchorText), ...generic];
      const top = largestFree(anchor, bounds);
      const roots = [top];
      if (ownText(top) === norm(anchorText)) {
        // A flat list of headings and lists: the siblings up to the next heading.
        for (let s = top.nextElementSibling; s; s = s.nextElementSibling) {
          if (bounds.some((b) => s === b || s.contains(b))) break;
          roots.push(s);
        }
      }
      // The heading's column: its ancestors within the region for as long as they stay a
      // column (at most 60% of the page, and not half as wide again as the panel below them),
      // so that a panel heading takes in neither the main area's messages nor a neighbouring
      // panel when no other contract heading bounds it.
      const pageWidth = document.documentElement.clientWidth || window.innerWidth;
      let col = anchor;
      let width = anchor.getBoundingClientRect().width;
      for (let e = anchor.parentElement; e && e !== top.parentElement; e = e.parentElement) {
        const w = e.getBoundingClientRect().width;
        if (w > 0.6 * pageWidth || w > 1.5 * Math.max(width, 1)) break;
        col = e;
        width = w;
      }
      const c = col.getBoundingClientRect();
      return { roots, below: anchor.getBoundingClientRect().top - 2, left: c.left, right: c.right };
    }
    const bounds = headingBoundaries(null);
    for (let e = anchor, depth = 0; e && e !== document.body && depth < 12; e = e.parentElement, depth++) {
      if (containsAny(e, bounds)) break;
      if (isRow(e)) return { roots: [e], row: true };
    }
    return { roots: [largestFree(anchor, bounds)] };
  }

  function regions(scope) {
    if (memo?.regions.has(scope)) return memo.regions.get(scope);
    const found = computeRegions(scope);
    memo?.regions.set(scope, found);
    return found;
  }

  function computeRegions(scope) {
    const anchors = textElements(matcher(scope, { exact: false }));
    let chosen = anchors;
    if (headings.has(scope)) {
      const exact = headingElements(scope);
      chosen = exact.length ? exact : anchors;
    }
    const all = chosen.map((a) => regionOf(a, scope));
    // Rows win: `Join` on `General` is the room list row's, not the open room header's.
    const rows = all.filter((r) => r.row);
    return rows.length ? rows : all;
  }

  function inRegion(el, r) {
    if (!r.roots.some((root) => root === el || root.contains(el))) return false;
    const box = el.getBoundingClientRect();
    if (r.below !== undefined && box.top < r.below) return false;
    if (r.left !== undefined && (box.right <= r.left + 1 || box.left >= r.right - 1)) return false;
    return true;
  }

  function find(t) {
    const found = candidates(t);
    if (!t.scope) return found;
    const rs = regions(t.scope);
    return found.filter((el) => rs.some((r) => inRegion(el, r)));
  }

  // ---- conditions ----------------------------------------------------------------------
  function describe(els) {
    return els
      .slice(0, 3)
      .map((e) => JSON.stringify(ownText(e) || accessibleName(e)).slice(0, 80))
      .join(', ');
  }

  function selectText(el) {
    if (el.tagName === 'SELECT') {
      const o = el.selectedOptions && el.selectedOptions[0];
      return o ? [norm(o.textContent), norm(el.value)] : [norm(el.value)];
    }
    if (el.isContentEditable) return [norm(el.textContent)];
    return [norm(el.value)];
  }

  function sameNames(a, b) {
    const split = (s) => norm(s).split(/\s*,\s*/).filter(Boolean).sort().join(',');
    return norm(a) === norm(b) || (b.includes(',') && split(a) === split(b));
  }

  function evaluate(c) {
    switch (c.expect) {
      case 'appears': {
        const els = find(c.target);
        const ok = c.count != null ? els.length === c.count : els.length > 0;
        return { ok, observed: els.length ? `shown ${els.length}×: ${describe(els)}` : 'not shown' };
      }
      case 'gone':
      case 'absent': {
        const els = find(c.target);
        return { ok: els.length === 0, observed: els.length ? `shown: ${describe(els)}` : 'not shown' };
      }
      case 'value': {
        const els = find(c.target);
        if (!els.length) return { ok: false, observed: 'input not found' };
        const vals = els.map(selectText);
        const ok = vals.some((v) => v.includes(norm(c.value)));
        return { ok, observed: `value ${JSON.stringify(vals.map((v) => v[0]).join(' | '))}` };
      }
      case 'attribute': {
        const els = find(c.target);
        if (!els.length) return { ok: false, observed: 'element not found' };
        const vals = els.map((el) => {
          const holder = el.closest(`[${c.attribute}]`) || el.querySelector(`[${c.attribute}]`);
          return holder ? holder.getAttribute(c.attribute) : null;
        });
        const ok = vals.some((v) => v != null && sameNames(v, c.value));
        return { ok, observed: `${c.attribute} ${JSON.stringify(vals.filter((v) => v != null).join(' | ') || null)}` };
      }
      case 'order': {
        const lists = c.texts.map((t) => find({ kind: 'text', value: t, exact: c.exact, scope: c.scope }));
        const missing = c.texts.filter((_, i) => !lists[i].length);
        if (missing.length) return { ok: false, observed: `not shown: ${missing.map((m) => JSON.stringify(m)).join(', ')}` };
        let prev = null;
        for (const els of lists) {
          const next = els.find((el) => !prev || prev.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
          if (!next) return { ok: false, observed: 'shown in another order' };
          prev = next;
        }
        return { ok: true, observed: 'in order' };
      }
      case 'disabled': {
        const els = find(c.target);
        if (!els.length) return { ok: false, observed: 'button not found' };
        const ok = els.every((el) => el.disabled || el.getAttribute('aria-disabled') === 'true');
        return { ok, observed: ok ? 'disabled' : 'enabled' };
      }
      default:
        return { ok: false, observed: `unknown expectation ${c.expect}` };
    }
  }

  // ---- watchers ------------------------------------------------------------------------
  const watchers = new Map();
  let observer = null;

  function tickAll(t) {
    withMemo(() => {
      for (const w of watchers.values()) tick(w, t);
    });
  }

  function tick(w, t = now()) {
    if (w.stopped) return;
    let r;
    try {
      r = evaluate(w.cond);
    } catch (e) {
      r = { ok: false, observed: `error: ${e.message}` };
    }
    w.observed = r.observed;
    if (r.ok) {
      if (w.firstOk == null) w.firstOk = t;
      if (w.okSince == null) w.okSince = t;
    } else {
      w.okSince = null;
      if (w.firstNotOk == null) {
        w.firstNotOk = t;
        w.notOkObserved = r.observed;
      }
    }
    w.okNow = r.ok;
  }

  // A change in the page is evaluated at the next frame but timed when it happened, so a
  // latency is exact to the mutation; a poll every 50 ms catches what mutates no DOM
  // (an input's value).
  let pendingAt = null;
  function ensureLoops() {
    if (observer) return;
    observer = new MutationObserver(() => {
      if (pendingAt != null || !watchers.size) return;
      pendingAt = now();
      realRaf(() => {
        if (pendingAt == null) return;
        const t = pendingAt;
        pendingAt = null;
        tickAll(t);
      });
    });
    observer.observe(document.documentElement, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
    realSetInterval(() => {
      if (!watchers.size) return;
      const t = pendingAt ?? now();
      pendingAt = null;
      tickAll(t);
    }, 100);
  }

  // When the driver's actions reached the page: the first input event after a mark.
  const inputs = [];
  for (const type of ['keydown', 'pointerdown', 'mousedown', 'pointermove', 'input', 'change', 'click']) {
    window.addEventListener(
      type,
      (ev) => {
        inputs.push(origin + ev.timeStamp);
        if (inputs.length > 500) inputs.splice(0, 250);
      },
      true,
    );
  }

  window.__benchAgent = {
    now,
    firstInputAfter: (mark) => inputs.find((t) => t >= mark) ?? null,
    find: (t) => withMemo(() => find(t)),
    findOne: (t) => withMemo(() => find(t)[0] || null),
    shown: (t) => withMemo(() => find(t).length > 0),
    count: (t) => withMemo(() => find(t).length),
    anchors: (scope) => withMemo(() => textElements(matcher(scope, { exact: false }))),
    arm(id, cond) {
      const w = { cond, armedAt: now(), firstOk: null, okSince: null, firstNotOk: null, okNow: false };
      watchers.set(id, w);
      withMemo(() => tick(w));
      ensureLoops();
      return w.armedAt;
    },
    state(id) {
      const w = watchers.get(id);
      if (!w) return null;
      withMemo(() => tick(w));
      const { cond, ...rest } = w;
      return rest;
    },
    disarm(id) {
      watchers.delete(id);
    },
    localDateTime(msFromNow) {
      const d = new Date(Math.floor((now() + msFromNow) / 1000) * 1000);
      const p = (n) => String(n).padStart(2, '0');
      const text = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
      return { text, at: d.getTime() };
    },
  };
}
