// bench/ui.mjs - the browser half of bench/ui: node bench/ui.mjs URL ADMIN_PASS N RUNS
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/ui/package.json', import.meta.url));
const puppeteer = require('puppeteer-core');
const [base, pass, n, runsArg] = process.argv.slice(2);
const RUNS = Number(runsArg || 5);
const fmt = (x) => x.toLocaleString('en');

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});

// bytes transferred by everything a page loads (compressed bodies and headers)
async function measure(page, fn) {
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  let bytes = 0;
  let count = 0;
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; count++; });
  await fn();
  await cdp.detach();
  return { bytes, count };
}

async function signIn(page) {
  await page.goto(`${base}/ui/#/login`, { waitUntil: 'networkidle0' });
  await page.type('input[name=user]', 'admin');
  await page.type('input[name=password]', pass);
  await Promise.all([page.waitForFunction(() => location.hash === '#/repos'), page.click('form button[type=submit]')]);
  await page.waitForSelector('table[aria-label=Repositories]');
}

// 1. first loads
{
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const cold = await measure(page, () => page.goto(`${base}/`, { waitUntil: 'networkidle0' }));
  const warm = await measure(page, () => page.goto(`${base}/`, { waitUntil: 'networkidle0' }));
  await signIn(page);
  const ctx2 = await browser.createBrowserContext();
  const p2 = await ctx2.newPage();
  // signed in (the cookie of the first context), a fresh cache
  const cookies = await page.cookies();
  await p2.setCookie(...cookies);
  const repos = await measure(p2, async () => {
    await p2.goto(`${base}/ui/#/repos`, { waitUntil: 'networkidle0' });
    await p2.waitForSelector('table[aria-label=Repositories]');
  });
  console.log('first load (bytes transferred, compressed, headers included; budget 150 KB = 153,600 bytes):');
  console.log(`  sign-in page, empty cache:        ${fmt(cold.bytes)} bytes in ${cold.count} responses`);
  console.log(`  sign-in page, from the cache:     ${fmt(warm.bytes)} bytes in ${warm.count} responses (304s)`);
  console.log(`  repositories screen, signed in:   ${fmt(repos.bytes)} bytes in ${repos.count} responses`);
  await ctx.close();
  await ctx2.close();
}

// 2. the folder of N files
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
await signIn(page);
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];
for (const [folder, label] of [['flat', `${fmt(Number(n))} files`], ['small', '100 files']]) {
  const open = [];
  const more = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${base}/ui/#/repos`, { waitUntil: 'networkidle0' });
    const t0 = Date.now();
    await page.goto(`${base}/ui/#/browse/big/${folder}`);
    await page.waitForFunction((f) => {
      const rows = document.querySelectorAll('[role=tree] li.file');
      return rows.length > 0 && [...rows].some((r) => r.textContent.includes('file-'));
    }, { polling: 'raf', timeout: 60000 }, folder);
    open.push(Date.now() - t0);
    const hasMore = await page.$('[role=tree] li.more');
    if (hasMore) {
      const before = await page.$$eval('[role=tree] li.file', (e) => e.length);
      const t1 = Date.now();
      await page.click('[role=tree] li.more .row');
      await page.waitForFunction((b) => document.querySelectorAll('[role=tree] li.file').length > b, { polling: 'raf' }, before);
      more.push(Date.now() - t1);
    }
  }
  const nodes = await page.evaluate(() => document.querySelectorAll('*').length);
  console.log(`folder of ${label}: open to first page shown: median ${median(open)} ms, max ${Math.max(...open)} ms`
    + (more.length ? `; "Show 500 more": median ${median(more)} ms, max ${Math.max(...more)} ms` : '')
    + `; ${fmt(nodes)} DOM nodes after`);
}
await browser.close();
