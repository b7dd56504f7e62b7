#!/usr/bin/env node
// Builds the admin console (static assets the Worker serves at /admin from its assets binding):
//   console/src/main.js  → build/console/admin/app.js   (esbuild bundle, minified, ES2022)
//   console/index.html   → build/console/admin/index.html
//   console/app.css      → build/console/admin/app.css
//   api/openapi.json     → build/console/openapi.json    (when it exists)
// Idempotent and quiet: prints nothing on success, the esbuild errors on failure (exit 1).
//
//   node scripts/build-console.mjs

import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'build', 'console');
const ADMIN = path.join(OUT, 'admin');

/** Copies `from` to `to` when `from` exists; returns whether it did. */
async function copyIfPresent(from, to) {
  try {
    await fs.copyFile(from, to);
    return true;
  } catch (e) {
    if (e.code === 'ENOENT') return false;
    throw e;
  }
}

async function main() {
  await fs.mkdir(ADMIN, { recursive: true });
  try {
    await esbuild.build({
      entryPoints: [path.join(ROOT, 'console', 'src', 'main.js')],
      outfile: path.join(ADMIN, 'app.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      sourcemap: false,
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
    });
  } catch (e) {
    const messages = await esbuild.formatMessages(e.errors ?? [], { kind: 'error', color: false });
    process.stderr.write(messages.join('') || `${e.stack ?? e}\n`);
    process.stderr.write('build-console: esbuild FAILED\n');
    process.exit(1);
  }
  await fs.copyFile(path.join(ROOT, 'console', 'index.html'), path.join(ADMIN, 'index.html'));
  await fs.copyFile(path.join(ROOT, 'console', 'app.css'), path.join(ADMIN, 'app.css'));
  const copied = await copyIfPresent(path.join(ROOT, 'api', 'openapi.json'), path.join(OUT, 'openapi.json'));
  if (!copied) await fs.rm(path.join(OUT, 'openapi.json'), { force: true });
}

await main();
