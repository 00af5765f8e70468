// ui.mjs - the web UI in a real browser (tests/ui/80_ui.bats runs one
// scenario per test): node ui.mjs SCENARIO. Environment: BASE (the load
// balancer), PASS (admin), SHOTS (screenshot folder), and per scenario
// FILE, SHA256, KILL_PID.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { BASE, PASS, check, log, shot, waitText, go, signIn, fill, clickText, run } from './lib.mjs';

const scenarios = {};

// The first load: / redirects a browser to /ui/; under 150 KB; nothing from elsewhere.
scenarios.firstload = (open) => run('firstload', async (opening) => {
  const o = await opening();
  const { page } = o;
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  let transferred = 0;
  const sizes = {};
  const urls = {};
  cdp.on('Network.responseReceived', (e) => { urls[e.requestId] = e.response.url; });
  cdp.on('Network.loadingFinished', (e) => {
    transferred += e.encodedDataLength;
    sizes[urls[e.requestId] || e.requestId] = e.encodedDataLength;
  });
  await page.goto(`${BASE}/`, { waitUntil: 'networkidle0' });
  check(new URL(page.url()).pathname === '/ui/', `/ redirects a browser to /ui/ (at ${page.url()})`);
  await waitText(page, 'Sign in');
  log(`first load: ${transferred} bytes transferred in ${Object.keys(sizes).length} responses`);
  for (const [u, n] of Object.entries(sizes)) log(`  ${n}\t${u}`);
  check(transferred < 150 * 1024, `first load under 150 KB (${transferred} bytes)`);
  // an API error in words, never raw JSON
  await page.type('input[name=user]', 'nobody');
  await page.type('input[name=password]', 'wrong-password');
  await page.click('form button[type=submit]');
  await waitText(page, 'Sign-in failed: wrong user name, password or token.');
  const main = await page.$eval('main', (e) => e.innerText);
  check(!main.includes('{"errors"'), 'no raw JSON on the page');
  await shot(page, '01-sign-in-failed');
  return o;
});

// Admin: create a repository, upload with progress to 100 %, browse, checksums,
// search by checksum, a property, delete and restore from the trash.
scenarios.flow = (open) => run('flow', async (opening) => {
  const o = await opening();
  const { page } = o;
  const file = process.env.FILE;
  const want = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  const name = file.split('/').pop();
  await signIn(page, 'admin', PASS);
  await shot(page, '02-repositories');

  // a repository, through the form
  await clickText(page, 'New repository');
  await page.waitForSelector('form[aria-label="New repository"]');
  await fill(page, 'form[aria-label="New repository"]', 'Key', 'ui-files');
  await fill(page, 'form[aria-label="New repository"]', 'Description', 'made in the browser');
  await clickText(page, 'Create', 'form[aria-label="New repository"]');
  await waitText(page, 'made in the browser');
  await shot(page, '03-repository-created');

  // upload with the bar watched to 100 % (the upload throttled so the bar moves)
  await go(page, '#/deploy?repo=ui-files&path=tools/1.0');
  await page.waitForSelector('input[type=file]');
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024 });
  await page.evaluate(() => {
    window.__pct = [];
    new MutationObserver(() => {
      const p = document.querySelector('.upload .pct');
      if (p && window.__pct[window.__pct.length - 1] !== p.textContent) window.__pct.push(p.textContent);
    }).observe(document.querySelector('main'), { subtree: true, childList: true, characterData: true });
  });
  await (await page.$('input[type=file]')).uploadFile(file);
  await page.waitForSelector('.upload .bar progress');
  await page.waitForSelector('li.upload.done, li.upload.failed', { timeout: 60000 });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const pct = await page.evaluate(() => window.__pct);
  log('progress seen:', pct.join(' '));
  check(await page.$('li.upload.done'), `the upload succeeded (${await page.$eval('li.upload', (e) => e.innerText)})`);
  check(pct[pct.length - 1] === '100 %' && await page.$eval('.upload progress', (e) => e.value) === 100, 'the bar reached 100 %');
  check(pct.some((x) => x !== '0 %' && x !== '100 %'), 'the bar moved through values between 0 and 100 %');
  const shown = await page.$eval('.upload code[data-hash=sha256]', (e) => e.textContent);
  check(shown === want, `the checksum shown after the upload (${shown}) is the file's (${want})`);
  await shot(page, '04-deploy-done');

  // browse to it: the tree opens, the details show the same checksums
  await clickText(page, 'Browse to it');
  await page.waitForSelector('[data-hash=sha256]');
  await waitText(page, name);
  const details = await page.$$eval('.details code[data-hash]', (els) => Object.fromEntries(els.map((e) => [e.dataset.hash, e.textContent])));
  const bytes = fs.readFileSync(file);
  check(details.sha256 === want, 'sha256 in the details');
  check(details.sha1 === crypto.createHash('sha1').update(bytes).digest('hex'), 'sha1 in the details');
  check(details.md5 === crypto.createHash('md5').update(bytes).digest('hex'), 'md5 in the details');
  check(await page.$eval('[role=tree] [aria-selected=true]', (e) => e.textContent.includes(name)), 'the file is selected in the tree');
  await shot(page, '05-browse-details');

  // search by checksum
  await go(page, `#/search/checksum?q=${want}`);
  await page.waitForSelector('table[aria-label=Results] a');
  const hit = await page.$eval('table[aria-label=Results] a', (a) => a.textContent);
  check(hit === `tools/1.0/${name}`, `the checksum search finds it (${hit})`);
  await shot(page, '06-search-checksum');
  await page.click('table[aria-label=Results] a');
  await page.waitForSelector('form[aria-label="Set a property"]');

  // a property
  await fill(page, 'form[aria-label="Set a property"]', 'Key', 'release.stage');
  await fill(page, 'form[aria-label="Set a property"]', 'Values', 'qa, staging');
  await clickText(page, 'Set property', 'form[aria-label="Set a property"]');
  await page.waitForSelector('table[aria-label=Properties]');
  await waitText(page, 'release.stage');
  const props = await (await fetch(`${BASE}/api/storage/ui-files/tools/1.0/${encodeURIComponent(name)}?properties`, { headers: { Authorization: `Basic ${Buffer.from(`admin:${PASS}`).toString('base64')}` } })).json();
  check(JSON.stringify(props.properties) === JSON.stringify({ 'release.stage': ['qa, staging'] }), `the property as stored: ${JSON.stringify(props.properties)}`);
  await shot(page, '07-property');

  // delete, then restore from the trash
  await clickText(page, 'Delete…');
  await page.waitForSelector('form[aria-label=Delete]');
  await clickText(page, 'Delete', 'form[aria-label=Delete]');
  await page.waitForFunction(() => location.hash === '#/browse/ui-files/tools/1.0');
  const gone = await fetch(`${BASE}/ui-files/tools/1.0/${encodeURIComponent(name)}`, { headers: { Authorization: `Basic ${Buffer.from(`admin:${PASS}`).toString('base64')}` } });
  check(gone.status === 404, `deleted (${gone.status})`);
  await go(page, '#/trash');
  await waitText(page, `tools/1.0/${name}`);
  await shot(page, '08-trash');
  await page.click(`button[aria-label="Restore ui-files/tools/1.0/${name}"]`);
  await waitText(page, 'Restored');
  await clickText(page, `ui-files/tools/1.0/${name}`, '.msgs');
  await page.waitForSelector('[data-hash=sha256]');
  await waitText(page, 'release.stage'); // back with its property
  check(await page.$eval('[data-hash=sha256]', (e) => e.textContent) === want, 'restored with its content');
  await shot(page, '09-restored');
  return o;
});

// Admin makes a user and a permission target; the user sees only that.
scenarios.users = (open) => run('users', async (opening) => {
  const o = await opening();
  const { page } = o;
  await signIn(page, 'admin', PASS);
  await go(page, '#/admin/users');
  await clickText(page, 'New user');
  const uf = 'form[aria-label="New user"]';
  await page.waitForSelector(uf);
  await fill(page, uf, 'Name', 'erin');
  await fill(page, uf, 'Email', 'erin@example.com');
  await fill(page, uf, 'Password', 'erin-password-1');
  await clickText(page, 'Create', uf);
  await waitText(page, 'Created user erin.');

  await go(page, '#/admin/permissions');
  await clickText(page, 'New permission target');
  const tf = 'form[aria-label="New permission target"]';
  await page.waitForSelector(tf);
  await fill(page, tf, 'Name', 'erin-team');
  await fill(page, tf, 'Repositories', 'team');
  await fill(page, tf, 'Exclude patterns', 'src/**');
  await clickText(page, 'Add a user', tf);
  await page.type(`${tf} .grants[data-kind=users] .grant:last-child input[name=who]`, 'erin');
  await clickText(page, 'Create', tf);
  await waitText(page, 'Saved permission target erin-team.');
  // the effective permissions of erin on two paths
  const ef = 'form[aria-label="Effective permissions"]';
  await fill(page, ef, 'User', 'erin');
  await fill(page, ef, 'Repository', 'team');
  await fill(page, ef, 'Path', 'docs/readme.txt');
  await clickText(page, 'Show', ef);
  await waitText(page, /erin on team\/docs\/readme\.txt: read$/m);
  await shot(page, '10-permission-target');
  await fill(page, ef, 'Path', 'src/main.c');
  await clickText(page, 'Show', ef);
  await waitText(page, /erin on team\/src\/main\.c: nothing/);

  // erin: one repository, no admin screen, and a refusal in words
  await clickText(page, 'Sign out');
  await page.waitForSelector('#who a[href="#/login"]');
  await signIn(page, 'erin', 'erin-password-1');
  await page.waitForSelector('table[aria-label=Repositories] tbody tr');
  const keys = await page.$$eval('table[aria-label=Repositories] tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  check(JSON.stringify(keys) === '["team"]', `erin sees only team (${keys})`);
  const nav = await page.$$eval('#nav a', (as) => as.map((a) => a.textContent));
  check(!nav.includes('Admin'), `no Admin link for erin (${nav})`);
  await shot(page, '11-erin-repositories');
  await go(page, '#/browse/team/docs/readme.txt');
  await page.waitForSelector('[data-hash=sha256]');
  const tree = await page.$$eval('[role=tree] .name', (els) => els.map((e) => e.textContent));
  check(!tree.includes('src'), `erin's tree leaves out src (${tree})`);
  await clickText(page, 'Delete…');
  await clickText(page, 'Delete', 'form[aria-label=Delete]');
  await waitText(page, "user 'erin' has no delete permission");
  await shot(page, '12-erin-refused');
  await go(page, '#/admin/users');
  await waitText(page, 'This screen is for administrators.');

  // granted docs/** only, erin cannot list the repository's root: the tree
  // still leads to what the address names
  const r = await fetch(`${BASE}/api/v2/security/permissions/erin-team`, {
    method: 'PUT',
    headers: { Authorization: `Basic ${Buffer.from(`admin:${PASS}`).toString('base64')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ repo: { repositories: ['team'], 'include-patterns': ['docs/**'], actions: { users: { erin: ['read'] } } } }),
  });
  check(r.ok, `the target narrowed (${r.status})`);
  await go(page, '#/browse/team/docs/readme.txt');
  await page.waitForSelector('[data-hash=sha256]');
  await waitText(page, 'Not listable');
  const shownTree = await page.$$eval('[role=tree] .name', (els) => els.map((e) => e.textContent));
  check(JSON.stringify(shownTree) === '["team","docs","readme.txt"]', `the tree leads to the file (${shownTree})`);
  await shot(page, '12b-erin-docs-only');
  return o;
});

// Names, properties and descriptions with markup and script are shown as text.
scenarios.xss = (open) => run('xss', async (opening) => {
  const o = await opening();
  const { page } = o;
  await signIn(page, 'admin', PASS);
  const evil = process.env.EVIL; // the file's name, as stored
  const screens = [
    ['#/repos', 'a description with markup'],
    [`#/browse/evil/${encodeURIComponent(evil)}`, 'window.__pwned=2'],
    [`#/search/name?q=${encodeURIComponent('img')}`, evil],
    ['#/search/prop?key=note&value=', evil],
    ['#/admin/audit?action=properties', evil],
  ];
  for (const [hash, text] of screens) {
    await go(page, hash);
    await waitText(page, text);
    const r = await page.evaluate(() => ({
      pwned: window.__pwned,
      injected: document.querySelectorAll('main img, main script, main iframe, main svg, [onerror], [onclick]').length,
    }));
    check(r.pwned === undefined, `nothing ran on ${hash} (window.__pwned = ${r.pwned})`);
    check(r.injected === 0, `no element came from stored data on ${hash} (${r.injected})`);
  }
  await go(page, `#/browse/evil/${encodeURIComponent(evil)}`);
  await waitText(page, 'window.__pwned=2');
  await shot(page, '13-markup-as-text');
  return o;
});

// 320 px and a large screen, dark and light; labels, keyboard.
scenarios.layout = (open) => run('layout', async (opening) => {
  let o = await opening({ width: 320, height: 640, dark: true });
  let { page } = o;
  await signIn(page, 'admin', PASS);
  for (const hash of ['#/repos', '#/browse/team/docs/readme.txt', '#/admin/permissions', '#/cluster']) {
    await go(page, hash);
    await page.waitForSelector('main h1');
    await page.waitForNetworkIdle();
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    check(w <= 320, `nothing wider than 320 px on ${hash} (${w})`);
  }
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(/rgb\((\d+), (\d+), (\d+)\)/.test(bg) && bg.match(/\d+/g).every((c) => Number(c) < 60), `dark background in dark mode (${bg})`);
  await go(page, '#/browse/team/docs/readme.txt');
  await page.waitForSelector('[data-hash=sha256]');
  await shot(page, '14-browse-320px-dark');
  // every control has a name a screen reader reads
  for (const hash of ['#/repos', '#/deploy', '#/admin/users', '#/admin/tokens', '#/search/prop', '#/browse/team/docs/readme.txt']) {
    await go(page, hash);
    await page.waitForNetworkIdle();
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')].filter((el) => {
      if (el.type === 'hidden' || el.classList.contains('visually-hidden')) return false;
      const label = el.labels && el.labels.length ? el.labels[0].textContent.trim() : '';
      return !(label || el.getAttribute('aria-label') || (el.textContent || '').trim());
    }).map((el) => el.outerHTML.slice(0, 80)));
    check(unnamed.length === 0, `every control on ${hash} is labelled (${unnamed.join(' ')})`);
  }
  await o.browser.close();

  // a large screen, light; the keyboard alone reaches the form and signs in
  o = await opening({ width: 1920, height: 1080 });
  page = o.page;
  await go(page, '#/login');
  await page.waitForSelector('input[name=user]');
  const bg2 = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg2 === 'rgb(255, 255, 255)', `light background (${bg2})`);
  await page.focus('#skip'); // from the top of the page
  const seen = [];
  for (let i = 0; i < 20 && !seen.includes('password'); i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => document.activeElement.name || document.activeElement.textContent.trim().slice(0, 20)));
  }
  log('Tab order:', seen.join(', '));
  check(seen.includes('user') && seen.includes('password'), `Tab reaches the sign-in fields (${seen.join(', ')})`);
  await page.keyboard.type(PASS);
  await page.keyboard.down('Shift');
  await page.keyboard.press('Tab');
  await page.keyboard.up('Shift');
  await page.keyboard.type('admin');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/repos');
  // the tree by arrow keys
  await go(page, '#/browse/team');
  await page.waitForSelector('[role=treeitem][aria-expanded]');
  await page.focus('[role=treeitem]');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => [...document.querySelectorAll('[role=tree] .name')].some((e) => e.textContent === 'readme.txt'));
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-hash=sha256]');
  await shot(page, '15-large-light-keyboard');
  return o;
});

// Three nodes through nginx; one is killed: the screen shows it down by itself.
scenarios.cluster = (open) => run('cluster', async (opening) => {
  const o = await opening();
  const { page } = o;
  await signIn(page, 'admin', PASS);
  await go(page, '#/cluster');
  await page.waitForFunction(() => document.querySelectorAll('#nodes .state.active').length === 3, { timeout: 20000 });
  await waitText(page, 'Copies per binary');
  await shot(page, '16-cluster-three-nodes');
  const victim = process.env.KILL_NODE;
  const t0 = Date.now();
  process.kill(Number(process.env.KILL_PID), 'SIGKILL');
  // no reload: the screen refreshes itself
  await page.waitForFunction((id) => document.querySelector(`#nodes .state[data-node="${id}"]`)?.textContent === 'down',
    { timeout: 30000, polling: 100 }, victim);
  const ms = Date.now() - t0;
  const downAfter = await page.evaluate(async () => (await (await fetch('/api/system/cluster', { headers: { 'X-Granary-UI': '1' } })).json()).downAfterMs);
  log(`node ${victim} shown down ${ms} ms after the kill (down after ${downAfter} ms, refresh every 2000 ms)`);
  check(ms < downAfter + 2 * 2000 + 10000, `shown down within down-after plus two refreshes, with a margin (${ms} ms)`);
  check(await page.$$eval('#nodes .state.active', (e) => e.length) === 2, 'the two others stay active');
  await shot(page, '17-cluster-node-down');
  return o;
});

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`usage: node ui.mjs ${Object.keys(scenarios).join('|')}`);
  process.exit(2);
}
await scenarios[name]();
