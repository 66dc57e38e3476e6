import { formatCount, formatDuration } from '../import/summary.js';
import type { BenchReport, BenchResult } from './run-bench.js';

function describeRow(r: BenchResult): string {
  const extra = r.chunkSize ? `, chunk ${r.chunkSize}` : r.batchSize ? `, batch ${r.batchSize}` : '';
  const concurrency = r.concurrency === 'auto' ? `auto ≤${r.maxConcurrency ?? '?'}` : `c${r.concurrency}`;
  return `${r.strategy} (${concurrency}${extra})`;
}

const ratio = (value: number | null): string => (value === null ? '–' : `${value.toFixed(2)}x`);

interface Column {
  header: string;
  cell: (r: BenchResult) => string;
  /** Which of the terminal's tables shows it: time, work, or the adaptive rows' limit. */
  part: 'time' | 'work' | 'limit';
  /** Shown only when some row has an adaptive limit or met overloads. */
  adaptiveOnly?: boolean;
}

/** Every column of the bench table, in the order of the complete (Markdown, README) table. */
const COLUMNS: Column[] = [
  { header: 'row', cell: (r) => r.label, part: 'time' },
  { header: 'strategy', cell: describeRow, part: 'time' },
  { header: 'wall time', cell: (r) => formatDuration(r.wallMs), part: 'time' },
  { header: 'vs V1', cell: (r) => ratio(r.speedupVsV1), part: 'time' },
  { header: 'vs limit', cell: (r) => ratio(r.limitRatio), part: 'time' },
  { header: 'DB tx', cell: (r) => formatCount(r.transactions), part: 'work' },
  { header: 'WAHA requests', cell: (r) => formatCount(r.requests), part: 'work' },
  { header: 'retries', cell: (r) => formatCount(r.retries), part: 'work' },
  { header: 'msgs/s', cell: (r) => formatCount(Math.round(r.messagesPerSecond)), part: 'time' },
  { header: 'same DB', cell: (r) => (r.sameAsFirst ? 'yes' : 'NO'), part: 'time' },
  {
    header: 'study estimate',
    cell: (r) =>
      r.studyEstimateS === null
        ? '–'
        : `${formatDuration(r.studyEstimateS * 1000)}, ${formatCount(r.studyTransactions ?? 0)} tx`,
    part: 'work',
  },
  {
    header: 'limit final/peak/settled',
    cell: (r) => (r.limit ? `${r.limit.final} / ${r.limit.peak} / ${r.limit.settled}` : '–'),
    part: 'limit',
    adaptiveOnly: true,
  },
  { header: 'vs best fixed', cell: (r) => ratio(r.vsBestFixed), part: 'limit', adaptiveOnly: true },
  { header: 'overloads', cell: (r) => formatCount(r.overloads), part: 'work', adaptiveOnly: true },
  {
    header: 'p50 latency',
    cell: (r) => (r.latencyP50Ms === null ? '–' : `${formatCount(r.latencyP50Ms)} ms`),
    part: 'work',
    adaptiveOnly: true,
  },
];

/** Rows with an adaptive limit, or with overloads, get the columns that explain them. */
function columnsFor(report: BenchReport): Column[] {
  const adaptive = report.results.some((r) => r.limit !== null || r.overloads > 0);
  return COLUMNS.filter((c) => adaptive || !c.adaptiveOnly);
}

/** The complete table as header and cells: the Markdown table and the .html table are made of it. */
export function tableCells(report: BenchReport): { header: string[]; rows: string[][] } {
  const columns = columnsFor(report);
  return {
    header: columns.map((c) => c.header),
    rows: report.results.map((r) => columns.map((c) => c.cell(r))),
  };
}

function markdownTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
}

/** The limit's inputs in words, with units, by the key run-bench gives them. */
const LIMIT_INPUTS: Record<string, { symbol: string; words: (v: string) => string }> = {
  latencyMs: { symbol: 'L', words: (v) => `WAHA latency ${v} ms a request` },
  capacity: {
    symbol: 'C',
    words: (v) => `WAHA capacity ${v}${v === 'unlimited' ? '' : ' requests at once'}`,
  },
  sequentialRequests: {
    symbol: 'S',
    words: (v) => `${v} requests in a row before the first message (version and session, chat list)`,
  },
  messageRequests: { symbol: 'R', words: (v) => `${v} message requests (every page of every chat)` },
  longestChatPages: { symbol: 'P', words: (v) => `longest chat ${v} pages` },
  maxSlices: { symbol: 'M', words: (v) => `${v} time slices of one chat at once, at most` },
};

/**
 * The physical limit in words: a headline, then (for the simulator) the formula with its numbers and one
 * line per input, each with its unit.
 */
export function describeLimit(report: BenchReport): { headline: string; formula: string; inputs: string[] } {
  if (report.physicalLimitMs === null) {
    return {
      headline: 'Physical limit: not known for a real WAHA (its latency and capacity are not known).',
      formula: '',
      inputs: [],
    };
  }
  const given = report.limitInputs ?? {};
  const value = (v: number): string => (Number.isFinite(v) ? formatCount(v) : 'unlimited');
  const { latencyMs: L, capacity: C, sequentialRequests: S, messageRequests: R, longestChatPages: P } = given;
  const M = Math.max(1, given.maxSlices ?? 1);
  const numbers =
    L !== undefined && C !== undefined && S !== undefined && R !== undefined && P !== undefined
      ? ` = ${formatCount(L)} ms × (${formatCount(S)} + max(${Number.isFinite(C) ? formatCount(Math.ceil(R / C)) : R > 0 ? 1 : 0}, ${formatCount(Math.ceil(P / M))}))`
      : '';
  return {
    headline:
      `Physical limit ${formatDuration(report.physicalLimitMs)}: the least time WAHA's latency and ` +
      'capacity allow, writing counted free:',
    formula: `${report.limitFormula}${numbers}, where`,
    inputs: Object.entries(given).map(([key, v]) => {
      const known = LIMIT_INPUTS[key];
      return known ? `${known.symbol}: ${known.words(value(v))}` : `${key}: ${value(v)}`;
    }),
  };
}

/** The complete comparison as a Markdown table: every column, for the README and `--out file.md`. */
export function renderTable(report: BenchReport): string {
  const { header, rows } = tableCells(report);
  return [
    `Scenario ${report.scenario}: ${report.description}`,
    '',
    ...markdownTable(header, rows),
    '',
    ...limitMarkdown(report),
    ...writeSide(report).flatMap((line) => ['', line]),
  ].join('\n');
}

/** The write limit beside the fetch-side one, and what each row's importer cost in CPU. */
function writeSide(report: BenchReport): string[] {
  const lines: string[] = [];
  const w = report.writeLimit;
  if (w) {
    lines.push(
      `Write limit: ${formatCount(Math.round(w.rowsPerSecond))} rows/s = ${w.method}, ${formatCount(w.rows)} rows in ${formatDuration(w.elapsedMs)}` +
        (w.runsMs.length > 1
          ? ` (median of ${w.runsMs.length}: ${w.runsMs.map((ms) => formatDuration(ms)).join(', ')})`
          : '') +
        '; ' +
        'rows at ' +
        report.results.map((r) => `${r.label} ${Math.round((r.vsWriteLimit ?? 0) * 100)}%`).join(', '),
    );
  }
  if (report.results.some((r) => r.cpuSPerMillion !== null)) {
    lines.push(
      'Importer CPU (user + system) per 1,000,000 messages: ' +
        report.results
          .map((r) => `${r.label} ${r.cpuSPerMillion === null ? '–' : `${r.cpuSPerMillion.toFixed(1)} s`}`)
          .join(', '),
    );
  }
  return lines;
}

function limitMarkdown(report: BenchReport): string[] {
  const { headline, formula, inputs } = describeLimit(report);
  return formula ? [`${headline} ${formula}`, '', ...inputs.map((line) => `- ${line}`)] : [headline];
}

/** Text broken at spaces into lines that each pass `fits` (a word too long for any stands alone). */
function wrapWords(text: string, fits: (line: string) => boolean): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    const candidate = line ? `${line} ${word}` : word;
    if (line && !fits(candidate)) {
      lines.push(line);
      line = word;
    } else line = candidate;
  }
  if (line) lines.push(line);
  return lines;
}

/** Columns the terminal output keeps within. */
export const TERMINAL_WIDTH = 100;

/**
 * The comparison for a terminal: the same cells as renderTable, in up to three narrower tables (time,
 * work, and the adaptive rows' limit) that fit TERMINAL_WIDTH columns for the bench's rows; a column no
 * row has a value for is left out.
 */
export function renderTerminal(report: BenchReport): string {
  const columns = columnsFor(report);
  const hasValue = (c: Column): boolean => report.results.some((r) => c.cell(r) !== '–');
  const part = (name: Column['part'], results: BenchResult[]): string[] => {
    // Each table starts with the row's label (the time table has it as its first column already).
    const picked = columns.filter((c) => c.part === name && hasValue(c));
    const withRow = name === 'time' ? picked : [COLUMNS[0]!, ...picked];
    return markdownTable(
      withRow.map((c) => c.header),
      results.map((r) => withRow.map((c) => c.cell(r))),
    );
  };
  const adaptiveRows = report.results.filter((r) => r.limit !== null);
  const limit = describeLimit(report);
  const wrap = (text: string): string[] => wrapWords(text, (line) => line.length <= TERMINAL_WIDTH);
  return [
    ...wrap(`Scenario ${report.scenario}: ${report.description}`),
    '',
    'Wall time (median of the runs of each row):',
    ...part('time', report.results),
    '',
    'Work done:',
    ...part('work', report.results),
    ...(adaptiveRows.length && columns.some((c) => c.part === 'limit')
      ? ['', 'Adaptive concurrency (auto rows):', ...part('limit', adaptiveRows)]
      : []),
    '',
    ...wrap(limit.headline),
    ...(limit.formula ? wrap(limit.formula) : []),
    ...limit.inputs.map((line) => `  ${line}`),
    ...writeSide(report).flatMap((line) => ['', ...wrap(line)]),
  ].join('\n');
}

// --- The chart ---------------------------------------------------------------------------------------

/** Text as XML character data; control characters (XML 1.0 allows none but tab and line breaks) shown as `\x07`. */
function escapeXml(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffe\uffff]/g, (c) =>
        c.charCodeAt(0) > 0xff
          ? `\\u${c.charCodeAt(0).toString(16)}`
          : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
      )
      .replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!)
  );
}

/**
 * A generous estimate of how wide `text` is drawn, in pixels: per character, at least the advance of
 * DejaVu Sans (the widest of the common sans-serif fonts, and what Linux browsers pick), bold wider. The
 * chart lays out its text with it, so no label is cut whatever font the viewer has;
 * `scripts/render-chart.mjs` checks it against what Chromium draws.
 */
export function estimateTextWidth(text: string, fontSize: number, bold = false): number {
  let em = 0;
  for (const c of text) {
    if (" .,:;'|!ijl".includes(c)) em += 0.36;
    else if ('()[]{}frtIJ-/'.includes(c)) em += 0.46;
    else if ('mwMW%@'.includes(c)) em += 1.02;
    else if (/[A-Z]/.test(c)) em += 0.8;
    else if (/[a-z0-9]/.test(c)) em += 0.66;
    else em += 1.0;
  }
  return em * fontSize * (bold ? 1.12 : 1);
}

const FONT = 13;
const MARGIN = 16;
const COLOURS = {
  v1: '#8a8a8a',
  fixed: '#2b7bb9',
  auto: '#2e9e5b',
  wrong: '#d32f2f',
  limit: '#e65100',
  grid: '#e4e4e4',
  muted: '#555555',
};

function barColour(r: BenchResult): string {
  if (!r.sameAsFirst) return COLOURS.wrong;
  if (r.label === 'V1') return COLOURS.v1;
  return r.concurrency === 'auto' ? COLOURS.auto : COLOURS.fixed;
}

interface TextOptions {
  size?: number;
  bold?: boolean;
  anchor?: 'start' | 'middle' | 'end';
  fill?: string;
  cls?: string;
}

function textElement(x: number, y: number, content: string, o: TextOptions = {}): string {
  const attributes = [
    `x="${x.toFixed(1)}"`,
    `y="${y.toFixed(1)}"`,
    o.cls ? `class="${o.cls}"` : '',
    o.size && o.size !== FONT ? `font-size="${o.size}"` : '',
    o.bold ? 'font-weight="bold"' : '',
    o.anchor && o.anchor !== 'start' ? `text-anchor="${o.anchor}"` : '',
    o.fill ? `fill="${o.fill}"` : '',
  ].filter(Boolean);
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

/** Round tick steps (1, 2 or 5 times a power of ten seconds) giving at most 8 intervals up to `maxMs`. */
function axisTicks(maxMs: number): { stepMs: number; ticks: number[] } {
  const target = Math.max(maxMs, 1) / 8;
  const power = 10 ** Math.floor(Math.log10(target));
  const stepMs = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= target)!;
  const count = Math.ceil(maxMs / stepMs);
  return { stepMs, ticks: Array.from({ length: Math.max(1, count) + 1 }, (_, i) => i * stepMs) };
}

function tickLabel(ms: number, stepMs: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(stepMs / 1000) + 1e-9));
  return (ms / 1000).toFixed(decimals);
}

function settingsLine(report: BenchReport): string {
  const inputs = report.limitInputs ?? {};
  const m = report.machine;
  const waha =
    report.waha === 'simulator'
      ? `WAHA: the simulator, ~${formatCount(inputs.latencyMs ?? 0)} ms a request, ` +
        `${Number.isFinite(inputs.capacity ?? Infinity) ? formatCount(inputs.capacity!) : 'unlimited'} requests at once`
      : 'WAHA: a real one (its latency and capacity are not known)';
  const database =
    report.database === 'embedded'
      ? 'a scratch embedded PostgreSQL'
      : 'an external PostgreSQL (scratch schema)';
  const runs = Math.max(...report.results.map((r) => r.runsMs.length), 1);
  return (
    `${waha}; ${database}; machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb}\u00a0GB, ` +
    `Node ${m.node}, ${m.platform}${runs > 1 ? `; each time the median of ${runs} runs` : ''}.`
  );
}

function valueLabel(r: BenchResult, hasV1: boolean): string {
  const time = formatDuration(r.wallMs);
  if (!r.sameAsFirst) return `${time}: WRONG RESULT, a different database`;
  const notes: string[] = [];
  if (r.label === 'V1') notes.push('V1: the baseline');
  else if (hasV1 && r.speedupVsV1 !== null) notes.push(`${r.speedupVsV1.toFixed(2)}× V1's speed`);
  else if (r.vsBestFixed !== null) notes.push(`${r.vsBestFixed.toFixed(2)}× the best fixed row's time`);
  if (r.overloads > 0) notes.push(`${formatCount(r.overloads)} overload answers`);
  return [time, ...notes].join(', ');
}

/**
 * A horizontal bar chart of wall times, readable without the README: a title naming the scenario and
 * its settings, the machine, a time axis with ticks and unit, a legend, each row's label and strategy,
 * its time on its bar, V1 in grey as the baseline and the physical limit as a dashed line. Every text is
 * placed with estimateTextWidth, so none runs past the picture.
 */
export function renderSvg(report: BenchReport): string {
  const results = report.results;
  const hasV1 = results.some((r) => r.label === 'V1');
  const rowHeight = 42;
  const barHeight = 24;
  const plotWidth = 560;
  const labelWidth = Math.max(
    ...results.map((r) =>
      Math.max(estimateTextWidth(r.label, FONT, true), estimateTextWidth(describeRow(r), 11)),
    ),
  );
  const left = MARGIN + labelWidth + 12;
  const maxMs = Math.max(report.physicalLimitMs ?? 0, ...results.map((r) => r.wallMs));
  const { stepMs, ticks } = axisTicks(maxMs);
  const axisMs = ticks[ticks.length - 1]!;
  const x = (ms: number): number => left + (ms / axisMs) * plotWidth;
  const values = results.map((r) => valueLabel(r, hasV1));
  const valuesRight = Math.max(
    ...results.map((r, i) => x(r.wallMs) + 8 + estimateTextWidth(values[i]!, 12, !r.sameAsFirst)),
  );

  // The paragraphs above and below the plot, wrapped to the picture's width: a word too long for any
  // line (a URL) widens the picture instead.
  type Block = { text: string; size: number; indent?: number } & TextOptions;
  const title = `waha-import bench, scenario "${report.scenario}": the wall time of each row`;
  const header: Block[] = [
    { text: title, size: 16, bold: true, cls: 'title' },
    { text: report.description, size: FONT, fill: '#333333' },
    { text: settingsLine(report), size: 12, fill: COLOURS.muted, cls: 'settings' },
  ];
  const limit = describeLimit(report);
  const note = { size: 12, fill: COLOURS.muted, cls: 'footnote' };
  const footer: Block[] = [
    { ...note, text: limit.headline },
    ...(limit.formula ? [{ ...note, text: limit.formula }] : []),
    ...limit.inputs.map((text) => ({ ...note, text, indent: 16 })),
    {
      ...note,
      text: report.consistent
        ? 'Every row left the same database as the first (a checksum of the ordered rows).'
        : 'Rows in red left a different database from the first row: their result is wrong, however fast.',
      fill: report.consistent ? COLOURS.muted : COLOURS.wrong,
    },
  ];
  const longestWord = Math.max(
    ...[...header, ...footer].flatMap((b) =>
      b.text.split(' ').map((word) => (b.indent ?? 0) + estimateTextWidth(word, b.size, b.bold)),
    ),
  );
  const width = Math.ceil(
    Math.max(760, left + plotWidth + MARGIN + 12, valuesRight + MARGIN, longestWord + 2 * MARGIN),
  );

  const parts: string[] = [];
  let y = MARGIN;
  const paragraph = (b: Block): void => {
    const indent = b.indent ?? 0;
    const fits = (l: string): boolean => indent + estimateTextWidth(l, b.size, b.bold) <= width - 2 * MARGIN;
    for (const line of wrapWords(b.text, fits)) {
      y += b.size * 1.4;
      parts.push(textElement(MARGIN + indent, y, line, b));
    }
  };
  header.forEach(paragraph);

  // The legend: what each colour and the dashed line mean; entries wrap onto further lines.
  const entries: Array<{ mark: 'bar' | 'line'; colour: string; text: string }> = [];
  if (hasV1)
    entries.push({ mark: 'bar', colour: COLOURS.v1, text: "V1, the study's importer: the baseline" });
  if (results.some((r) => r.sameAsFirst && r.label !== 'V1' && r.concurrency !== 'auto'))
    entries.push({ mark: 'bar', colour: COLOURS.fixed, text: 'fixed concurrency' });
  if (results.some((r) => r.sameAsFirst && r.concurrency === 'auto'))
    entries.push({ mark: 'bar', colour: COLOURS.auto, text: 'adaptive concurrency (auto)' });
  if (results.some((r) => !r.sameAsFirst))
    entries.push({ mark: 'bar', colour: COLOURS.wrong, text: 'left a different database: wrong' });
  if (report.physicalLimitMs !== null)
    entries.push({
      mark: 'line',
      colour: COLOURS.limit,
      text: "physical limit: the least time WAHA's latency and capacity allow",
    });
  y += 10;
  const legend: string[] = [];
  let lx = MARGIN;
  let lineY = y + 14;
  for (const entry of entries) {
    const entryWidth = 22 + estimateTextWidth(entry.text, 12) + 18;
    // Each entry is far narrower than the narrowest picture (760 px), so a line holds at least one.
    if (lx > MARGIN && lx + entryWidth - 18 > width - MARGIN) {
      lx = MARGIN;
      lineY += 20;
    }
    legend.push(
      entry.mark === 'bar'
        ? `<rect x="${lx}" y="${lineY - 11}" width="14" height="14" fill="${entry.colour}"/>`
        : `<line x1="${lx}" y1="${lineY - 4}" x2="${lx + 16}" y2="${lineY - 4}" stroke="${entry.colour}" stroke-width="2" stroke-dasharray="5 3"/>`,
      textElement(lx + 22, lineY, entry.text, { size: 12 }),
    );
    lx += entryWidth;
  }
  parts.push(`<g class="legend">`, ...legend, `</g>`);
  y = lineY + 16;

  // Room above the bars for the limit's label, then the rows.
  const limitLabelY = y + 16;
  const plotTop = report.physicalLimitMs === null ? y + 8 : limitLabelY + 8;
  const plotBottom = plotTop + results.length * rowHeight;
  const grid = ticks.map(
    (t) =>
      `<line x1="${x(t).toFixed(1)}" y1="${plotTop}" x2="${x(t).toFixed(1)}" y2="${plotBottom}" stroke="${COLOURS.grid}"/>`,
  );
  parts.push(`<g class="grid">`, ...grid, `</g>`);
  results.forEach((r, i) => {
    const top = plotTop + i * rowHeight;
    const barTop = top + (rowHeight - barHeight) / 2;
    const end = x(r.wallMs);
    parts.push(
      `<g class="row" data-label="${escapeXml(r.label)}">`,
      textElement(left - 12, top + 18, r.label, { bold: true, anchor: 'end', cls: 'label' }),
      textElement(left - 12, top + 33, describeRow(r), { size: 11, anchor: 'end', fill: COLOURS.muted }),
      `<rect class="bar" x="${left}" y="${barTop}" width="${Math.max(1, end - left).toFixed(1)}" height="${barHeight}" fill="${barColour(r)}"/>`,
      textElement(end + 8, barTop + barHeight / 2 + 4, values[i]!, {
        size: 12,
        bold: !r.sameAsFirst,
        fill: r.sameAsFirst ? '#222222' : COLOURS.wrong,
        cls: 'value',
      }),
      `</g>`,
    );
  });

  if (report.physicalLimitMs !== null) {
    const limitX = x(report.physicalLimitMs);
    const label = `physical limit ${formatDuration(report.physicalLimitMs)}`;
    const half = estimateTextWidth(label, 12, true) / 2;
    const labelX = Math.min(Math.max(limitX, MARGIN + half), width - MARGIN - half);
    parts.push(
      `<line class="limit" x1="${limitX.toFixed(1)}" y1="${plotTop - 4}" x2="${limitX.toFixed(1)}" y2="${plotBottom}" stroke="${COLOURS.limit}" stroke-width="2" stroke-dasharray="6 4"/>`,
      textElement(labelX, limitLabelY, label, {
        size: 12,
        bold: true,
        anchor: 'middle',
        fill: COLOURS.limit,
      }),
    );
  }

  const axis = [
    `<line x1="${left}" y1="${plotBottom}" x2="${left + plotWidth}" y2="${plotBottom}" stroke="#333333"/>`,
    ...ticks.map((t) =>
      [
        `<g class="tick">`,
        `<line x1="${x(t).toFixed(1)}" y1="${plotBottom}" x2="${x(t).toFixed(1)}" y2="${plotBottom + 5}" stroke="#333333"/>`,
        textElement(x(t), plotBottom + 19, tickLabel(t, stepMs), { size: 12, anchor: 'middle' }),
        `</g>`,
      ].join(''),
    ),
    textElement(left + plotWidth / 2, plotBottom + 38, 'wall time in seconds (shorter is better)', {
      size: 12,
      anchor: 'middle',
      cls: 'axis-title',
    }),
  ];
  parts.push(`<g class="axis">`, ...axis, `</g>`);
  y = plotBottom + 44;

  footer.forEach(paragraph);
  const height = Math.ceil(y + MARGIN);

  return (
    [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" font-size="${FONT}">`,
      `<title>${escapeXml(title)}</title>`,
      `<rect width="100%" height="100%" fill="white"/>`,
      ...parts,
      '</svg>',
    ].join('\n') + '\n'
  );
}

/** The chart (which explains itself and the limit) and the complete table below it, as one HTML page. */
export function renderHtml(report: BenchReport): string {
  const { header, rows } = tableCells(report);
  const cells = (tag: string, values: string[]): string =>
    `<tr>${values.map((v) => `<${tag}>${escapeXml(v)}</${tag}>`).join('')}</tr>`;
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<meta charset="utf-8">',
    `<title>waha-import bench: ${escapeXml(report.scenario)}</title>`,
    '<style>body{font-family:"DejaVu Sans",sans-serif;font-size:13px;margin:0}' +
      'table{border-collapse:collapse;margin:0 16px 16px}th,td{border:1px solid #ccc;padding:3px 8px;' +
      'text-align:right;white-space:nowrap}th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}</style>',
    renderSvg(report).trim(),
    '<table>',
    cells('th', header),
    ...rows.map((row) => cells('td', row)),
    '</table>',
    '</html>',
    '',
  ].join('\n');
}
