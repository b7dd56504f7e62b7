// Request timings against the built Worker under local wrangler dev.
// Skeleton: times GET / sequentially and concurrently; add per-endpoint cases
// to `cases` below. Loopback only, bounded request counts.
//
//   node tests/support/bench.mjs [N=200] [CONCURRENCY=16]
// (scripts/bench.sh builds first; run directly only with a current build.)

import { startWorker } from './worker.mjs';

const N = Number(process.argv[2] ?? process.env.BENCH_N ?? 200);
const CONCURRENCY = Number(process.argv[3] ?? process.env.BENCH_CONCURRENCY ?? 16);

// Each case: name, and a function (worker) => Promise<Response>.
const cases = [
  { name: 'GET /', request: (w) => fetch(`${w.url}/`) },
];

async function once(w, c) {
  const res = await c.request(w);
  await res.arrayBuffer();
  return res.status;
}

async function sequential(w, c, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await once(w, c);
  return performance.now() - t0;
}

async function concurrent(w, c, n, conc) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(conc, n) }, async () => {
    while (next < n) {
      next++;
      await once(w, c);
    }
  }));
  return performance.now() - t0;
}

const w = await startWorker();
try {
  for (const c of cases) {
    const status = await once(w, c); // warm-up (also instantiates the wasm)
    for (let i = 0; i < 9; i++) await once(w, c);
    const seq = await sequential(w, c, N);
    const par = await concurrent(w, c, N, CONCURRENCY);
    console.log(
      `bench: ${c.name.padEnd(28)} status ${status}  ` +
      `sequential ${(seq / N).toFixed(2)} ms/req  ` +
      `concurrent(${CONCURRENCY}) ${(par / N).toFixed(2)} ms/req (${Math.round((N * 1000) / par)} req/s)  n=${N}`,
    );
  }
} finally {
  await w.stop();
}
