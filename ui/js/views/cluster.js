// cluster.js - every node (state, zone, version, primary, heartbeat age,
// cache hit ratio), the storage (copies per binary, under-replicated,
// repair, scrub and GC), the plugins' jobs; refreshed every REFRESH_MS.
import { session, get } from '../api.js';
import { h, mount, note, table } from '../dom.js';
import { age, date, num, bytes } from '../util.js';

export const REFRESH_MS = 2000;

export async function render(main) {
  const status = h('p', { class: 'muted', 'aria-live': 'off' });
  const nodes = h('section', { 'aria-label': 'Nodes' });
  const storage = h('section', { 'aria-label': 'Storage' });
  const plugins = h('section', { 'aria-label': 'Plugins' });
  const msgs = h('div', { class: 'msgs', 'aria-live': 'polite' });
  main.append(h('h1', { text: 'Cluster' }), status, msgs, nodes, storage, plugins);
  let timer = null;
  let stopped = false;

  async function tick() {
    try {
      const [c, p] = await Promise.all([get('/api/system/cluster'), get('/api/plugins').catch(() => null)]);
      if (stopped) return;
      draw(c, p);
      mount(msgs);
      status.textContent = `Updated ${new Date().toLocaleTimeString()}${c.answeredBy ? `, answered by ${c.answeredBy}` : ''}; refreshes every ${REFRESH_MS / 1000} s.`;
    } catch (e) {
      if (stopped) return;
      mount(msgs, note('error', `Cannot read the cluster state: ${e.message}`));
    }
    if (!stopped) timer = setTimeout(tick, REFRESH_MS);
  }

  function draw(c, p) {
    const list = c.nodes || [];
    const full = session.admin;
    const cols = [
      { label: 'Node', cell: (n) => h('span', { class: 'mono', text: n.id }) },
      { label: 'State', cell: (n) => h('span', { class: `state ${n.state}`, 'data-node': n.id, text: n.state }) },
    ];
    if (full) {
      cols.push(
        { label: 'Primary', cell: (n) => (n.id === c.primary ? h('span', { class: 'badge', text: 'primary' }) : '') },
        { label: 'Zone', cell: (n) => n.zone || '' },
        { label: 'Version', cell: (n) => n.version || '' },
        { label: 'Heartbeat', class: 'num', cell: (n) => `${age(n.heartbeatAgeMs)} ago` },
        { label: 'Cache hits', class: 'num', cell: (n) => `${(100 * (n.cacheHitRatio || 0)).toFixed(1)} %` },
        { label: 'Address', cell: (n) => h('span', { class: 'mono', text: n.url || '' }) },
      );
    } else {
      cols.push({ label: 'Address', cell: (n) => h('span', { class: 'mono', text: n.url || '' }) });
    }
    mount(nodes, h('h2', { text: 'Nodes' }),
      c.clustered === false ? h('p', { class: 'muted', text: 'A single node (no cluster).' }) : null,
      list.length ? table(cols, list, { 'aria-label': 'Nodes', id: 'nodes' }) : null,
      full && c.downAfterMs ? h('p', { class: 'muted', text: `A node is down when its heartbeat is older than ${age(c.downAfterMs)}.` }) : null);
    const s = c.storage;
    if (!full || !s) {
      mount(storage);
    } else {
      const copies = Object.entries(s.copies || {}).filter(([, v]) => v > 0);
      const task = (name, t, extra) => h('tr', {}, h('th', { scope: 'row', text: name }),
        h('td', { text: t.running ? 'running' : 'idle' }), h('td', { class: 'num', text: t.runs !== undefined ? num(t.runs) : '' }),
        h('td', { text: t.lastRun ? date(t.lastRun) : 'never' }), h('td', { text: extra }));
      mount(storage, h('h2', { text: 'Storage' }),
        h('dl', { class: 'facts wide' },
          h('dt', { text: 'Binaries' }), h('dd', { text: num(s.binaries) }),
          h('dt', { text: 'Redundancy' }), h('dd', { text: `${s.redundancy} copies (at least ${s.lenientLimit} to accept an upload)` }),
          h('dt', { text: 'Copies per binary' }), h('dd', { id: 'copies' }, copies.length ? copies.map(([k, v]) => h('span', { class: 'badge', 'data-copies': k, text: `${k} cop${k === '1' ? 'y' : 'ies'}: ${num(v)}` })) : 'none'),
          h('dt', { text: 'Under-replicated' }), h('dd', { class: s.underReplicated ? 'warn' : '', text: num(s.underReplicated) }),
          h('dt', { text: 'Unavailable' }), h('dd', { class: s.unavailable ? 'bad' : '', text: num(s.unavailable) }),
          h('dt', { text: 'Over-replicated' }), h('dd', { text: num(s.overReplicated) })),
        h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Storage tasks' },
          h('thead', {}, h('tr', {}, ['Task', 'Now', 'Runs', 'Last run (this node)', 'Progress'].map((x) => h('th', { scope: 'col', text: x })))),
          h('tbody', {},
            task('Repair', s.repair || {}, `${num((s.repair || {}).copied)} copied, ${num((s.repair || {}).trimmed)} trimmed`),
            task('Scrub', s.scrub || {}, `${num((s.scrub || {}).files)} files, ${bytes((s.scrub || {}).bytes || 0)} checked, ${num((s.scrub || {}).bad)} bad`),
            task('Garbage collection', s.gc || {}, `${num((s.gc || {}).filesDeleted)} files, ${bytes((s.gc || {}).bytesFreed || 0)} freed`)))));
    }
    if (!p) {
      mount(plugins);
      return;
    }
    const jobs = p.jobs || [];
    mount(plugins, h('h2', { text: 'Plugins' }),
      p.executions && p.executions.length ? h('p', {}, 'Executions: ', p.executions.map((x) => h('span', { class: 'badge', text: `${x.plugin}.${x.name}${x.admin ? ' (admin)' : ''}` }))) : h('p', { class: 'muted', text: 'No executions.' }),
      full ? (jobs.length ? table([
        { label: 'Job', cell: (j) => h('span', { class: 'mono', text: `${j.plugin}.${j.name}` }) },
        { label: 'Where', cell: (j) => j.where },
        { label: 'Schedule', cell: (j) => (j.cron ? j.cron : `every ${j.interval} s`) },
        { label: 'Runs', class: 'num', cell: (j) => num(j.runs || 0) },
        { label: 'Last run', cell: (j) => (j.lastRun ? `${date(j.lastRun)} on ${j.lastNode || '?'}` : 'never') },
        { label: 'Last error', cell: (j) => (j.lastError ? h('span', { class: 'bad', text: j.lastError }) : '') },
      ], jobs, { 'aria-label': 'Plugin jobs' }) : h('p', { class: 'muted', text: 'No jobs.' })) : null,
      full && p.plugins && p.plugins.length ? h('p', { class: 'muted' }, `${p.plugins.length} plugin${p.plugins.length === 1 ? '' : 's'} installed: `,
        p.plugins.map((x) => h('span', { class: 'badge', text: x.name }))) : null);
  }

  await tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
