import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ALPHA_SHARE, DEM_NODATA_SHARE, FIXTURES, GDAL_ENV, OFFICE_IMAGES, SCRIPT, gdal, runGenerateCogs, runPythonCommands,
  type Fixture, type RunResult,
} from '../bench/conversion.ts';

/**
 * submit/generate_cogs.sh, the node executable, run as the node job runs it (`'$(INFILE)' $(BANDS)` in
 * the scratch directory) with Debian's GDAL on fixtures made here with GDAL (bench/conversion.ts
 * holds their pixel formulas): what the COG and the JPEG preview hold, and how it fails.
 */

const scratchDirs: string[] = [];
after(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});
function scratch(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'generate-cogs-'));
  scratchDirs.push(dir);
  return dir;
}

function fixture(name: string): Fixture {
  const f = FIXTURES.find((x) => x.name === name);
  assert.ok(f, name);
  return f;
}

interface Band {
  band: number;
  block: [number, number];
  type: string;
  colorInterpretation: string;
  noDataValue?: number | string;
  overviews?: Array<{ size: [number, number] }>;
  mask?: { flags: string[] };
  colorTable?: { count: number };
}
interface Info {
  driverShortName: string;
  size: [number, number];
  files: string[];
  metadata: Record<string, Record<string, string>>;
  bands: Band[];
}
function info(file: string): Info {
  return JSON.parse(gdal('gdalinfo', ['-json', file])) as Info;
}

/** The bands a JPEG stores: GDAL shows a 4-band CMYK JPEG as 3 RGB bands unless asked not to. */
function jpegStoredBands(file: string): number {
  const r = spawnSync('gdalinfo', ['-json', file], { encoding: 'utf8', env: { ...GDAL_ENV, GDAL_JPEG_TO_RGB: 'NO' } });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as Info).bands.length;
}

/** The pixels of one band, row by row, as numbers (read with gdal_translate -of ENVI). */
function pixels(file: string, band: number): Float64Array {
  const dir = scratch();
  const raw = path.join(dir, 'band.raw');
  gdal('gdal_translate', ['-q', '-of', 'ENVI', '-ot', 'Float64', '-b', String(band), file, raw]);
  const bytes = readFileSync(raw);
  const out = new Float64Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readDoubleLE(i * 8);
  return out;
}

/** The values of a band in columns [x0, x1) and rows [y0, y1). */
function region(values: Float64Array, width: number, x0: number, x1: number, y0: number, y1: number): number[] {
  const out: number[] = [];
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out.push(values[y * width + x]!);
  return out;
}

function stats(values: ArrayLike<number>) {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  const mean = sum / values.length;
  let sq = 0;
  for (let i = 0; i < values.length; i++) sq += (values[i]! - mean) ** 2;
  return { min, max, mean, sd: Math.sqrt(sq / values.length) };
}

function share(values: ArrayLike<number>, test: (v: number) => boolean): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (test(values[i]!)) n++;
  return n / values.length;
}

function checkCog(file: string): Pick<RunResult, 'code' | 'stdout' | 'stderr'> {
  const r = spawnSync('bash', [SCRIPT, '--check-cog', file], { encoding: 'utf8', env: process.env });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function tiffMagic(file: string): number {
  return readFileSync(file).readUInt16LE(2); // 42: classic TIFF, 43: BigTIFF (little-endian files)
}

interface Converted {
  dir: string;
  /** The COG, which replaced the input. */
  cog: string;
  jpeg: string;
  /** An untouched copy of the input, outside the scratch directory. */
  original: string;
  run: RunResult;
}

/** Makes the fixture in a fresh scratch directory and converts it; the conversion must succeed. */
function convert(f: Fixture, bands = f.manifestBands): Converted {
  const dir = scratch();
  const keep = scratch();
  const file = f.make(dir);
  const original = path.join(keep, f.name);
  copyFileSync(file, original);
  const run = runGenerateCogs(dir, f.name, bands);
  assert.equal(run.code, 0, `${f.name}: ${run.stderr}`);
  const stem = f.name.replace(/\.tif$/, '');
  assert.deepEqual(readdirSync(dir).sort(), [`${stem}.jpg`, f.name].sort(), 'only the COG and the JPEG are left');
  return { dir, cog: file, jpeg: path.join(dir, `${stem}.jpg`), original, run };
}

/** The COG: valid (the script's own check and gdalinfo), LZW, tiled, overviews, and the input's pixels, bands and nodata. */
function assertCog(c: Converted): Info {
  const cog = info(c.cog);
  const input = info(c.original);
  assert.equal(checkCog(c.cog).code, 0, 'generate_cogs.sh --check-cog accepts it');
  assert.equal(cog.driverShortName, 'GTiff');
  assert.equal(cog.metadata.IMAGE_STRUCTURE?.LAYOUT, 'COG');
  assert.equal(cog.metadata.IMAGE_STRUCTURE?.COMPRESSION, 'LZW');
  assert.deepEqual(cog.size, input.size);
  assert.equal(cog.bands.length, input.bands.length);
  const [width, height] = cog.size;
  for (const [i, band] of cog.bands.entries()) {
    const was = input.bands[i]!;
    assert.deepEqual(band.block, [512, 512], 'tiled 512x512');
    assert.equal(band.type, was.type);
    assert.equal(band.colorInterpretation, was.colorInterpretation);
    assert.equal(band.noDataValue, was.noDataValue, 'nodata carried over');
    assert.deepEqual(band.mask?.flags, was.mask?.flags, 'mask carried over');
    if (width > 512 || height > 512) assert.ok((band.overviews ?? []).length >= 1, 'overviews');
    assert.deepEqual(pixels(c.cog, i + 1), pixels(c.original, i + 1), `band ${i + 1}: the input's pixels`);
  }
  assert.equal(tiffMagic(c.cog), 42, 'a small image stays a classic TIFF');
  assert.match(c.run.stdout, /checked: .* is a valid COG/);
  return cog;
}

/** The JPEG: 8 bits, 1 or 3 bands, as large as the image. */
function assertJpeg(c: Converted, bands: 1 | 3): Info {
  const jpeg = info(c.jpeg);
  assert.equal(jpeg.driverShortName, 'JPEG');
  assert.equal(jpeg.bands.length, bands, 'preview bands');
  assert.equal(jpegStoredBands(c.jpeg), bands, 'bands stored in the JPEG');
  for (const band of jpeg.bands) assert.equal(band.type, 'Byte', '8-bit');
  assert.equal(jpeg.metadata.IMAGE_STRUCTURE?.SOURCE_COLOR_SPACE, bands === 3 ? 'YCbCr' : undefined, 'not CMYK');
  assert.deepEqual(jpeg.size, info(c.cog).size, 'full size');
  return jpeg;
}

describe("8-bit 1/3/4-band images: byte for byte the Python project's COG and JPEG", () => {
  const cases: Array<[string, () => Fixture, 1 | 3]> = [
    ['gray8.tif', () => fixture('gray8.tif'), 1],
    ['rgb8.tif', () => fixture('rgb8.tif'), 3],
    ['rgbn8.tif', () => fixture('rgbn8.tif'), 3],
    ...(['1band.tif', '1band-small.tif', '3band.tif', '4band.tif'].map((name): [string, () => Fixture, 1 | 3] => [
      `office ${name}`,
      () => ({ name, manifestBands: Number(name[0]), what: name, make: (dir: string) => copyTo(path.join(OFFICE_IMAGES, name), dir) }),
      name.startsWith('1') ? 1 : 3,
    ])),
  ];
  for (const [label, make, bands] of cases) {
    test(label, () => {
      const f = make();
      const ours = convert(f);
      assertCog(ours);
      assertJpeg(ours, bands);
      const python = scratch();
      f.make(python);
      const r = runPythonCommands(python, f.name, f.manifestBands);
      assert.equal(r.code, 0, r.stderr);
      const pyCog = path.join(python, f.name);
      const pyJpeg = path.join(python, f.name.replace(/\.tif$/, '.jpg'));
      assert.ok(readFileSync(ours.cog).equals(readFileSync(pyCog)), 'the same COG file');
      assert.equal(info(pyJpeg).bands.length, bands);
      assert.ok(readFileSync(ours.jpeg).equals(readFileSync(pyJpeg)), 'the same JPEG file');
    });
  }
});

/**
 * The first line generate_cogs.sh prints, as it must read for what gdalinfo says of the input: the
 * nodata value as gdalinfo writes it, and GDAL's mask flags (gdalinfo names them only for a mask or
 * alpha; else they are NODATA with a nodata value, ALL_VALID without).
 */
function descriptionFromGdalinfo(name: string, file: string): string {
  const json = gdal('gdalinfo', ['-json', file]);
  const input = JSON.parse(json) as Info;
  const band = input.bands[0]!;
  const nodata = /"noDataValue":([^,\s}]+)/.exec(json)?.[1]?.replace(/^"|"$/g, '');
  const mask = band.mask?.flags.join(' ') ?? (nodata === undefined ? 'ALL_VALID' : 'NODATA');
  return `${name}: ${input.size[0]}x${input.size[1]}, ${input.bands.length} band(s) of ${band.type} ` +
    `(${input.bands.map((b) => b.colorInterpretation).join(' ')})${nodata === undefined ? '' : `, nodata ${nodata}`}, mask ${mask}`;
}

describe('the image is described as GDAL reads it (from its TIFF tags when it is plain 8-bit, else by gdalinfo)', () => {
  for (const f of FIXTURES.filter((x) => !['png-named-tif.tif', 'garbage.tif'].includes(x.name))) {
    test(f.name, () => {
      const c = convert(f);
      assert.equal(c.run.stdout.split('\n')[0], descriptionFromGdalinfo(f.name, c.original));
    });
  }

  // The same 8-bit RGB+NIR pixels in other TIFF layouts and colour models (gdal_translate creation options).
  const layouts: Array<[string, string[]]> = [
    ['tiled', ['-co', 'TILED=YES']],
    ['BigTIFF', ['-co', 'BIGTIFF=YES']],
    ['big-endian', ['-co', 'ENDIANNESS=BIG']],
    ['band-interleaved', ['-co', 'INTERLEAVE=BAND']],
    ['DEFLATE-compressed', ['-co', 'COMPRESS=DEFLATE']],
    ['grey model (MINISBLACK) with 3 more bands', ['-co', 'PHOTOMETRIC=MINISBLACK']],
    ['fourth band alpha', ['-co', 'ALPHA=YES']],
    ['with internal overviews', []],
    ['with an internal mask', ['-mask', '4', '--config', 'GDAL_TIFF_INTERNAL_MASK', 'YES']],
    ['two bands, grey and alpha', ['-b', '1', '-b', '4', '-co', 'ALPHA=YES']],
    ['signed 8-bit', ['-co', 'PIXELTYPE=SIGNEDBYTE']],
    ['8-bit with nodata 0', ['-a_nodata', '0']],
  ];
  for (const [label, options] of layouts) {
    test(label, () => {
      const dir = scratch();
      const source = fixture('rgbn8.tif').make(scratch());
      gdal('gdal_translate', ['-q', ...options, source, path.join(dir, 'layout.tif')]);
      if (label === 'with internal overviews') gdal('gdaladdo', ['-q', path.join(dir, 'layout.tif'), '2', '4']);
      const expected = descriptionFromGdalinfo('layout.tif', path.join(dir, 'layout.tif'));
      const original = path.join(scratch(), 'layout.tif');
      copyFileSync(path.join(dir, 'layout.tif'), original);
      const r = runGenerateCogs(dir, 'layout.tif', 4);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.split('\n')[0], expected);
      assertCog({ dir, cog: path.join(dir, 'layout.tif'), jpeg: path.join(dir, 'layout.jpg'), original, run: r });
    });
  }
});

function copyTo(file: string, dir: string): string {
  const to = path.join(dir, path.basename(file));
  copyFileSync(file, to);
  return to;
}

describe('the image decides the preview', () => {
  test('colour bands are taken by their colour interpretation, not their position (blue, green, red, NIR)', () => {
    const c = convert(fixture('bgrn8.tif'));
    assertCog(c);
    assertJpeg(c, 3);
    const [r, g, b] = [1, 2, 3].map((band) => stats(pixels(c.jpeg, band)).mean);
    assert.ok(Math.abs(r! - 200) <= 2 && Math.abs(g! - 100) <= 2 && Math.abs(b! - 30) <= 2, `preview colour ${r}, ${g}, ${b}`);
    assert.match(c.run.stdout, /RGB from bands 3, 2, 1/);
  });

  test('a palette image comes out in its colours; its nodata index is black, not its palette colour', () => {
    const c = convert(fixture('palette8.tif'));
    const cog = assertCog(c);
    assert.equal(cog.bands[0]!.colorInterpretation, 'Palette');
    assert.equal(cog.bands[0]!.noDataValue, 0);
    assertJpeg(c, 3);
    const [width] = cog.size;
    const bands = [1, 2, 3].map((b) => pixels(c.jpeg, b));
    // Columns 0-99 are index 0 (nodata; red in the table): black, flat.
    for (const band of bands) {
      const s = stats(region(band, width, 0, 92, 0, 560));
      assert.ok(s.max <= 3, `nodata area max ${s.max}`);
    }
    // The block at columns 320-351, rows 0-31 is index 3: (240, 240, 0).
    const block = bands.map((band) => stats(region(band, width, 324, 348, 4, 28)).mean);
    assert.ok(Math.abs(block[0]! - 240) <= 6 && Math.abs(block[1]! - 240) <= 6 && Math.abs(block[2]!) <= 6, `block colour ${block.join(', ')}`);
  });

  test('16-bit RGB+NIR: an 8-bit RGB JPEG, each band stretched from its 2nd to its 98th percentile', () => {
    const c = convert(fixture('rgbn16.tif'));
    const cog = assertCog(c);
    assert.deepEqual(cog.bands.map((b) => b.type), ['UInt16', 'UInt16', 'UInt16', 'UInt16']);
    assertJpeg(c, 3);
    for (let b = 1; b <= 3; b++) {
      const v = pixels(c.jpeg, b);
      const s = stats(v);
      // Values spread evenly over 500-3500 (plus 0.5% saturated at 65535): evenly over 0-255 after the stretch.
      assert.ok(s.mean > 117 && s.mean < 138, `band ${b} mean ${s.mean}`);
      const low = share(v, (x) => x <= 6);
      const high = share(v, (x) => x >= 249);
      assert.ok(low > 0.01 && low < 0.05, `band ${b}: ${low} at the bottom`);
      assert.ok(high > 0.01 && high < 0.06, `band ${b}: ${high} at the top`);
    }
    assert.match(c.run.stdout, /stretched 2-98%/);
  });

  test('Float32 elevations with nodata: stretched over their whole range, nodata black and flat', () => {
    const c = convert(fixture('dem32.tif'));
    const cog = assertCog(c);
    assert.equal(cog.bands[0]!.type, 'Float32');
    assert.equal(cog.bands[0]!.noDataValue, -9999);
    assertJpeg(c, 1);
    const [width, height] = cog.size;
    const edge = Math.round(width * DEM_NODATA_SHARE);
    const v = pixels(c.jpeg, 1);
    const nodata = stats(region(v, width, 0, edge - 8, 0, height));
    assert.ok(nodata.max <= 2 && nodata.sd < 0.5, `nodata area: ${JSON.stringify(nodata)}`);
    const valid = stats(region(v, width, edge + 8, width, 0, height));
    assert.ok(valid.mean > 115 && valid.mean < 140, `valid area mean ${valid.mean}`);
    // West to east, 200 m to 450 m: dark to bright, the whole range shown.
    assert.ok(stats(region(v, width, edge + 8, edge + 16, 0, height)).mean < 25);
    assert.ok(stats(region(v, width, width - 16, width - 8, 0, height)).mean > 230);
  });

  for (const name of ['rgba8.tif', 'rgbmask8.tif']) {
    test(`${name}: transparent or masked pixels are black in the preview, never their noise`, () => {
      const c = convert(fixture(name));
      const cog = assertCog(c);
      if (name === 'rgba8.tif') assert.equal(cog.bands[3]!.colorInterpretation, 'Alpha');
      else assert.deepEqual(cog.bands[0]!.mask?.flags, ['PER_DATASET']);
      assertJpeg(c, 3);
      const [width, height] = cog.size;
      const edge = Math.round(width * ALPHA_SHARE);
      for (let b = 1; b <= 3; b++) {
        const v = pixels(c.jpeg, b);
        const hidden = stats(region(v, width, 0, edge - 8, 0, height));
        assert.ok(hidden.max <= 3, `band ${b} under the mask: ${JSON.stringify(hidden)}`);
        // The visible part is the image itself (up to JPEG's loss).
        const seen = region(v, width, edge + 8, width, 0, height);
        const truth = region(pixels(c.original, b), width, edge + 8, width, 0, height);
        const error = stats(seen.map((x, i) => Math.abs(x - truth[i]!))).mean;
        assert.ok(error < 6, `band ${b} mean error ${error}`);
      }
    });
  }

  test('an image with no valid pixel (a tile beyond the county line) gives a black preview', () => {
    const dir = scratch();
    gdal('gdal_create', ['-q', '-of', 'GTiff', '-outsize', '600', '400', '-bands', '1', '-ot', 'Float32', '-burn', '-9999', '-a_nodata', '-9999', 'edge.tif'], dir);
    const r = runGenerateCogs(dir, 'edge.tif', 1);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(stats(pixels(path.join(dir, 'edge.jpg'), 1)).max, 0);
    assert.equal(info(path.join(dir, 'edge.tif')).bands[0]!.noDataValue, -9999);
  });
});

describe('the manifest band count is checked against the image, and the image wins', () => {
  test('a 1-band image listed as 4 converts (the Python commands fail on it)', () => {
    const f = fixture('gray8-listed-as-4.tif');
    const c = convert(f);
    assertCog(c);
    assertJpeg(c, 1);
    assert.match(c.run.stderr, /note: the manifest says 4 band\(s\), but 'gray8-listed-as-4\.tif' has 1 band\(s\) of Byte \(Gray\); converting it as the image says/);
    const python = scratch();
    f.make(python);
    assert.notEqual(runPythonCommands(python, f.name, 4).code, 0);
  });

  test('a 4-band image listed as 3 gives an RGB JPEG (the Python commands give a 4-band CMYK one)', () => {
    const f = fixture('rgbn8-listed-as-3.tif');
    const c = convert(f);
    assertCog(c);
    assertJpeg(c, 3);
    assert.match(c.run.stderr, /the manifest says 3 band\(s\), but .* has 4 band\(s\)/);
    const python = scratch();
    f.make(python);
    assert.equal(runPythonCommands(python, f.name, 3).code, 0);
    const theirs = path.join(python, 'rgbn8-listed-as-3.jpg');
    assert.equal(jpegStoredBands(theirs), 4);
    assert.equal(info(theirs).metadata.IMAGE_STRUCTURE?.SOURCE_COLOR_SPACE, 'CMYK');
  });
});

describe('what cannot be converted fails with the reason, and leaves nothing behind', () => {
  function assertFailsCleanly(f: Fixture, reason: RegExp): RunResult {
    const dir = scratch();
    const file = f.make(dir);
    const before = readFileSync(file);
    const r = runGenerateCogs(dir, f.name, f.manifestBands);
    assert.equal(r.code, 1);
    assert.match(r.stderr, reason);
    assert.match(r.stderr.trim().split('\n').at(-1)!, /^generate_cogs\.sh: /, 'the last line says why');
    assert.deepEqual(readdirSync(dir), [f.name], 'no JPEG, no temporary files');
    assert.deepEqual(readFileSync(file), before, 'the input is untouched, so it is not transferred back');
    return r;
  }

  test("bytes that are no image: GDAL's own ERROR line, which post quotes", () => {
    const r = assertFailsCleanly(fixture('garbage.tif'), /^ERROR 4: .*garbage\.tif' not recognized as a supported file format\.$/m);
    assert.match(r.stderr, /generate_cogs\.sh: GDAL cannot read 'garbage\.tif' as an image\n$/);
  });

  test('a PNG named .tif is not a GeoTIFF', () => {
    assertFailsCleanly(fixture('png-named-tif.tif'), /generate_cogs\.sh: 'png-named-tif\.tif' is not a GeoTIFF: GDAL reads it as Portable Network Graphics \(PNG\)\n$/);
  });

  test('a preview that fails while its COG succeeds stops the conversion with the preview\'s reason last', () => {
    // A gdal_translate that refuses JPEG output and is GDAL's own otherwise, first on PATH.
    const bin = scratch();
    writeFileSync(path.join(bin, 'gdal_translate'),
      '#!/bin/bash\nfor a in "$@"; do [ "$a" != JPEG ] || { echo "ERROR 1: no JPEG today" >&2; exit 1; }; done\nexec /usr/bin/gdal_translate "$@"\n');
    chmodSync(path.join(bin, 'gdal_translate'), 0o755);
    const dir = scratch();
    const file = copyTo(path.join(OFFICE_IMAGES, '3band.tif'), dir);
    const before = readFileSync(file);
    const r = spawnSync('bash', [SCRIPT, '3band.tif', '3'], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /checked: 3band\.tif is a valid COG/, 'the COG was made and checked');
    assert.match(r.stderr, /ERROR 1: no JPEG today\ngenerate_cogs\.sh: gdal_translate could not write the preview of '3band\.tif'\n$/);
    assert.deepEqual(readdirSync(dir), ['3band.tif'], 'no JPEG, no COG, no temporary files');
    assert.deepEqual(readFileSync(file), before, 'the input is untouched');
  });

  test('a TIFF cut short in its pixels: the COG and the preview, converted side by side, both stop; the COG says why', () => {
    const cut: Fixture = {
      name: 'cut.tif', manifestBands: 3, what: 'the office 3-band image cut short',
      make: (dir) => {
        const file = path.join(dir, 'cut.tif');
        copyFileSync(path.join(OFFICE_IMAGES, '3band.tif'), file);
        truncateSync(file, 400_000);
        return file;
      },
    };
    const r = assertFailsCleanly(cut, /^ERROR 1: .*TIFFReadEncodedStrip/m);
    assert.match(r.stderr, /generate_cogs\.sh: gdal_translate could not convert 'cut\.tif' to a COG\n$/);
  });
});

describe('names GDAL could mistake for options or drivers convert like any other', () => {
  for (const name of ['-dash.tif', 'with space.tif', 'GTIFF_DIR:1:scan.tif', 'HDF5:scan.tif']) {
    test(JSON.stringify(name), () => {
      const c = convert({ name, manifestBands: 3, what: name, make: (dir) => {
        const to = path.join(dir, name);
        copyFileSync(path.join(OFFICE_IMAGES, '3band.tif'), to);
        return to;
      } });
      assertCog(c);
      assertJpeg(c, 3);
    });
  }
});

describe('the COG check (generate_cogs.sh --check-cog FILE, the check every conversion ends with)', () => {
  function made(args: string[]): string {
    const dir = scratch();
    gdal('gdal_create', ['-q', '-outsize', '1500', '1100', '-bands', '1', '-burn', '7', 'plain.tif'], dir);
    if (args.length) gdal('gdal_translate', ['-q', ...args, 'plain.tif', 'out.tif'], dir);
    return path.join(dir, args.length ? 'out.tif' : 'plain.tif');
  }
  function assertRefused(file: string, ...reasons: RegExp[]) {
    const r = checkCog(file);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^generate_cogs\.sh: '.*' is not a valid COG: /);
    for (const reason of reasons) assert.match(lines[0]!, reason);
  }

  test('a COG written by the COG driver passes', () => {
    const r = checkCog(made(['-of', 'COG', '-co', 'COMPRESS=LZW']));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a valid COG/);
  });

  test('a plain striped GeoTIFF fails: no COG layout, not tiled, no overviews', () => {
    assertRefused(made([]), /does not report LAYOUT=COG/, /1500x1100 pixels but not tiled/, /1500x1100 pixels but has no overviews/, /compression is none/);
  });

  test('a COG over 512 pixels without overviews fails', () => {
    assertRefused(made(['-of', 'COG', '-co', 'COMPRESS=LZW', '-co', 'OVERVIEWS=NONE']), /1500x1100 pixels but has no overviews/);
  });

  test('a COG whose overviews were added afterwards (gdaladdo) fails: its layout is broken', () => {
    const file = made(['-of', 'COG', '-co', 'COMPRESS=LZW']);
    gdal('gdaladdo', ['-q', '-r', 'average', file, '2', '4', '8', '16']);
    assertRefused(file, /KNOWN_INCOMPATIBLE_EDITION=YES/, /pixel data of overview \d come after/);
  });

  test('a COG with another compression fails (this pipeline writes LZW)', () => {
    assertRefused(made(['-of', 'COG', '-co', 'COMPRESS=DEFLATE']), /compression is DEFLATE, not LZW/);
  });

  test('a file that is not a TIFF fails', () => {
    assertRefused(path.join(OFFICE_IMAGES, 'not-a-tiff.tif'), /it is not a readable TIFF file: not a TIFF file/);
  });

  test('a TIFF cut short fails, saying so', () => {
    const file = made(['-of', 'COG', '-co', 'COMPRESS=LZW']);
    truncateSync(file, 300); // inside the first IFD
    assertRefused(file, /it is not a readable TIFF file: the file ends inside its TIFF structure/);
  });

  test('a TIFF header that points to no image fails, saying so', () => {
    const file = path.join(scratch(), 'empty.tif');
    writeFileSync(file, Buffer.concat([Buffer.from('II*\0\0\0\0\0', 'latin1'), Buffer.alloc(100)]));
    assertRefused(file, /it is not a readable TIFF file: it holds no image/);
  });

  test("the check's COG header verdict is GDAL's: LAYOUT=COG exactly where gdalinfo reports it", () => {
    const files = [
      made(['-of', 'COG', '-co', 'COMPRESS=LZW']),
      made(['-of', 'COG', '-co', 'COMPRESS=LZW', '-co', 'BIGTIFF=YES']),
      made(['-co', 'TILED=YES', '-co', 'COMPRESS=LZW']),
      made([]),
    ];
    const edited = made(['-of', 'COG', '-co', 'COMPRESS=LZW']);
    gdal('gdaladdo', ['-q', '-r', 'average', edited, '2', '4']);
    files.push(edited);
    for (const file of files) {
      const gdalSays = info(file).metadata.IMAGE_STRUCTURE?.LAYOUT === 'COG';
      const r = checkCog(file);
      const headerRefused = /no COG header|KNOWN_INCOMPATIBLE_EDITION=YES|does not declare LAYOUT/.test(r.stderr);
      assert.equal(!headerRefused, gdalSays, `${file}: ${r.stderr}`);
    }
  });
});

describe('size limits', () => {
  test('an input file over 2 GiB gives a BigTIFF COG', () => {
    const dir = scratch();
    const file = fixture('rgb8.tif').make(dir);
    truncateSync(file, 2 ** 31 + 4096); // bytes after the image data, as in a big file; the disk stays empty
    const r = runGenerateCogs(dir, 'rgb8.tif', 3);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /writing a BigTIFF COG/);
    assert.equal(tiffMagic(file), 43);
    assert.equal(checkCog(file).code, 0);
  });

  test('pixels over 2 GiB uncompressed give a BigTIFF COG (8300x8300, 4 bands of Float64)', () => {
    const dir = scratch();
    gdal('gdal_create', ['-q', '-outsize', '8300', '8300', '-bands', '4', '-ot', 'Float64', '-co', 'TILED=YES', '-co', 'SPARSE_OK=TRUE', 'big.tif'], dir);
    const r = runGenerateCogs(dir, 'big.tif', 4);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /writing a BigTIFF COG: 2204480000 bytes uncompressed/);
    assert.equal(tiffMagic(path.join(dir, 'big.tif')), 43);
    assert.equal(checkCog(path.join(dir, 'big.tif')).code, 0);
    assert.deepEqual(info(path.join(dir, 'big.jpg')).size, [8300, 8300]);
  });

  test('an image wider than JPEG allows (65,500 pixels) gets a preview as wide as JPEG allows', () => {
    const dir = scratch();
    gdal('gdal_create', ['-q', '-outsize', '70000', '40', '-bands', '1', '-burn', '90', 'strip.tif'], dir);
    const r = runGenerateCogs(dir, 'strip.tif', 1);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(info(path.join(dir, 'strip.jpg')).size, [65500, 37]);
    assert.equal(checkCog(path.join(dir, 'strip.tif')).code, 0);
  });
});

test('usage errors say how to call it', () => {
  const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: generate_cogs\.sh INFILE BANDS/);
  const dir = scratch();
  const missing = spawnSync('bash', [SCRIPT, 'missing.tif', '1'], { cwd: dir, encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /input image 'missing\.tif' is not here/);
  assert.deepEqual(readdirSync(dir), []);
});
