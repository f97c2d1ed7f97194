'use strict';
// node.kill: a Node.js writer killed with SIGKILL is recovered as any
// producer is: what it published is counted exactly once in /metrics, its
// unpublished batch never shows up, and the next writer takes its lane over.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { fork } = require('node:child_process');
const path = require('node:path');
const rp = require('..');
const h = require('./helpers');

const child = path.join(__dirname, 'fixtures', 'writer_child.js');

function start(ring, mode) {
  const p = fork(child, [ring, mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const first = new Promise((resolve, reject) => {
    p.once('message', resolve);
    p.once('exit', (code, sig) => reject(new Error(`writer exited early: ${code} ${sig}`)));
  });
  return { p, first };
}

function killed(p) {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) resolve(p.signalCode);
    else p.once('exit', (code, sig) => resolve(sig));
  });
}

test('SIGKILL in the middle of a batch: published samples counted exactly, the open batch never seen', async () => {
  const p = await h.startPipeline({ lanes: 2 });
  try {
    const w = start(p.ringPath, 'mid-batch');
    const msg = await w.first;
    assert.deepEqual([msg.stats.written, msg.stats.pending], [1000, 500]);
    const lane = msg.stats.lane;
    w.p.kill('SIGKILL');
    assert.equal(await killed(w.p), 'SIGKILL');
    // The kernel released the lane's lock: nobody owns it now.
    assert.equal(await h.waitFor(() => !rp.ringStats(p.ringPath).lane[lane].owned, 5000), true);
    // The next writer gets the dead one's lane (the source holds the other) and recovers its claim.
    const c = new rp.Client({ path: p.ringPath });
    assert.equal(c.stats().lane, lane);
    for (let i = 0; i < 7; i++) c.increment('node_killed', 1, { phase: 'mid' });
    c.flush();
    const st = rp.ringStats(p.ringPath).lane[lane];
    assert.equal(st.recoveredClaims, 1);
    assert.equal(st.records, 1 + 1);  // the dead writer's one published batch, and ours
    const series = 'node_killed{phase="mid"}';
    let v;
    const ok = await h.waitFor(async () => (v = h.seriesValue(await p.metrics(), series)) === 1007);
    assert.ok(ok, `${series} = ${v}, expected 1007\n${p.stderr()}`);
    // And it stays there: nothing of the abandoned 500 shows up later.
    await h.sleep(500);
    assert.equal(h.seriesValue(await p.metrics(), series), 1007);
    c.close();
  } finally {
    await p.stop();
  }
});

test('SIGKILL at a random moment of a writing loop: /metrics holds exactly what the ring holds', async () => {
  const p = await h.startPipeline({ lanes: 2 });
  try {
    // An audit reader of our own (durable: the writer waits for it, so it sees every record).
    const audit = new rp.Reader(p.ringPath, 'node-audit', { start: 'oldest' });
    let seen = 0;
    const drain = () => {
      while (audit.pollSamples((s) => { if (s.name === 'node_looped') seen += s.value; }, 4096) > 0);
    };
    const timer = setInterval(drain, 2);
    const w = start(p.ringPath, 'loop');
    const lane = (await w.first).started;
    await h.sleep(300 + Math.floor(Math.random() * 400));
    w.p.kill('SIGKILL');
    await killed(w.p);
    clearInterval(timer);
    drain();
    const { records, droppedRecords } = rp.ringStats(p.ringPath).lane[lane];
    assert.equal(droppedRecords, 0);
    assert.ok(records > 10, `only ${records} batches published`);
    // Whole batches only (100 samples each): the one being written when it died is not there.
    assert.equal(seen % 100, 0);
    // The lane's counter follows the commit by a few instructions: a kill between them leaves it one short.
    assert.ok(seen / 100 === records || seen / 100 === records + 1, `${seen} samples, ${records} records`);
    let v;
    const ok = await h.waitFor(async () => (v = h.seriesValue(await p.metrics(), 'node_looped')) === seen);
    assert.ok(ok, `node_looped = ${v}, expected ${seen}\n${p.stderr()}`);
    audit.close();
  } finally {
    await p.stop();
  }
});
