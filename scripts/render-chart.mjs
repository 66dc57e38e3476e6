#!/usr/bin/env node
// Renders bench charts (`waha-import bench --out x.svg` or `x.html`) in headless Chromium, as a reader's
// browser would, and checks what it drew: every text inside the picture, no two texts on top of each
// other, and no text wider than the chart's own width estimate (which lays the labels out). Writes a PNG
// of each file to look at.
//
// Usage: node scripts/render-chart.mjs [--out-dir DIR] [FILE.svg|FILE.html ...]   (default: docs/bench-seed.svg)
// Needs the build (npm run build) and Chromium: /usr/bin/chromium (Debian: apt-get install chromium) or
// the path in CHROMIUM. Exits 1 when it cannot render a file or a check fails, 2 on a wrong argument.
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function fail(message, code = 1) {
  process.stderr.write(`render-chart: ${message}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
let outDir;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out-dir') {
    outDir = args[++i];
    if (!outDir) fail('--out-dir needs a directory.', 2);
  } else if (args[i] === '--help' || args[i] === '-h') {
    process.stdout.write('Usage: node scripts/render-chart.mjs [--out-dir DIR] [FILE.svg|FILE.html ...]\n');
    process.exit(0);
  } else if (/\.(svg|html)$/i.test(args[i])) files.push(path.resolve(args[i]));
  else fail(`${JSON.stringify(args[i])} is not a .svg or .html file; give charts written by bench --out.`, 2);
}
if (!files.length) files.push(path.join(root, 'docs', 'bench-seed.svg'));

const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  fail(
    `Chromium is not installed at ${chromium}. Install it (Debian/Ubuntu: apt-get install -y chromium) ` +
      'or set CHROMIUM to its path.',
  );
}
const renderModule = path.join(root, 'dist', 'bench', 'render.js');
if (!fs.existsSync(renderModule)) fail(`${renderModule} is missing: run npm run build first.`);
const { estimateTextWidth } = await import(pathToFileURL(renderModule).href);

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-chart-'));
outDir = path.resolve(outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-chart-png-')));
fs.mkdirSync(outDir, { recursive: true });

/** Runs Chromium headless on one page; resolves with its stdout, rejects with its stderr on failure. */
function chromiumRun(extra, url) {
  const profile = fs.mkdtempSync(path.join(scratch, 'profile-'));
  const child = spawn(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      '--force-device-scale-factor=1',
      `--user-data-dir=${profile}`,
      ...extra,
      url,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`chromium exited with ${code ?? signal}:\n${stderr.trim().slice(-2000)}`)),
    );
  });
}

// Runs in the page: what Chromium drew of every text of the (first) chart, and the page's size.
const MEASURE = `<script>
addEventListener('load', () => {
  const svg = document.querySelector('svg');
  const box = svg.viewBox.baseVal;
  const texts = [...svg.querySelectorAll('text')].map((t) => {
    const b = t.getBBox();
    const style = getComputedStyle(t);
    return {
      text: t.textContent,
      x: b.x, y: b.y, width: b.width, height: b.height,
      drawnWidth: t.getComputedTextLength(),
      fontSize: parseFloat(style.fontSize),
      bold: Number(style.fontWeight) >= 600,
      font: style.fontFamily,
    };
  });
  const result = {
    viewBox: { width: box.width, height: box.height },
    page: { width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight },
    texts,
  };
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(result))));
  document.body.append(out);
});
</script>`;

function pngSize(file) {
  const data = fs.readFileSync(file);
  if (data.length < 24 || data.toString('latin1', 1, 4) !== 'PNG') return null;
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20), bytes: data.length };
}

const overlaps = (a, b) =>
  a.x < b.x + b.width - 0.5 &&
  b.x < a.x + a.width - 0.5 &&
  a.y < b.y + b.height - 0.5 &&
  b.y < a.y + a.height - 0.5;

let failures = 0;
for (const file of files) {
  const name = path.basename(file);
  const problems = [];
  let source;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (error) {
    fail(`cannot read ${file}: ${error.message}`);
  }
  const isSvg = file.toLowerCase().endsWith('.svg');
  if (!/<svg[\s>]/.test(source)) fail(`${file} holds no <svg> chart.`);
  // The measuring page: the file itself (the .svg inline in a page), with the script above.
  const page = path.join(scratch, `${name}.measure.html`);
  fs.writeFileSync(
    page,
    isSvg
      ? `<!doctype html><html><body style="margin:0">${source}${MEASURE}</body></html>`
      : source.replace(/<\/html>\s*$/i, '') + MEASURE,
  );
  let measured;
  try {
    const dom = await chromiumRun(['--dump-dom'], pathToFileURL(page).href);
    const encoded = /<pre id="measured">([A-Za-z0-9+/=]+)<\/pre>/.exec(dom);
    if (!encoded) throw new Error('the page did not report its measurements');
    measured = JSON.parse(Buffer.from(encoded[1], 'base64').toString('utf8'));
  } catch (error) {
    fail(`could not render ${file} in Chromium: ${error.message}`);
  }
  const { viewBox, texts } = measured;
  for (const t of texts) {
    if (t.x < 0 || t.y < 0 || t.x + t.width > viewBox.width || t.y + t.height > viewBox.height) {
      problems.push(
        `text ${JSON.stringify(t.text)} drawn at x ${t.x.toFixed(1)}..${(t.x + t.width).toFixed(1)}, ` +
          `y ${t.y.toFixed(1)}..${(t.y + t.height).toFixed(1)}: outside the ${viewBox.width} × ${viewBox.height} chart`,
      );
    }
    const estimate = estimateTextWidth(t.text, t.fontSize, t.bold);
    if (t.drawnWidth > estimate) {
      problems.push(
        `text ${JSON.stringify(t.text)} drawn ${t.drawnWidth.toFixed(1)} px wide, estimated ${estimate.toFixed(1)}: ` +
          'estimateTextWidth in src/bench/render.ts is too small for this font',
      );
    }
  }
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (overlaps(texts[i], texts[j])) {
        problems.push(`texts ${JSON.stringify(texts[i].text)} and ${JSON.stringify(texts[j].text)} overlap`);
      }
    }
  }
  const size = isSvg ? { width: viewBox.width, height: viewBox.height } : measured.page;
  const png = path.join(outDir, `${name}.png`);
  try {
    await chromiumRun(
      [`--screenshot=${png}`, `--window-size=${Math.ceil(size.width)},${Math.ceil(size.height)}`],
      pathToFileURL(file).href,
    );
  } catch (error) {
    fail(`could not take a screenshot of ${file}: ${error.message}`);
  }
  const shot = fs.existsSync(png) ? pngSize(png) : null;
  if (!shot) fail(`Chromium wrote no PNG for ${file}.`);
  const widest = Math.max(...texts.map((t) => t.drawnWidth / estimateTextWidth(t.text, t.fontSize, t.bold)));
  process.stdout.write(
    `${name}: ${texts.length} texts in ${texts[0]?.font ?? '?'}, widest at ${(widest * 100).toFixed(0)}% ` +
      `of its estimate; ${problems.length ? `${problems.length} problem(s)` : 'all inside, none overlapping'}\n` +
      `  ${png} (${shot.width} × ${shot.height})\n`,
  );
  for (const problem of problems) process.stdout.write(`  - ${problem}\n`);
  failures += problems.length;
}
fs.rmSync(scratch, { recursive: true, force: true, maxRetries: 2 });
process.exit(failures ? 1 : 0);
