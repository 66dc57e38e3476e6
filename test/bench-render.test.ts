import { DOMParser, type Element } from '@xmldom/xmldom';
import {
  describeLimit,
  estimateTextWidth,
  renderHtml,
  renderSvg,
  renderTable,
  renderTerminal,
  tableCells,
  TERMINAL_WIDTH,
} from '../src/bench/render.js';
import type { BenchReport, BenchResult } from '../src/bench/run-bench.js';
import { formatCount, formatDuration } from '../src/import/summary.js';

/**
 * The bench's outputs for a reader: the chart explains itself (axis, legend, title with the settings,
 * every label inside the picture), the terminal tables fit TERMINAL_WIDTH columns and the complete table
 * keeps every column. Reports are built here in the shapes runBench returns; scripts/render-chart.mjs
 * checks the same chart in Chromium.
 */

function row(
  label: string,
  strategy: string,
  concurrency: number | 'auto',
  wallMs: number,
  extra: Partial<BenchResult> = {},
): BenchResult {
  return {
    label,
    strategy,
    concurrency,
    maxConcurrency: concurrency === 'auto' ? 100 : null,
    limit: concurrency === 'auto' ? { final: 41, peak: 62, lowest: 10, settled: 52 } : null,
    overloads: 0,
    latencyP50Ms: 207,
    vsBestFixed: concurrency === 'auto' ? 1.05 : null,
    chunkSize: strategy === 'chunked' ? 50 : null,
    batchSize: strategy === 'streaming' ? 2000 : null,
    wallMs,
    runsMs: [wallMs],
    transactions: 1172,
    requests: 2376,
    retries: 0,
    messages: 5683,
    messagesPerSecond: (5683 * 1000) / wallMs,
    speedupVsV1: null,
    limitRatio: wallMs / 10_600,
    checksum: 'abc',
    sameAsFirst: true,
    studyEstimateS: null,
    studyTransactions: null,
    cpuMs: 1500,
    cpuSPerMillion: null,
    vsWriteLimit: null,
    ...extra,
  };
}

function report(results: BenchResult[], extra: Partial<BenchReport> = {}): BenchReport {
  const v1 = results.find((r) => r.label === 'V1');
  for (const r of results) r.speedupVsV1 = v1 ? v1.wallMs / r.wallMs : null;
  return {
    scenario: 'seed',
    description:
      "the study's dataset (1,172 chats, 5,683 messages, 30 days) behind a WAHA answering in ~200 ms, 50 requests at once",
    machine: { cpus: 2, cpuModel: 'AMD EPYC', memoryGb: 24, node: 'v20.20.2', platform: 'linux 6.18' },
    database: 'embedded',
    waha: 'simulator',
    physicalLimitMs: 10_600,
    writeLimit: null,
    limitFormula: 'T_limit = L × (S + max(⌈R / C⌉, P))',
    limitInputs: {
      latencyMs: 200,
      capacity: 50,
      sequentialRequests: 5,
      messageRequests: 2369,
      longestChatPages: 15,
    },
    results,
    consistent: results.every((r) => r.sameAsFirst),
    ...extra,
  };
}

const SEED = report([
  row('V1', 'parallel', 20, 28_491, { studyEstimateS: 540, studyTransactions: 1172 }),
  row('A', 'parallel', 100, 13_141, { studyEstimateS: 120, studyTransactions: 1172, latencyP50Ms: 377 }),
  row('B', 'chunked', 100, 18_364, { chunkSize: 100, transactions: 12, studyEstimateS: 60 }),
  row('D', 'chunked', 50, 20_307, { transactions: 24, studyEstimateS: 90, studyTransactions: 24 }),
  row('C', 'streaming', 100, 13_589, { transactions: 3, studyEstimateS: 30, studyTransactions: 10 }),
  row('C-auto', 'streaming', 'auto', 14_298, { transactions: 3 }),
]);

const CAPACITY = report(
  [
    row('S13', 'streaming', 13, 39_400, { runsMs: [39_400, 41_000, 38_800] }),
    row('S25', 'streaming', 25, 21_600),
    row('S50', 'streaming', 50, 35_000, { overloads: 156, retries: 156, requests: 2532 }),
    row('S200', 'streaming', 200, 32_900, { overloads: 1401, retries: 1401, requests: 3777 }),
    row('S-auto', 'streaming', 'auto', 21_600, { maxConcurrency: 200, overloads: 97, vsBestFixed: 1.0 }),
    row('K25', 'chunked', 25, 28_000),
    row('K200', 'chunked', 200, 34_200, { overloads: 972, retries: 972, requests: 3348 }),
    row('K-auto', 'chunked', 'auto', 31_700, { maxConcurrency: 200, overloads: 70, vsBestFixed: 1.13 }),
  ],
  {
    scenario: 'capacity',
    description:
      'the seed dataset behind a WAHA serving 25 requests at once (~200 ms each) with room for only 5 more in its queue (beyond: 503): fixed concurrency against adaptive',
    physicalLimitMs: 20_000,
    limitInputs: {
      latencyMs: 200,
      capacity: 25,
      sequentialRequests: 5,
      messageRequests: 2369,
      longestChatPages: 15,
    },
  },
);

const WRONG = report([
  row('V1', 'parallel', 20, 900),
  row('D', 'chunked', 50, 400, { sameAsFirst: false, checksum: 'other' }),
]);

const REAL_WAHA = report(
  [
    row('V1', 'parallel', 20, 61_000, { limitRatio: null }),
    row('C-auto', 'streaming', 'auto', 25_000, { limitRatio: null }),
  ],
  {
    description: 'a real WAHA at http://waha.example:3000/',
    waha: 'real',
    database: 'external',
    physicalLimitMs: null,
    limitInputs: null,
  },
);

/** Long words everywhere, a fast row and an unlimited capacity: the layout must still hold. */
const AWKWARD = report(
  [
    row('V1', 'parallel', 20, 2_300),
    row('a-rather-long-row-label', 'streaming', 'auto', 180, { maxConcurrency: 100_000 }),
    row('Wide-WWW', 'chunked', 100_000, 95_000, { chunkSize: 100_000 }),
  ],
  {
    scenario: 'WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW',
    description: `${'MMMM '.repeat(60)}http://${'w'.repeat(150)}.example/ <angle> & "quoted" text\u0007\u009b with control characters`,
    physicalLimitMs: 150,
    limitInputs: {
      latencyMs: 5,
      capacity: Infinity,
      sequentialRequests: 3,
      messageRequests: 400,
      longestChatPages: 27,
    },
    machine: {
      cpus: 64,
      cpuModel: 'Some Very Long Processor Model Name With Many Words @ 3.60GHz',
      memoryGb: 512,
      node: 'v20.20.2',
      platform: 'linux 6.18',
    },
  },
);

const REPORTS: Record<string, BenchReport> = {
  seed: SEED,
  capacity: CAPACITY,
  wrong: WRONG,
  'real WAHA': REAL_WAHA,
  awkward: AWKWARD,
};

function parseSvg(svg: string): Element {
  const problems: string[] = [];
  const doc = new DOMParser({
    onError: (level, message) => {
      problems.push(`${level}: ${message}`);
    },
  }).parseFromString(svg, 'image/svg+xml');
  expect(problems).toEqual([]);
  const root = doc.documentElement!;
  expect(root.tagName).toBe('svg');
  return root;
}

const elements = (parent: Element, tag: string): Element[] => [...parent.getElementsByTagName(tag)];

function number(element: Element, name: string): number {
  const value = Number(element.getAttribute(name));
  expect([name, Number.isFinite(value)]).toEqual([name, true]);
  return value;
}

interface Box {
  text: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Where a text element is drawn, by the chart's own width estimate and the font's height. */
function textBox(text: Element, rootFontSize: number): Box {
  const content = text.textContent ?? '';
  const size = text.hasAttribute('font-size') ? number(text, 'font-size') : rootFontSize;
  const width = estimateTextWidth(content, size, text.getAttribute('font-weight') === 'bold');
  const x = number(text, 'x');
  const y = number(text, 'y');
  const anchor = text.getAttribute('text-anchor') || 'start';
  const left = anchor === 'end' ? x - width : anchor === 'middle' ? x - width / 2 : x;
  // DejaVu Sans reaches 0.93 em above the baseline and 0.24 em below.
  return { text: content, left, right: left + width, top: y - 0.95 * size, bottom: y + 0.25 * size };
}

function layout(svg: Element) {
  const [minX, minY, width, height] = svg.getAttribute('viewBox')!.split(' ').map(Number) as [
    number,
    number,
    number,
    number,
  ];
  expect([minX, minY, number(svg, 'width'), number(svg, 'height')]).toEqual([0, 0, width, height]);
  const fontSize = number(svg, 'font-size');
  return { width, height, boxes: elements(svg, 'text').map((t) => textBox(t, fontSize)) };
}

const byClass = (svg: Element, tag: string, cls: string): Element[] =>
  elements(svg, tag).filter((e) => (e.getAttribute('class') ?? '').split(' ').includes(cls));

describe.each(Object.entries(REPORTS))('the chart of the %s report', (_name, bench) => {
  let svg: Element;
  beforeAll(() => {
    svg = parseSvg(renderSvg(bench));
  });

  it('parses as XML, with a title naming its scenario', () => {
    expect(elements(svg, 'title')[0]!.textContent).toContain(bench.scenario);
  });

  it('draws every text inside the picture and none on top of another', () => {
    const { width, height, boxes } = layout(svg);
    const outside = boxes.filter((b) => b.left < 0 || b.right > width || b.top < 0 || b.bottom > height);
    expect(outside).toEqual([]);
    const overlapping: string[] = [];
    boxes.forEach((a, i) =>
      boxes.slice(i + 1).forEach((b) => {
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
          overlapping.push(`${a.text} | ${b.text}`);
      }),
    );
    expect(overlapping).toEqual([]);
  });

  it('has a time axis from 0 with round ticks, its unit, and room for the longest bar and the limit', () => {
    const [axis] = byClass(svg, 'g', 'axis');
    expect(axis).toBeDefined();
    const ticks = byClass(axis!, 'g', 'tick');
    expect(ticks.length).toBeGreaterThanOrEqual(3);
    const positions = ticks.map((t) => number(elements(t, 'line')[0]!, 'x1'));
    const values = ticks.map((t) => Number(elements(t, 'text')[0]!.textContent));
    expect(values.every(Number.isFinite)).toBe(true);
    expect(values[0]).toBe(0);
    for (let i = 1; i < ticks.length; i++) {
      expect(values[i]!).toBeGreaterThan(values[i - 1]!);
      // Evenly spaced values at evenly spaced places.
      expect(values[i]! - values[i - 1]!).toBeCloseTo(values[1]! - values[0]!, 6);
      expect(positions[i]! - positions[i - 1]!).toBeCloseTo(positions[1]! - positions[0]!, 0);
    }
    const longest = Math.max(bench.physicalLimitMs ?? 0, ...bench.results.map((r) => r.wallMs));
    expect(values[values.length - 1]! * 1000).toBeGreaterThanOrEqual(longest);
    expect(byClass(axis!, 'text', 'axis-title')[0]!.textContent).toMatch(/seconds/);

    // Bars and the limit line sit where the axis says their time is.
    const at = (ms: number): number =>
      positions[0]! +
      ((ms / 1000 - values[0]!) / (values[1]! - values[0]!)) * (positions[1]! - positions[0]!);
    const bars = byClass(svg, 'rect', 'bar');
    bench.results.forEach((r, i) => {
      expect(number(bars[i]!, 'x') + number(bars[i]!, 'width')).toBeCloseTo(at(r.wallMs), 0);
    });
    const [limit] = byClass(svg, 'line', 'limit');
    if (bench.physicalLimitMs === null) expect(limit).toBeUndefined();
    else expect(number(limit!, 'x1')).toBeCloseTo(at(bench.physicalLimitMs), 0);
  });

  it('has a legend for every bar colour, and for the limit line when there is one', () => {
    const [legend] = byClass(svg, 'g', 'legend');
    expect(legend).toBeDefined();
    const swatches = new Map(
      elements(legend!, 'rect').map((rect) => [rect.getAttribute('fill'), rect] as const),
    );
    const barColours = new Set(byClass(svg, 'rect', 'bar').map((bar) => bar.getAttribute('fill')));
    expect([...barColours].filter((colour) => !swatches.has(colour))).toEqual([]);
    expect(elements(legend!, 'text').length).toBe(
      elements(legend!, 'rect').length + (bench.physicalLimitMs === null ? 0 : 1),
    );
    const legendText = elements(legend!, 'text')
      .map((t) => t.textContent)
      .join(' | ');
    if (bench.physicalLimitMs !== null) {
      const [limitLine] = byClass(svg, 'line', 'limit');
      const sample = elements(legend!, 'line')[0]!;
      expect(sample.getAttribute('stroke')).toBe(limitLine!.getAttribute('stroke'));
      expect(sample.getAttribute('stroke-dasharray')).not.toBeNull();
      expect(legendText).toMatch(/physical limit/);
    }
    if (bench.results.some((r) => r.label === 'V1')) expect(legendText).toMatch(/V1.*baseline/);
  });

  it('labels every row, with its strategy, and writes its time on its bar', () => {
    const rows = byClass(svg, 'g', 'row');
    expect(rows.map((g) => g.getAttribute('data-label'))).toEqual(bench.results.map((r) => r.label));
    rows.forEach((g, i) => {
      const r = bench.results[i]!;
      const texts = elements(g, 'text').map((t) => t.textContent);
      expect(texts[0]).toBe(r.label);
      expect(texts[1]).toContain(r.strategy);
      expect(byClass(g, 'text', 'value')[0]!.textContent).toContain(formatDuration(r.wallMs));
      if (r.label === 'V1') expect(byClass(g, 'text', 'value')[0]!.textContent).toMatch(/baseline/);
      const value = byClass(g, 'text', 'value')[0]!.textContent;
      if (!r.sameAsFirst) expect(value).toMatch(/WRONG RESULT/);
      else if (r.overloads > 0) expect(value).toContain(`${formatCount(r.overloads)} overload answers`);
    });
  });

  it("names the WAHA's latency and capacity, the database and the machine", () => {
    const settings = byClass(svg, 'text', 'settings')
      .map((t) => t.textContent)
      .join(' ');
    if (bench.waha === 'simulator') {
      expect(settings).toContain(`~${bench.limitInputs!.latencyMs} ms a request`);
      expect(settings).toMatch(
        Number.isFinite(bench.limitInputs!.capacity)
          ? `${bench.limitInputs!.capacity} requests at once`
          : /unlimited/,
      );
    } else expect(settings).toContain('WAHA: a real one (its latency and capacity are not known)');
    expect(settings).toContain(`${bench.machine.cpus} CPUs (${bench.machine.cpuModel})`);
    expect(settings).toContain(bench.database === 'embedded' ? 'embedded PostgreSQL' : 'external');
    const runs = bench.results[0]!.runsMs.length;
    if (runs > 1) expect(settings).toContain(`each time the median of ${runs} runs`);
    else expect(settings).not.toContain('median');
  });
});

describe('the terminal output', () => {
  it.each(['seed', 'capacity', 'wrong', 'real WAHA'])('of the %s report fits the terminal width', (name) => {
    const tooWide = renderTerminal(REPORTS[name]!)
      .split('\n')
      .filter((line) => [...line].length > TERMINAL_WIDTH);
    expect(tooWide).toEqual([]);
  });

  it.each(Object.entries(REPORTS))(
    'of the %s report holds every value of the complete table',
    (_name, bench) => {
      const text = renderTerminal(bench);
      const { header, rows } = tableCells(bench);
      const lines = text.split('\n');
      rows.forEach((cells) => {
        const label = cells[0]!;
        const shown = lines
          .filter((line) => line.startsWith(`| ${label} `))
          .flatMap((line) => line.split('|').map((cell) => cell.trim()));
        const missing = cells
          .map((cell, column) => [header[column], cell])
          .filter(([, cell]) => cell !== '–' && !shown.includes(cell!));
        expect([label, missing]).toEqual([label, []]);
      });
    },
  );

  it('the complete Markdown table keeps every column on one row per result', () => {
    const table = renderTable(SEED);
    const header = table.split('\n').find((line) => line.startsWith('| row'))!;
    for (const column of [
      'strategy',
      'wall time',
      'vs V1',
      'vs limit',
      'DB tx',
      'WAHA requests',
      'retries',
      'msgs/s',
      'same DB',
      'study estimate',
      'limit final/peak/settled',
      'vs best fixed',
      'overloads',
      'p50 latency',
    ])
      expect(header).toContain(`| ${column} `);
    expect(table).toMatch(
      /\| C-auto +\| streaming \(auto ≤100, batch 2000\) +\| 14\.3 s +\| 1\.99x +\| 1\.35x +\| 3 +\|/,
    );
  });
});

describe('the physical limit in words', () => {
  it('names each input with its unit, not by its key', () => {
    const text = [renderTable(SEED), renderTerminal(SEED), renderSvg(SEED)].join('\n');
    const internalNames = Object.keys(SEED.limitInputs!).filter((key) => /[A-Z]/.test(key));
    expect(internalNames).toHaveLength(4);
    for (const key of internalNames) expect(text).not.toContain(key);
    const { headline, formula, inputs } = describeLimit(SEED);
    expect(headline).toContain('10.6 s');
    expect(formula).toContain('= 200 ms × (5 + max(48, 15))');
    expect(inputs).toEqual([
      'L: WAHA latency 200 ms a request',
      'C: WAHA capacity 50 requests at once',
      'S: 5 requests in a row before the first message (version and session, chat list)',
      'R: 2,369 message requests (every page of every chat)',
      'P: longest chat 15 pages',
    ]);
  });

  it('says so for a real WAHA, and counts one round for an unlimited capacity', () => {
    expect(describeLimit(REAL_WAHA)).toEqual({
      headline: expect.stringMatching(/not known for a real WAHA/),
      formula: '',
      inputs: [],
    });
    expect(describeLimit(AWKWARD).formula).toContain('= 5 ms × (3 + max(1, 27))');
    expect(describeLimit(AWKWARD).inputs).toContain('C: WAHA capacity unlimited');
  });
});

describe('the .html page', () => {
  it('holds the chart and the complete table, escaped', () => {
    const html = renderHtml(AWKWARD);
    const svg = html.slice(html.indexOf('<svg'), html.indexOf('</svg>') + '</svg>'.length);
    parseSvg(svg);
    const table = html.slice(html.indexOf('<table>'), html.indexOf('</table>') + '</table>'.length);
    const doc = new DOMParser().parseFromString(table, 'text/xml');
    const rows = elements(doc.documentElement!, 'tr');
    const { header, rows: cells } = tableCells(AWKWARD);
    expect(elements(rows[0]!, 'th').map((th) => th.textContent)).toEqual(header);
    expect(rows.slice(1).map((tr) => elements(tr, 'td').map((td) => td.textContent))).toEqual(cells);
    expect(html).not.toContain('<angle>');
    expect(html).toContain('&lt;angle&gt; &amp; &quot;quoted&quot; text\\x07\\x9b with');
  });
});
