// The peer side of the benchmark: PouchDB 9 on Node, the tablet's replica
// on disk, replicating from an express-pouchdb server on loopback.
//
//   node pouch.mjs --docs FILE [--runs N] [--dir DIR] [--batch-size N]  # N runs on its own
//   node pouch.mjs --docs FILE --stdin [--dir DIR] [--batch-size N]     # one run per "run" line on stdin (peer_test.go)
//   node pouch.mjs server --docs FILE --dir DIR         # the server process (started by the above)
//
// FILE is JSON Lines, one PouchDB document per line, written by peer_test.go
// from the very changes it loads into rasoatd (one document per entity:
// household or member; see docs in peer_test.go for how the model maps).
//
// The server is its own Node process, as rasoatd is its own process: a
// single Node event loop holding both ends would make them take turns.
// Both databases are PouchDB's on-disk adapter for Node ("leveldb", over
// leveldown): the server's under DIR/server, each replica a fresh DIR/replica-N.
//
// A run is the two scenarios of the benchmark on one new empty replica:
//   first: local.replicate.from(server), timed, until every document is in;
//   edits: ten household documents get a new housing.floorAreaM2 on the
//          server (untimed, over HTTP), then local.replicate.from(server)
//          again, timed: the replica's incremental pull of the ten edits.
// Each run prints one JSON line on stdout (wall times in ms, and the CPU
// time each process used meanwhile); everything else goes to stderr.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import PouchDB from 'pouchdb';
import express from 'express';
import expressPouchDB from 'express-pouchdb';

const EDITED = 10;

function args(argv) {
  const out = { role: 'replica', runs: 5, stdin: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === 'server') out.role = 'server';
    else if (a === '--stdin') out.stdin = true;
    else if (a === '--docs') out.docs = argv[++i];
    else if (a === '--dir') out.dir = argv[++i];
    else if (a === '--runs') out.runs = Number(argv[++i]);
    else if (a === '--batch-size') out.batchSize = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.docs) throw new Error('--docs FILE is required');
  return out;
}

function readDocs(file) {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

// du: bytes under a directory, and the file names' extensions seen there.
function du(dir) {
  let bytes = 0;
  const kinds = new Set();
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath ?? e.path, e.name);
    bytes += statSync(p).size;
    const dot = e.name.lastIndexOf('.');
    kinds.add(dot > 0 ? e.name.slice(dot) : e.name.replace(/-?\d+$/, ''));
  }
  return { bytes, kinds: [...kinds].sort() };
}

// serverCpuMs: the CPU time (user + system) the server process has used,
// from /proc (Linux; clock ticks of 10 ms).
function serverCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

function ownCpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function gc() {
  if (globalThis.gc) globalThis.gc();
}

// ---- server process --------------------------------------------------------

async function server(opt) {
  const Pouch = PouchDB.defaults({ prefix: join(opt.dir, 'server') + '/' });
  const db = new Pouch('commune');
  const docs = readDocs(opt.docs);
  for (let i = 0; i < docs.length; i += 1000) {
    const res = await db.bulkDocs(docs.slice(i, i + 1000));
    const bad = res.find((r) => r.error);
    if (bad) throw new Error(`loading the server: ${JSON.stringify(bad)}`);
  }
  const info = await db.info();
  const app = express();
  // minimumForPouchDB: the routes replication needs, and no more (no auth,
  // no config or log files): the fastest express-pouchdb serves.
  app.use('/', expressPouchDB(Pouch, { mode: 'minimumForPouchDB', inMemoryConfig: true }));
  const srv = app.listen(0, '127.0.0.1', () => {
    const { port } = srv.address();
    const disk = du(join(opt.dir, 'server'));
    console.log(JSON.stringify({
      event: 'listening', port, docs: info.doc_count,
      adapter: info.adapter, backend: info.backend_adapter, diskBytes: disk.bytes, files: disk.kinds,
    }));
  });
  process.stdin.resume(); // exit with the parent: stdin closes
  process.stdin.on('end', () => process.exit(0));
}

// ---- replica process -------------------------------------------------------

function startServer(opt) {
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'server', '--docs', opt.docs, '--dir', opt.dir], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (l) => resolve({ child, hello: JSON.parse(l) }));
    child.once('exit', (code) => reject(new Error(`pouch server exited with ${code} before listening`)));
  });
}

async function main() {
  const opt = args(process.argv.slice(2));
  opt.dir = opt.dir ?? mkdtempSync(join(tmpdir(), 'peerbench-pouch-'));
  mkdirSync(join(opt.dir, 'server'), { recursive: true });
  if (opt.role === 'server') return server(opt);

  const docs = readDocs(opt.docs);
  const edited = docs.filter((d) => d.type === 'household').slice(0, EDITED).map((d) => d._id);
  const { child, hello } = await startServer(opt);
  const remote = new PouchDB(`http://127.0.0.1:${hello.port}/commune`);
  console.log(JSON.stringify({
    event: 'ready', node: process.version, pouchdb: PouchDB.version, batchSize: opt.batchSize ?? 0, server: hello,
  }));

  // PouchDB's defaults (batches of 100 documents) unless --batch-size.
  const ropts = opt.batchSize > 0 ? { batch_size: opt.batchSize } : {};
  let n = 0;
  async function run() {
    n++;
    const path = join(opt.dir, `replica-${n}`);
    const local = new PouchDB(path);

    gc();
    let own = ownCpuMs(), srv = serverCpuMs(child.pid);
    let t = performance.now();
    const first = await local.replicate.from(remote, ropts);
    const firstMs = performance.now() - t;
    const firstCpuMs = ownCpuMs() - own, firstServerCpuMs = serverCpuMs(child.pid) - srv;
    if (first.docs_written !== docs.length) {
      throw new Error(`first sync wrote ${first.docs_written} documents, want ${docs.length}`);
    }
    const info = await local.info();
    const disk = du(path);

    // Ten households edited on the server, one field each.
    const got = await remote.allDocs({ keys: edited, include_docs: true });
    const changed = got.rows.map((r) => ({ ...r.doc, housing: { ...r.doc.housing, floorAreaM2: 20 + n } }));
    const put = await remote.bulkDocs(changed);
    if (put.some((r) => r.error)) throw new Error(`editing on the server: ${JSON.stringify(put)}`);

    gc();
    own = ownCpuMs();
    srv = serverCpuMs(child.pid);
    t = performance.now();
    const inc = await local.replicate.from(remote, ropts);
    const editsMs = performance.now() - t;
    const editsCpuMs = ownCpuMs() - own, editsServerCpuMs = serverCpuMs(child.pid) - srv;
    if (inc.docs_written !== EDITED) {
      throw new Error(`incremental sync wrote ${inc.docs_written} documents, want ${EDITED}`);
    }
    await local.destroy();
    console.log(JSON.stringify({
      run: n, firstMs, editsMs, firstCpuMs, firstServerCpuMs, editsCpuMs, editsServerCpuMs, docs: first.docs_written,
      adapter: info.adapter, backend: info.backend_adapter, diskBytes: disk.bytes, files: disk.kinds,
    }));
  }

  if (opt.stdin) {
    for await (const line of createInterface({ input: process.stdin })) {
      if (line.trim() === 'run') await run();
      else if (line.trim() === 'quit') break;
    }
  } else {
    for (let i = 0; i < opt.runs; i++) await run();
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin.end();
  await exited;
  rmSync(opt.dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
