/**
 * The bench's records and how they are printed: one table of every measured step, ratios to the
 * baseline under each pair, requests by kind, and the targets as PASS/FAIL lines.
 */
import type { Counts, Traffic } from './counting_proxy.ts';
import type { Usage } from './measure.ts';

export type Tool = 'ours' | 'baseline';
export type Step = 'launch' | 'cycle' | 'post';

export type StepRecord = {
  scenario: string;
  step: Step;
  tool: Tool;
  status: 'ok' | 'failed' | 'timed-out' | 'skipped';
  /** Why it was skipped or stopped, or what to know about its figures. */
  note?: string;
  /** Runs made; the figures are those of the run with the median wall time. */
  runs: number;
  usage?: Usage;
  /** Every run's usage, when there were several. */
  allRuns?: Usage[];
  s3?: Traffic;
  rest?: Traffic;
  dagBytes?: number;
  /** What the step produced (rows processed/failed, images in the DAG...), as a check. */
  outcome?: string;
};

export type ScenarioInfo = {
  id: string;
  title: string;
  rows: number;
  images: number;
  missingRows: number;
  folders: number;
  unrelatedKeys: number;
  inputObjects: number;
};

export type Target = { name: string; verdict: 'PASS' | 'FAIL' | 'SKIP'; detail: string };

export const total = (counts: Counts | undefined) => Object.values(counts ?? {}).reduce((a, b) => a + b, 0);

const S3_SHORT: Record<string, string> = {
  ListObjectsV2: 'List',
  GetObject: 'Get',
  HeadObject: 'Head',
  PutObject: 'Put',
  CopyObject: 'Copy',
  DeleteObject: 'Del',
  DeleteObjects: 'DelMany',
  GetBucketLocation: 'Loc',
  HeadBucket: 'HeadBkt',
};

export function s3Kinds(counts: Counts | undefined): string {
  return Object.entries(counts ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${S3_SHORT[k] ?? k}:${n}`)
    .join(' ');
}

export function restKinds(counts: Counts | undefined): string {
  return Object.entries(counts ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k.replace('/api/v1', '')} ×${n}`)
    .join(', ');
}

const fmt = (n: number | undefined, digits: number) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const seconds = (ms: number | undefined) => fmt(ms === undefined ? undefined : ms / 1000, 2);
const mb = (kb: number | undefined) => fmt(kb === undefined ? undefined : kb / 1024, 1);

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0) return '-';
  const r = a / b;
  return r >= 100 ? `${r.toFixed(0)}x` : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

type Row = string[];

function pad(rows: Row[], rightAligned: Set<number>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) => r.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/** The main table: one line per measured step, a ratio line under each ours/baseline pair. */
export function table(records: StepRecord[], scenarios: ScenarioInfo[]): string {
  const rows: Row[] = [['scenario', 'step', 'tool', 'wall s', 'CPU s', 'RSS MB', 'S3 req', 'REST', 'DAG KB', 'S3 requests by kind / note']];
  const titleOf = new Map(scenarios.map((s) => [s.id, s.title]));
  let lastScenario = '';
  for (const r of records) {
    const scenario = r.scenario === lastScenario ? '' : (titleOf.get(r.scenario) ?? r.scenario);
    lastScenario = r.scenario;
    // A run stopped early still reports its CPU and RSS so far (the probe writes them on SIGTERM).
    const u = r.usage !== undefined && r.usage.processes > 0 ? r.usage : undefined;
    const note = r.status === 'ok' ? s3Kinds(r.s3?.requests) : `${r.status.toUpperCase()}: ${r.note ?? ''}`;
    const partial = r.status === 'timed-out' ? ` | ${s3Kinds(r.s3?.requests)}` : '';
    rows.push([
      scenario,
      r.step,
      r.tool + (r.runs > 1 ? ` (median of ${r.runs})` : ''),
      r.status === 'skipped' ? '-' : seconds(r.usage?.wallMs) + (r.status === 'timed-out' ? '+' : ''),
      seconds(u?.cpuMs) + (u && r.status === 'timed-out' ? '+' : ''),
      mb(u?.maxRssKb),
      r.status === 'skipped' ? '-' : String(total(r.s3?.requests)) + (r.status === 'timed-out' ? '+' : ''),
      r.status === 'skipped' ? '-' : String(total(r.rest?.requests)),
      r.dagBytes === undefined ? '-' : fmt(r.dagBytes / 1024, 0),
      note + partial,
    ]);
    if (r.tool === 'baseline') {
      const ours = records.find((o) => o.scenario === r.scenario && o.step === r.step && o.tool === 'ours');
      if (ours?.status === 'ok' && r.status === 'ok') {
        rows.push([
          '',
          '',
          '  ours/baseline',
          ratio(ours.usage?.wallMs, r.usage?.wallMs),
          ratio(ours.usage?.cpuMs, r.usage?.cpuMs),
          ratio(ours.usage?.maxRssKb, r.usage?.maxRssKb),
          ratio(total(ours.s3?.requests), total(r.s3?.requests)),
          ratio(total(ours.rest?.requests), total(r.rest?.requests)),
          ratio(ours.dagBytes, r.dagBytes),
          '',
        ]);
      } else if (ours?.status === 'ok' && r.status === 'timed-out') {
        const lt = (a: number | undefined, b: number | undefined) => (b ? `<${ratio(a, b)}` : '-');
        rows.push([
          '',
          '',
          '  ours/baseline',
          lt(ours.usage?.wallMs, r.usage?.wallMs),
          lt(ours.usage?.cpuMs, u?.cpuMs),
          '',
          lt(total(ours.s3?.requests), total(r.s3?.requests)),
          '',
          '',
          'baseline stopped early: ratios are upper bounds',
        ]);
      }
    }
  }
  return pad(rows, new Set([3, 4, 5, 6, 7, 8]));
}

/** REST requests by route, and memory detail, for each step of ours. */
export function details(records: StepRecord[]): string {
  const rows: Row[] = [['scenario', 'step', 'tool', 'peak heap MB', 'peak external MB', 'REST requests by route', 'outcome']];
  for (const r of records) {
    if (r.status === 'skipped') continue;
    const u = r.usage;
    rows.push([
      r.scenario,
      r.step,
      r.tool,
      u ? fmt(u.peakHeapUsedBytes / 2 ** 20, 1) : '-',
      u ? fmt(u.peakExternalBytes / 2 ** 20, 1) : '-',
      restKinds(r.rest?.requests) || '-',
      r.outcome ?? '',
    ]);
  }
  return pad(rows, new Set([3, 4]));
}

export function targetLines(targets: Target[]): string {
  return targets.map((t) => `${t.verdict.padEnd(4)}  ${t.name}: ${t.detail}`).join('\n');
}
