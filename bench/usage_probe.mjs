// @ts-check
/**
 * Preloaded into every measured process through NODE_OPTIONS=--import=<this file>, so the
 * command line stays exactly what a job runs. Plain JavaScript on purpose: it must load before
 * any TypeScript loader, and in processes that run built JavaScript without one.
 *
 * At exit it writes `<BENCH_USAGE_FILE>.<pid>.json`: the process's own CPU time (getrusage,
 * process.resourceUsage()), its peak RSS, and the largest V8 heap / external / ArrayBuffer
 * figures seen by sampling every 50 ms (a sample cannot land inside one long synchronous step,
 * so these are lower bounds). One file per process: a process tree (a wrapper that starts Node
 * again) is summed by the bench.
 *
 * Peak RSS is VmHWM from /proc/self/status, the high-water mark of this program's own memory
 * since exec. Not getrusage's maxRSS: on Linux that keeps, across exec, the RSS the process had
 * when it was forked, i.e. its parent's (the bench's ~70 MB, or 300 MB under a 300 MB parent),
 * so a small program would read as large as whatever started it.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** VmHWM in kB, or undefined where /proc is not there. */
function peakRssKb() {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const prefix = process.env.BENCH_USAGE_FILE;
if (prefix) {
  const started = process.hrtime.bigint();
  const peak = { heapUsed: 0, external: 0, arrayBuffers: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.external = Math.max(peak.external, m.external);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
  };
  setInterval(sample, 50).unref();
  // The bench stops a run that exceeds its budget with SIGTERM: exit normally, so that the
  // usage of the partial run is still written (the programs measured set no SIGTERM handler).
  process.once('SIGTERM', () => process.exit(143));
  process.on('exit', (code) => {
    sample();
    const u = process.resourceUsage();
    const hwm = peakRssKb();
    const record = {
      pid: process.pid,
      argv: process.argv,
      exitCode: code,
      // resourceUsage: CPU in microseconds, maxRSS in kilobytes.
      userCpuMs: u.userCPUTime / 1000,
      systemCpuMs: u.systemCPUTime / 1000,
      maxRssKb: hwm ?? u.maxRSS,
      rssSource: hwm === undefined ? 'getrusage maxRSS (includes the parent at fork)' : 'VmHWM',
      peakHeapUsedBytes: peak.heapUsed,
      peakExternalBytes: peak.external,
      peakArrayBuffersBytes: peak.arrayBuffers,
      // From this module's start to exit: the process's life minus Node's own start-up.
      aliveMs: Number(process.hrtime.bigint() - started) / 1e6,
    };
    writeFileSync(`${prefix}.${process.pid}.json`, JSON.stringify(record));
  });
}
