/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time by function
 * and by module (an npm package, a file of lib/, Node's internals, GC).
 */
import { readFileSync } from 'node:fs';

type ProfileNode = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

export type ProfileSummary = {
  totalMs: number;
  byFunction: Array<{ name: string; ms: number }>;
  byModule: Array<{ name: string; ms: number }>;
};

export function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) {
    // The last node_modules/ segment names the package the code belongs to.
    const all = [...url.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
    return all.at(-1)![1]!;
  }
  const local = /\/((?:lib|bench|test|scripts)\/[^/?]+|cog_pipeline\.[tj]s)/.exec(url);
  return local ? local[1]! : url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, top = 12): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const mod = moduleOf(url, functionName);
    const name = `${functionName || '(anonymous)'}  [${mod}${url === '' ? '' : `:${lineNumber + 1}`}]`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000 }));
  return { totalMs: (profile.endTime - profile.startTime) / 1000, byFunction: sorted(byFunction), byModule: sorted(byModule) };
}

export function formatSummary(title: string, s: ProfileSummary): string {
  const pct = (ms: number) => `${((100 * ms) / s.totalMs).toFixed(1).padStart(5)}%`;
  const lines = [`${title}: ${(s.totalMs / 1000).toFixed(2)} s profiled`, '  self time by module:'];
  for (const m of s.byModule) lines.push(`    ${pct(m.ms)} ${(m.ms / 1000).toFixed(2).padStart(6)} s  ${m.name}`);
  lines.push('  self time by function:');
  for (const f of s.byFunction) lines.push(`    ${pct(f.ms)} ${(f.ms / 1000).toFixed(2).padStart(6)} s  ${f.name}`);
  return lines.join('\n');
}
