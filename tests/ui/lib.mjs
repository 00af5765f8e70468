// lib.mjs - what the browser scenarios share: Debian's chromium headless
// through puppeteer-core, signing in, waiting for what a screen shows,
// screenshots into SHOTS, and a failure that says what was on the page.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import path from 'node:path';

export const BASE = process.env.BASE; // the load balancer (or a node)
export const PASS = process.env.PASS; // the admin's password
export const SHOTS = process.env.SHOTS || '/tmp';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

export function log(...a) {
  console.log('#', ...a);
}

// A browser and a page that records script errors and every request's origin.
export async function open({ width = 1280, height = 860, dark = false } = {}) {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--window-size=${width},${height}`],
  });
  const page = await browser.newPage();
  await page.setViewport({ width, height });
  if (dark) await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  page.errors = [];
  page.foreign = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!r.url().startsWith('data:') && u.origin !== new URL(BASE).origin) page.foreign.push(r.url());
  });
  page.on('dialog', (d) => d.accept());
  return { browser, page };
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log('screenshot', file);
}

// Wait until the page's main region shows text (a string or a RegExp).
export async function waitText(page, text, timeout = 15000, sel = 'main') {
  const isRe = text instanceof RegExp;
  try {
    await page.waitForFunction((s, src, re) => {
      const el = document.querySelector(s);
      const t = el ? el.innerText : '';
      return re ? new RegExp(src).test(t) : t.includes(src);
    }, { timeout, polling: 100 }, sel, isRe ? text.source : text, isRe);
  } catch (e) {
    const t = await page.$eval(sel, (el) => el.innerText).catch(() => '(nothing)');
    throw new Error(`"${text}" did not appear in ${sel} within ${timeout} ms; it shows:\n${t.slice(0, 1500)}`);
  }
}

export async function go(page, hash) {
  await page.goto(`${BASE}/ui/${hash}`, { waitUntil: 'networkidle0' });
}

export async function signIn(page, user, password) {
  await go(page, '#/login');
  await page.waitForSelector('input[name=user]');
  await page.type('input[name=user]', user);
  await page.type('input[name=password]', password);
  await Promise.all([
    page.waitForFunction(() => location.hash === '#/repos', { timeout: 15000 }),
    page.click('form button[type=submit]'),
  ]);
  await waitText(page, 'Repositories');
  await page.waitForFunction((u) => document.querySelector('#who .user')?.textContent.startsWith(u), {}, user);
}

// Fill the labelled field of a form (by its label's text).
export async function fill(page, scope, label, value) {
  const id = await page.evaluate((s, l) => {
    const root = document.querySelector(s);
    const lab = [...root.querySelectorAll('label')].find((x) => x.textContent.trim() === l);
    return lab ? lab.htmlFor : null;
  }, scope, label);
  check(id, `a field labelled "${label}" in ${scope}`);
  const el = await page.$(`#${id}`);
  const tag = await el.evaluate((x) => x.tagName);
  if (tag === 'SELECT') {
    await page.select(`#${id}`, value);
  } else {
    await el.click({ clickCount: 3 });
    await el.evaluate((x) => { x.value = ''; });
    await el.type(String(value));
  }
}

// Click a button or link by its visible text (inside scope), once it is there.
export async function clickText(page, text, scope = 'body', tag = 'button, a, [role=treeitem] .row', timeout = 10000) {
  try {
    await page.waitForFunction((s, t, q) => {
      const root = document.querySelector(s);
      const el = root && [...root.querySelectorAll(q)].find((x) => x.textContent.trim() === t);
      if (el) el.click();
      return !!el;
    }, { timeout, polling: 100 }, scope, text, tag);
  } catch {
    check(false, `something to click saying "${text}" in ${scope}`);
  }
}

// Run a scenario: the browser is closed and script errors fail it.
export async function run(name, fn) {
  const t0 = Date.now();
  let b;
  try {
    const o = await fn((opts) => open(opts).then((x) => { b = x.browser; return x; }));
    if (o && o.page) check(o.page.errors.length === 0, `no script errors (${o.page.errors.join('; ')})`);
    if (o && o.page) check(o.page.foreign.length === 0, `no request to anything but granary (${o.page.foreign.join(' ')})`);
    log(`${name}: ok in ${Date.now() - t0} ms`);
  } catch (e) {
    console.error(`${name}: ${e.stack || e}`);
    process.exitCode = 1;
  } finally {
    if (b) await b.close();
  }
}
