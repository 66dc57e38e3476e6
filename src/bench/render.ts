import { formatCount, formatDuration } from '../import/summary.js';
import type { BenchReport, BenchResult } from './run-bench.js';

function describeRow(r: BenchResult): string {
  const extra = r.chunkSize ? `, chunk ${r.chunkSize}` : r.batchSize ? `, batch ${r.batchSize}` : '';
  const concurrency = r.concurrency === 'auto' ? `auto ≤${r.maxConcurrency ?? '?'}` : `c${r.concurrency}`;
  return `${r.strategy} (${concurrency}${extra})`;
}

/** The comparison as a Markdown table: readable in a terminal and pasteable into the README. */
export function renderTable(report: BenchReport): string {
  // Rows with an adaptive limit, or with overloads, get the columns that explain them.
  const adaptive = report.results.some((r) => r.limit !== null || r.overloads > 0);
  const header = [
    'row',
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
    ...(adaptive ? ['limit final/peak/settled', 'vs best fixed', 'overloads', 'p50 latency'] : []),
  ];
  const rows = report.results.map((r) => [
    r.label,
    describeRow(r),
    formatDuration(r.wallMs),
    r.speedupVsV1 === null ? '–' : `${r.speedupVsV1.toFixed(2)}x`,
    r.limitRatio === null ? '–' : `${r.limitRatio.toFixed(2)}x`,
    formatCount(r.transactions),
    formatCount(r.requests),
    formatCount(r.retries),
    formatCount(Math.round(r.messagesPerSecond)),
    r.sameAsFirst ? 'yes' : 'NO',
    r.studyEstimateS === null
      ? '–'
      : `${formatDuration(r.studyEstimateS * 1000)}, ${formatCount(r.studyTransactions ?? 0)} tx`,
    ...(adaptive
      ? [
          r.limit ? `${r.limit.final} / ${r.limit.peak} / ${r.limit.settled}` : '–',
          r.vsBestFixed === null ? '–' : `${r.vsBestFixed.toFixed(2)}x`,
          formatCount(r.overloads),
          r.latencyP50Ms === null ? '–' : `${formatCount(r.latencyP50Ms)} ms`,
        ]
      : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const lines = [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
  const limit =
    report.physicalLimitMs === null
      ? 'Physical limit: not known for a real WAHA (its capacity is not known).'
      : `Physical limit: ${formatDuration(report.physicalLimitMs)} = ${report.limitFormula} with ` +
        Object.entries(report.limitInputs ?? {})
          .map(([k, v]) => `${k} ${Number.isFinite(v) ? formatCount(v) : 'unlimited'}`)
          .join(', ');
  return [
    `Scenario ${report.scenario}: ${report.description}`,
    '',
    ...lines,
    '',
    limit,
    ...writeSide(report),
  ].join('\n');
}

/** The write limit beside the fetch-side one, and what each row's importer cost in CPU. */
function writeSide(report: BenchReport): string[] {
  const lines: string[] = [];
  const w = report.writeLimit;
  if (w) {
    lines.push(
      `Write limit: ${formatCount(Math.round(w.rowsPerSecond))} rows/s = ${w.method}, ${formatCount(w.rows)} rows in ${formatDuration(w.elapsedMs)}; ` +
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

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** A horizontal bar chart of wall times with the physical limit as a line: readable without the table. */
export function renderSvg(report: BenchReport): string {
  const barHeight = 28;
  const gap = 12;
  const left = 270;
  const width = 940;
  const chartWidth = width - left - 90;
  const top = 60;
  const maxMs = Math.max(report.physicalLimitMs ?? 0, ...report.results.map((r) => r.wallMs)) * 1.05;
  const x = (ms: number): number => left + (ms / maxMs) * chartWidth;
  const height = top + report.results.length * (barHeight + gap) + 50;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">waha-import bench: ${escapeXml(report.scenario)} scenario, wall time per approach (shorter is better)</text>`,
    `<text x="16" y="44" fill="#555">${escapeXml(report.description)}</text>`,
  ];
  report.results.forEach((r, i) => {
    const y = top + i * (barHeight + gap);
    const colour = r.sameAsFirst ? (r.label === 'V1' ? '#9e9e9e' : '#2b7bb9') : '#d32f2f';
    parts.push(
      `<text x="${left - 8}" y="${y + barHeight / 2 + 4}" text-anchor="end">${escapeXml(`${r.label}  ${describeRow(r)}`)}</text>`,
      `<rect x="${left}" y="${y}" width="${Math.max(1, x(r.wallMs) - left).toFixed(1)}" height="${barHeight}" fill="${colour}"/>`,
      `<text x="${(x(r.wallMs) + 6).toFixed(1)}" y="${y + barHeight / 2 + 4}">${escapeXml(formatDuration(r.wallMs))}${r.sameAsFirst ? '' : ' WRONG RESULT'}</text>`,
    );
  });
  if (report.physicalLimitMs !== null) {
    const lx = x(report.physicalLimitMs).toFixed(1);
    const bottom = top + report.results.length * (barHeight + gap);
    parts.push(
      `<line x1="${lx}" y1="${top - 6}" x2="${lx}" y2="${bottom}" stroke="#e65100" stroke-width="2" stroke-dasharray="6 4"/>`,
      `<text x="${lx}" y="${bottom + 18}" text-anchor="middle" fill="#e65100">physical limit ${escapeXml(formatDuration(report.physicalLimitMs))}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
