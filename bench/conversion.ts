/**
 * `npm run bench:conversion`: time (wall and CPU) and size of converting each test fixture with
 * submit/generate_cogs.sh, beside the Python project's GDAL commands (its generate_cogs.sh:
 * `gdal_translate IN tmp.tif -of COG -co compress=lzw`, then a quality-80 JPEG of the COG, all
 * bands for a band count of 1 or 3, else `-b 1 -b 2 -b 3`, the band count from the manifest),
 * and whether both wrote the same bytes.
 * Prints a table and writes bench/conversion-results.json. `-- --cpus 1` runs it as on a one-CPU
 * job slot; `-- --script FILE` times another version of the script.
 *
 * The fixtures are made here with GDAL, at run time, from pixel formulas (no downloads); the
 * tests (test/generate_cogs.test.ts) convert the same ones.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const SCRIPT = fileURLToPath(new URL('../submit/generate_cogs.sh', import.meta.url));
export const OFFICE_IMAGES = fileURLToPath(new URL('../test/fixtures/images/', import.meta.url));
const RESULTS = fileURLToPath(new URL('./conversion-results.json', import.meta.url));

/** GDAL writes no .aux.xml side files for the commands run here. */
export const GDAL_ENV = { ...process.env, GDAL_PAM_ENABLED: 'NO' };

export function gdal(command: string, args: string[], cwd?: string): string {
  return execFileSync(command, args, { cwd, env: GDAL_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

type SampleType = 'Byte' | 'UInt16' | 'Float32' | 'Float64';
const BYTES: Record<SampleType, number> = { Byte: 1, UInt16: 2, Float32: 4, Float64: 8 };

export interface RasterSpec {
  width: number;
  height: number;
  type: SampleType;
  /** One formula per band: the value of the pixel at column x, row y. */
  bands: Array<(x: number, y: number) => number>;
  colorInterp?: string[];
  nodata?: number;
  /** A colour table for band 1 (which becomes a palette band): [r, g, b] entries. */
  palette?: Array<[number, number, number]>;
  /** Georeferenced in EPSG:3071 (Wisconsin TM), 1 m pixels, unless false. */
  georeferenced?: boolean;
  creationOptions?: string[];
}

/** Writes a GeoTIFF with exactly the given pixels: raw bytes described by a VRT, then gdal_translate. */
export function writeRaster(file: string, spec: RasterSpec): string {
  const { width, height, type } = spec;
  const size = BYTES[type];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'raster-'));
  try {
    const raw = Buffer.alloc(width * height * size * spec.bands.length);
    spec.bands.forEach((formula, b) => {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const at = ((b * height + y) * width + x) * size;
          const v = formula(x, y);
          if (type === 'Byte') raw.writeUInt8(clamp(Math.round(v), 0, 255), at);
          else if (type === 'UInt16') raw.writeUInt16LE(clamp(Math.round(v), 0, 65535), at);
          else if (type === 'Float32') raw.writeFloatLE(v, at);
          else raw.writeDoubleLE(v, at);
        }
      }
    });
    writeFileSync(path.join(dir, 'pixels.raw'), raw);
    const bandXml = spec.bands.map((_, b) => {
      const interp = spec.colorInterp?.[b] ?? (spec.palette && b === 0 ? 'Palette' : undefined);
      const table = spec.palette && b === 0
        ? `<ColorTable>${spec.palette.map(([r, g, bl]) => `<Entry c1="${r}" c2="${g}" c3="${bl}" c4="255"/>`).join('')}</ColorTable>`
        : '';
      return `<VRTRasterBand dataType="${type}" band="${b + 1}" subClass="VRTRawRasterBand">` +
        (interp ? `<ColorInterp>${interp}</ColorInterp>` : '') + table +
        `<SourceFilename relativetoVRT="1">pixels.raw</SourceFilename><ImageOffset>${b * width * height * size}</ImageOffset>` +
        `<PixelOffset>${size}</PixelOffset><LineOffset>${width * size}</LineOffset><ByteOrder>LSB</ByteOrder></VRTRasterBand>`;
    });
    writeFileSync(path.join(dir, 'pixels.vrt'), `<VRTDataset rasterXSize="${width}" rasterYSize="${height}">${bandXml.join('')}</VRTDataset>`);
    const args = ['-q', '-of', 'GTiff'];
    if (spec.georeferenced !== false) args.push('-a_srs', 'EPSG:3071', '-a_ullr', '560000', '300000', String(560000 + width), String(300000 - height));
    if (spec.nodata !== undefined) args.push('-a_nodata', String(spec.nodata));
    for (const co of spec.creationOptions ?? []) args.push('-co', co);
    gdal('gdal_translate', [...args, path.join(dir, 'pixels.vrt'), file]);
    return file;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** A deterministic noise source (a linear congruential generator), value in [0, 1). */
export function noise(seed: number): (x: number, y: number) => number {
  return (x, y) => {
    let s = (seed * 2654435761 + x * 40503 + y * 9973) >>> 0;
    s = (Math.imul(s ^ (s >>> 15), 2246822507) >>> 0) ^ (s >>> 13);
    return ((Math.imul(s, 3266489909) >>> 0) % 1_000_003) / 1_000_003;
  };
}

export interface Fixture {
  /** The image's file name in the job's scratch directory. */
  name: string;
  /** The band count the manifest gives. */
  manifestBands: number;
  what: string;
  /** Writes the image into dir; returns its path. */
  make(dir: string, scale?: number): string;
}

const W = 640;
const H = 560;
const n1 = noise(1);
const n2 = noise(2);
const n3 = noise(3);
const red8 = (x: number, _y: number, w = W) => (x * 255) / (w - 1);
const green8 = (_x: number, y: number, _w = W, h = H) => (y * 255) / (h - 1);
const blue8 = (x: number, y: number) => (x ^ y) & 255;
/** The DEM's nodata columns: x below this, as a share of the width. */
export const DEM_NODATA_SHARE = 0.25;
/** The RGBA image's transparent columns: x below this, as a share of the width. */
export const ALPHA_SHARE = 0.3;

/** The fixtures, in the order of the issue: 8-bit 1/3/4 bands, palette, 16-bit, float, alpha, mask, ... */
export const FIXTURES: Fixture[] = [
  {
    name: 'gray8.tif', manifestBands: 1, what: '8-bit grey',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'gray8.tif'), {
      width: W * s, height: H * s, type: 'Byte', colorInterp: ['Gray'],
      bands: [(x, y) => ((x * 3 + y * 5) & 255) * 0.8 + n1(x, y) * 50],
    }),
  },
  {
    name: 'rgb8.tif', manifestBands: 3, what: '8-bit RGB',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'rgb8.tif'), {
      width: W * s, height: H * s, type: 'Byte', colorInterp: ['Red', 'Green', 'Blue'],
      bands: [(x, y) => red8(x, y, W * s), (x, y) => green8(x, y, W * s, H * s), blue8],
    }),
  },
  {
    name: 'rgbn8.tif', manifestBands: 4, what: '8-bit RGB + NIR',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'rgbn8.tif'), {
      width: W * s, height: H * s, type: 'Byte', colorInterp: ['Red', 'Green', 'Blue', 'Undefined'],
      bands: [(x, y) => red8(x, y, W * s), (x, y) => green8(x, y, W * s, H * s), blue8, (x, y) => 255 - red8(x, y, W * s)],
    }),
  },
  {
    // Colour bands out of order: blue, green, red, NIR. Each a constant, so the preview's colour says which went where.
    name: 'bgrn8.tif', manifestBands: 4, what: '8-bit BGR + NIR (colour bands out of order)',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'bgrn8.tif'), {
      width: W * s, height: H * s, type: 'Byte', colorInterp: ['Blue', 'Green', 'Red', 'Undefined'],
      bands: [() => 30, () => 100, () => 200, () => 250],
    }),
  },
  {
    // Index 0 is nodata and red in the table: shown as its colour, the nodata area would be red.
    name: 'palette8.tif', manifestBands: 1, what: '8-bit palette, index 0 nodata',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'palette8.tif'), {
      width: W * s, height: H * s, type: 'Byte', nodata: 0,
      palette: [[255, 0, 0], [0, 128, 0], [0, 0, 200], [240, 240, 0], [90, 90, 90]],
      bands: [(x, y) => (x < 100 * s ? 0 : 1 + (((x >> 5) + (y >> 5)) % 4))],
    }),
  },
  {
    // 12-bit sensor values (500-3500) in 16 bits, and a few saturated pixels (65535) that the stretch must ignore.
    name: 'rgbn16.tif', manifestBands: 4, what: '16-bit RGB + NIR (12-bit values)',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'rgbn16.tif'), {
      width: W * s, height: H * s, type: 'UInt16', colorInterp: ['Red', 'Green', 'Blue', 'Undefined'],
      bands: [0, 1, 2, 3].map((k) => (x: number, y: number) =>
        n2(x + k, y) < 0.005 ? 65535 : 500 + (3000 * ((x + 37 * k) % (W * s))) / (W * s - 1) + 20 * n3(x, y + k)),
    }),
  },
  {
    // Elevations 200-450 m, with the west quarter nodata (-9999).
    name: 'dem32.tif', manifestBands: 1, what: 'Float32 elevation, nodata -9999',
    make: (dir, s = 1) => writeRaster(path.join(dir, 'dem32.tif'), {
      width: W * s, height: H * s, type: 'Float32', nodata: -9999, colorInterp: ['Gray'],
      bands: [(x, y) => {
        const edge = Math.round(W * s * DEM_NODATA_SHARE);
        return x < edge ? -9999 : 200 + (250 * (x - edge)) / (W * s - 1 - edge) + 3 * Math.sin(y / 20);
      }],
    }),
  },
  {
    // The transparent west part holds noise in its colour bands: the preview must show black there.
    name: 'rgba8.tif', manifestBands: 4, what: '8-bit RGB + alpha, transparent part full of noise',
    make: (dir, s = 1) => {
      const edge = Math.round(W * s * ALPHA_SHARE);
      const hidden = (f: (x: number, y: number) => number, n: (x: number, y: number) => number) =>
        (x: number, y: number) => (x < edge ? n(x, y) * 255 : f(x, y));
      return writeRaster(path.join(dir, 'rgba8.tif'), {
        width: W * s, height: H * s, type: 'Byte', colorInterp: ['Red', 'Green', 'Blue', 'Alpha'],
        bands: [hidden((x, y) => red8(x, y, W * s), n1), hidden((x, y) => green8(x, y, W * s, H * s), n2), hidden(blue8, n3),
          (x) => (x < edge ? 0 : 255)],
      });
    },
  },
  {
    // The same as rgba8.tif with the alpha band turned into an internal (per-dataset) mask.
    name: 'rgbmask8.tif', manifestBands: 3, what: '8-bit RGB + internal mask',
    make: (dir, s = 1) => {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'mask-'));
      try {
        const rgba = FIXTURES.find((f) => f.name === 'rgba8.tif')!.make(tmp, s);
        const file = path.join(dir, 'rgbmask8.tif');
        gdal('gdal_translate', ['-q', '-b', '1', '-b', '2', '-b', '3', '-mask', '4', '--config', 'GDAL_TIFF_INTERNAL_MASK', 'YES', rgba, file]);
        return file;
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  },
  {
    // A 1-band image listed with 4 bands (the old script failed on every retry).
    name: 'gray8-listed-as-4.tif', manifestBands: 4, what: '8-bit grey, manifest says 4 bands',
    make: (dir, s = 1) => renamed(FIXTURES[0]!.make(dir, s), 'gray8-listed-as-4.tif'),
  },
  {
    // A 4-band image listed with 3 bands (the old script wrote a CMYK JPEG).
    name: 'rgbn8-listed-as-3.tif', manifestBands: 3, what: '8-bit RGB + NIR, manifest says 3 bands',
    make: (dir, s = 1) => renamed(FIXTURES[2]!.make(dir, s), 'rgbn8-listed-as-3.tif'),
  },
  {
    name: 'png-named-tif.tif', manifestBands: 1, what: 'a PNG image named .tif (not a GeoTIFF)',
    make: (dir, s = 1) => {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'png-'));
      try {
        const gray = FIXTURES[0]!.make(tmp, s);
        const file = path.join(dir, 'png-named-tif.tif');
        gdal('gdal_translate', ['-q', '-of', 'PNG', gray, file]);
        return file;
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  },
  {
    name: 'garbage.tif', manifestBands: 1, what: 'bytes that are no image at all',
    make: (dir) => {
      const file = path.join(dir, 'garbage.tif');
      writeFileSync(file, 'this is not a TIFF\n');
      return file;
    },
  },
];

function renamed(file: string, name: string): string {
  const to = path.join(path.dirname(file), name);
  execFileSync('mv', ['--', file, to]);
  return to;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time, spawn to exit. */
  seconds: number;
  /** User + system CPU time of every process it ran (bash's `times`). */
  cpuSeconds: number;
}

/**
 * Runs a bash script (arguments "$1"...) in dir and measures it: the script's own exit status, its
 * output, its wall time and the CPU time of everything it started (bash's `times`, whose last line
 * is the children's user and system time, written to a pipe of its own so the output stays as it was).
 */
function timedBash(dir: string, script: string, args: string[], env: NodeJS.ProcessEnv): RunResult {
  const start = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', `${script}\nstatus=$?; times >&3; exit $status`, 'bash', ...args], {
    cwd: dir, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const children = String(r.output[3] ?? '').trim().split('\n').at(-1) ?? '';
  const cpuSeconds = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, [, m, sec]) => sum + Number(m) * 60 + Number(sec), 0);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, seconds, cpuSeconds };
}

/** Runs submit/generate_cogs.sh (or another version of it) as the node job does: in the scratch directory, `'$(INFILE)' $(BANDS)`. */
export function runGenerateCogs(dir: string, name: string, bands: number | string, script = SCRIPT): RunResult {
  return timedBash(dir, 'bash "$1" "$2" "$3"', [script, name, String(bands)], process.env);
}

/**
 * The Python project's GDAL commands (its generate_cogs.sh, quoted properly here), run in dir:
 * the COG replaces the input, the JPEG is made from the COG, the manifest's band count decides.
 */
export function runPythonCommands(dir: string, name: string, bands: number): RunResult {
  const stem = name.replace(/\.[^.]*$/, '');
  return timedBash(
    dir,
    'gdal_translate "$1" tempfile.tif -of COG -co compress=lzw && mv tempfile.tif "$1" && gdal_translate "$1" "$2" -of jpeg -co quality=80 "${@:3}"',
    [name, `${stem}.jpg`, ...(bands === 1 || bands === 3 ? [] : ['-b', '1', '-b', '2', '-b', '3'])],
    GDAL_ENV,
  );
}

interface Outcome {
  ok: boolean;
  seconds: number;
  cpuSeconds: number;
  cogBytes: number | null;
  jpegBytes: number | null;
  reason?: string;
}

interface BenchRow {
  fixture: string;
  what: string;
  pixels: string;
  inputBytes: number;
  ours: Outcome;
  python: Outcome;
  /** Whether both succeeded with the very same bytes, COG and JPEG; null when one failed. */
  sameCog: boolean | null;
  sameJpeg: boolean | null;
}

function sizeOf(file: string): number | null {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

interface Options {
  repeat: number;
  script: string;
  /** Run every conversion on the first N CPUs only (taskset), or on all when null. */
  cpus: number | null;
}

/** Converts one fixture both ways (best wall time of `repeat` runs each) and compares the outputs of the last runs. */
function benchOne(fixture: Fixture, scale: number, options: Options): BenchRow {
  const row = { fixture: scale === 1 ? fixture.name : `${fixture.name} x${scale}`, what: fixture.what } as BenchRow;
  const outputs: Partial<Record<'ours' | 'python', { cog: Buffer; jpeg: Buffer }>> = {};
  for (const who of ['ours', 'python'] as const) {
    let best: Outcome | undefined;
    for (let i = 0; i < options.repeat; i++) {
      const dir = mkdtempSync(path.join(os.tmpdir(), `bench-${who}-`));
      try {
        const file = fixture.make(dir, scale);
        row.inputBytes = statSync(file).size;
        try {
          const info = JSON.parse(gdal('gdalinfo', ['-json', file])) as { size: [number, number]; bands: unknown[] };
          row.pixels = `${info.size[0]}x${info.size[1]}x${info.bands.length}`;
        } catch {
          row.pixels ??= '-';
        }
        const r = pinned(options, () => who === 'ours'
          ? runGenerateCogs(dir, fixture.name, fixture.manifestBands, options.script)
          : runPythonCommands(dir, fixture.name, fixture.manifestBands));
        const jpeg = path.join(dir, fixture.name.replace(/\.[^.]*$/, '.jpg'));
        const result: Outcome = {
          ok: r.code === 0,
          seconds: r.seconds,
          cpuSeconds: r.cpuSeconds,
          cogBytes: r.code === 0 ? sizeOf(file) : null,
          jpegBytes: r.code === 0 ? sizeOf(jpeg) : null,
          ...(r.code === 0 ? {} : { reason: lastLine(r.stderr) }),
        };
        if (!best || result.seconds < best.seconds) best = result;
        if (i === options.repeat - 1 && r.code === 0) outputs[who] = { cog: readFileSync(file), jpeg: readFileSync(jpeg) };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    row[who] = best!;
  }
  row.sameCog = outputs.ours && outputs.python ? outputs.ours.cog.equals(outputs.python.cog) : null;
  row.sameJpeg = outputs.ours && outputs.python ? outputs.ours.jpeg.equals(outputs.python.jpeg) : null;
  return row;
}

/** Runs fn with this process (and so everything it starts) pinned to the first N CPUs, when asked. */
function pinned<T>(options: Options, fn: () => T): T {
  if (options.cpus === null) return fn();
  const all = execFileSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' }).trim().split(': ').at(-1)!;
  execFileSync('taskset', ['-cp', `0-${options.cpus - 1}`, String(process.pid)], { stdio: 'ignore' });
  try {
    return fn();
  } finally {
    execFileSync('taskset', ['-cp', all, String(process.pid)], { stdio: 'ignore' });
  }
}

function mib(bytes: number | null): string {
  return bytes === null ? '-' : (bytes / 1048576).toFixed(2);
}

function parseOptions(argv: string[]): Options {
  const options: Options = { repeat: 3, script: SCRIPT, cpus: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--script' && value) options.script = path.resolve(value);
    else if (flag === '--cpus' && value && /^[1-9]\d*$/.test(value)) options.cpus = Number(value);
    else if (flag === '--repeat' && value && /^[1-9]\d*$/.test(value)) options.repeat = Number(value);
    else {
      console.error('usage: npm run bench:conversion [-- --script FILE] [--cpus N] [--repeat N]');
      console.error('  --script FILE  time another version of submit/generate_cogs.sh (e.g. one from git show)');
      console.error('  --cpus N       run every conversion on the first N CPUs only (taskset): 1 is a one-CPU job slot');
      console.error('  --repeat N     runs of each conversion; the best wall time is kept (default 3)');
      process.exit(2);
    }
    i++;
  }
  return options;
}

function main(): void {
  const options = parseOptions(process.argv.slice(2));
  const rows: BenchRow[] = [];
  // The test fixtures as they are, then the 8-bit, 16-bit and float ones 8 times wider and higher.
  const runs: Array<[Fixture, number]> = [
    ...FIXTURES.map((f): [Fixture, number] => [f, 1]),
    ...FIXTURES.filter((f) => ['rgbn8.tif', 'rgbn16.tif', 'dem32.tif'].includes(f.name)).map((f): [Fixture, number] => [f, 8]),
  ];
  for (const [fixture, scale] of runs) {
    process.stderr.write(`converting ${fixture.name}${scale > 1 ? ` x${scale}` : ''} ...\n`);
    rows.push(benchOne(fixture, scale, options));
  }
  const yesNo = (same: boolean | null) => (same === null ? '-' : same ? 'same' : 'differ');
  const header = ['fixture', 'pixels', 'in MiB', 'ours s', 'CPU s', 'COG MiB', 'JPEG MiB', 'python s', 'CPU s', 'COG MiB', 'JPEG MiB', 'ours/py s', 'COG', 'JPEG'];
  const table = rows.map((r) => [
    r.fixture, r.pixels, mib(r.inputBytes),
    r.ours.ok ? r.ours.seconds.toFixed(2) : 'failed', r.ours.ok ? r.ours.cpuSeconds.toFixed(2) : '-', mib(r.ours.cogBytes), mib(r.ours.jpegBytes),
    r.python.ok ? r.python.seconds.toFixed(2) : 'failed', r.python.ok ? r.python.cpuSeconds.toFixed(2) : '-', mib(r.python.cogBytes), mib(r.python.jpegBytes),
    r.ours.ok && r.python.ok ? `${(r.ours.seconds / r.python.seconds).toFixed(2)}x` : '-', yesNo(r.sameCog), yesNo(r.sameJpeg),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  const cpus = options.cpus === null ? `all ${os.availableParallelism()} CPUs` : `pinned to ${options.cpus} CPU(s)`;
  console.log(`\nbest wall time of ${options.repeat} runs each (CPU of that run), ${cpus}; script ${path.relative(process.cwd(), options.script)}; ${gdal('gdalinfo', ['--version']).trim()}`);
  for (const r of rows) {
    if (!r.ours.ok) console.log(`ours failed on ${r.fixture}: ${r.ours.reason}`);
    if (!r.python.ok) console.log(`python commands failed on ${r.fixture}: ${r.python.reason}`);
  }
  const same = rows.filter((r) => r.sameCog && r.sameJpeg);
  const slower = same.filter((r) => r.ours.seconds > r.python.seconds);
  console.log(`where the outputs are the same bytes (${same.length} images), ours is slower on ${slower.length}` +
    (slower.length ? `: ${slower.map((r) => `${r.fixture} ${(r.ours.seconds / r.python.seconds).toFixed(2)}x`).join(', ')}` : ''));
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify({
    gdal: gdal('gdalinfo', ['--version']).trim(),
    node: process.version,
    repeat: options.repeat,
    cpus: options.cpus ?? os.availableParallelism(),
    script: options.script,
    loadAverage: os.loadavg(),
    date: new Date().toISOString(),
    rows,
  }, null, 2) + '\n');
  console.log(`\nwritten: ${path.relative(process.cwd(), RESULTS)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main();
}
