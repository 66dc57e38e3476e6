import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * What `npm pack` (and so `npm install -g` of the tarball) ships: the CLI, its compiled code with the
 * simulator `--simulate` needs, the README, the licence and the config example; none of the sources, tests or CI files.
 * `npm test` builds dist first, so the list is the one a release would have.
 */

interface PackResult {
  files: Array<{ path: string }>;
}

it('the package holds the CLI and its compiled code, and nothing of the sources or tests', () => {
  const output = execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const [pack] = JSON.parse(output) as PackResult[];
  const paths = pack!.files.map((f) => f.path).sort();
  for (const needed of [
    'package.json',
    'README.md',
    'LICENSE',
    '.importrc.example',
    'bin/waha-import.js',
    'dist/cli/main.js',
    'dist/sim/server.js',
    'dist/db/migrate.js',
  ]) {
    expect(paths).toContain(needed);
  }
  expect(paths.filter((p) => /^(src|test|\.ci|docs|examples|scripts|node_modules)\//.test(p))).toEqual([]);

  const manifest = JSON.parse(fs.readFileSync('package.json', 'utf8')) as {
    bin: Record<string, string>;
    engines: { node: string };
  };
  expect(manifest.bin['waha-import']).toBe('bin/waha-import.js');
  expect(fs.readFileSync('bin/waha-import.js', 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  // Node 20 is what the machines this is for run.
  expect(manifest.engines.node).toBe('>=20.10');
});
