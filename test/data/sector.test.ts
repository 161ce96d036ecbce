// Sector geometry: phantom fans of known geometry recovered within a pixel or two and a fraction
// of a degree, a linear probe's rectangle, burned-in text outside the sector masked while dark
// findings inside stay, a bad fit refused, and the three ways of showing the sector.
import { describe, expect, it } from 'vitest';
import { renderPhantomFrame, samplePhantomScene } from '../../src/data/phantom.js';
import { applySector, fitSector, insideSector, sectorBounds, type RgbFrame } from '../../src/data/sector.js';
import { createRng } from '../../src/util/rng.js';

const deg = (r: number) => (r * 180) / Math.PI;

function phantomClip(seed: number, label: 'covid' | 'pneumonia' | 'regular', size = 160) {
  const rng = createRng(seed);
  const scene = samplePhantomScene(label, size, rng);
  const frames: RgbFrame[] = Array.from({ length: 6 }, (_, t) => ({ width: size, height: size, rgb: renderPhantomFrame(scene, t * 3, rng) }));
  return { scene, frames };
}

/** A linear probe's clip: a speckled rectangle on black, with a dark (anechoic) band inside. */
function linearClip(size = 120, [l, t, r, b] = [20, 10, 99, 109]): RgbFrame[] {
  const rng = createRng(4);
  return Array.from({ length: 4 }, () => {
    const rgb = new Uint8Array(size * size * 3);
    for (let y = t; y <= b; y++) {
      for (let x = l; x <= r; x++) {
        const v = y > 50 && y < 60 ? 2 + rng.int(10) : 40 + rng.int(120);
        rgb.fill(v, (y * size + x) * 3, (y * size + x) * 3 + 3);
      }
    }
    return { width: size, height: size, rgb };
  });
}

/** White "text" blocks in a frame's top corners, outside any fan. */
function burnText(frame: RgbFrame): RgbFrame {
  const rgb = Uint8Array.from(frame.rgb);
  for (const x0 of [2, frame.width - 22]) for (let y = 2; y < 8; y++) for (let x = x0; x < x0 + 20; x += 2) rgb.fill(255, (y * frame.width + x) * 3, (y * frame.width + x) * 3 + 3);
  return { ...frame, rgb };
}

describe('sector geometry', () => {
  it('recovers phantom fans of known geometry within 2 px and 0.5°', () => {
    for (const [seed, label] of [[1, 'regular'], [8, 'covid'], [15, 'pneumonia'], [22, 'regular']] as const) {
      const { scene, frames } = phantomClip(seed, label);
      const fit = fitSector(frames);
      expect(fit.kind, `seed ${seed}`).toBe('convex');
      if (fit.kind !== 'convex') continue;
      expect(Math.abs(fit.apexX - (scene.size - 1) / 2)).toBeLessThan(2);
      expect(Math.abs(fit.apexY - scene.apexY)).toBeLessThan(2);
      expect(Math.abs(deg(fit.leftAngle) + deg(scene.halfAngle))).toBeLessThan(0.5);
      expect(Math.abs(deg(fit.rightAngle) - deg(scene.halfAngle))).toBeLessThan(0.5);
      expect(Math.abs(fit.innerRadius - scene.innerRadius)).toBeLessThan(2);
      expect(Math.abs(fit.outerRadius - scene.outerRadius)).toBeLessThan(2);
    }
  });

  it("finds a linear probe's rectangle, and keeps the dark band inside it", () => {
    const fit = fitSector(linearClip());
    expect(fit.kind).toBe('linear');
    if (fit.kind !== 'linear') return;
    expect([fit.left, fit.top, fit.right, fit.bottom].map((v) => Math.round(v))).toEqual([20, 10, 99, 109]);
    expect(insideSector(fit, 60, 55, 120, 120)).toBe(true);
    expect(insideSector(fit, 10, 55, 120, 120)).toBe(false);
  });

  it('masks every frame of a clip by its geometry, at each frame size (the mask is kept per sector and size)', () => {
    const { frames } = phantomClip(4, 'covid');
    const fit = fitSector(frames);
    const small: RgbFrame = { width: 80, height: 80, rgb: new Uint8Array(80 * 80 * 3).fill(200) };
    for (const frame of [...frames, small, frames[1]!, small]) {
      const masked = applySector(frame, fit, 'mask');
      for (let y = 0; y < frame.height; y += 3) {
        for (let x = 0; x < frame.width; x += 3) {
          const p = (y * frame.width + x) * 3;
          expect(masked.rgb[p]).toBe(insideSector(fit, x, y, frame.width, frame.height) ? frame.rgb[p] : 0);
        }
      }
    }
  });

  it('masks burned-in text outside the fan but not the dark lung inside it, with the same geometry as without the text', () => {
    const { frames } = phantomClip(8, 'covid');
    const plain = fitSector(frames);
    const withText = fitSector(frames.map(burnText));
    expect(withText.kind).toBe('convex');
    if (plain.kind !== 'convex' || withText.kind !== 'convex') return;
    expect(Math.abs(withText.apexY - plain.apexY)).toBeLessThan(1);
    expect(Math.abs(withText.leftAngle - plain.leftAngle)).toBeLessThan(0.01);
    const masked = applySector(burnText(frames[0]!), withText, 'mask');
    for (let y = 2; y < 8; y++) for (let x = 2; x < 22; x++) expect(masked.rgb[(y * 160 + x) * 3]).toBe(0);
    // Every pixel inside the fan keeps its value, dark ones included.
    let inside = 0;
    let dark = 0;
    for (let y = 0; y < 160; y++) {
      for (let x = 0; x < 160; x++) {
        if (!insideSector(withText, x, y, 160, 160)) continue;
        inside++;
        const p = (y * 160 + x) * 3;
        expect(masked.rgb[p]).toBe(frames[0]!.rgb[p]);
        if (frames[0]!.rgb[p]! < 20) dark++;
      }
    }
    expect(dark / inside).toBeGreaterThan(0.2);
  });

  it('keeps the whole frame when no sector fits, saying why', () => {
    const rng = createRng(2);
    // Uniform noise everywhere: bright corners, the picture is all "sector" → the whole frame as a rectangle.
    const noise = { width: 64, height: 64, rgb: Uint8Array.from({ length: 64 * 64 * 3 }, () => 60 + rng.int(100)) };
    expect(fitSector([noise]).kind).toBe('linear');
    // A banner of text over black (a title card): bright in a few rows only.
    const blob = new Uint8Array(64 * 64 * 3);
    for (let y = 28; y < 36; y++) for (let x = 4; x < 60; x += 3) blob.fill(200, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3);
    const fit = fitSector([{ width: 64, height: 64, rgb: blob }]);
    expect(fit.kind).toBe('none');
    if (fit.kind === 'none') expect(fit.reason.length).toBeGreaterThan(10);
    expect(applySector({ width: 64, height: 64, rgb: blob }, fit, 'mask').rgb).toEqual(blob);
  });

  it('scales to another size of the same frames, crops to the bounding box and unrolls a fan', () => {
    const { frames, scene } = phantomClip(1, 'regular');
    const fit = fitSector(frames);
    // At half the size the same pixels (scaled) are inside.
    expect(insideSector(fit, 40, 40, 80, 80)).toBe(insideSector(fit, 80.5, 80.5, 160, 160));
    const [l, t, r, b] = sectorBounds(fit, 160, 160);
    expect(t).toBeLessThan(12);
    expect(b).toBeGreaterThan(150);
    expect(l).toBeLessThanOrEqual(1);
    expect(r).toBeGreaterThanOrEqual(158);
    const cropped = applySector(frames[0]!, fit, 'crop');
    expect([cropped.width, cropped.height]).toEqual([160, 160]);
    // Unrolled: the pleural line (a circle about the apex) becomes one row: its brightest row is
    // the same in every column of the middle.
    const warped = applySector(frames[0]!, fit, 'warp');
    const brightestRow = (x: number) => {
      let best = 0;
      for (let y = 0; y < 80; y++) if (warped.rgb[(y * 160 + x) * 3]! > warped.rgb[(best * 160 + x) * 3]!) best = y;
      return best;
    };
    const rows = [40, 60, 80, 100, 120].map(brightestRow);
    expect(Math.max(...rows) - Math.min(...rows)).toBeLessThanOrEqual(3);
    expect(scene.pleuraRoughness).toBe(0);
  });
});

describe('sectors.json', () => {
  it('fits every source of a dataset once, from all its frames, and keeps the result with the dataset', async () => {
    const { mkdtempSync, rmSync, statSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeTinyDataset } = await import('../helpers/tiny_dataset.js');
    const { datasetSectors } = await import('../../src/data/sectors_file.js');
    const dir = mkdtempSync(join(tmpdir(), 'pocovid-sectors-'));
    try {
      const rows = await writeTinyDataset(dir, { patientsPerClass: 2, framesPerVideo: 4, folds: 2, size: 128 });
      const sectors = await datasetSectors(dir, rows);
      expect(sectors.size).toBe(6);
      expect([...sectors.values()].filter((s) => s.kind === 'convex').length).toBeGreaterThanOrEqual(5);
      const file = join(dir, 'sectors.json');
      const written = statSync(file).mtimeMs;
      const again = await datasetSectors(dir, rows);
      expect(statSync(file).mtimeMs).toBe(written);
      expect(JSON.stringify([...again])).toBe(JSON.stringify([...sectors]));
      expect(Object.values((JSON.parse(readFileSync(file, 'utf8')) as { sources: Record<string, { frames: number }> }).sources).map((s) => s.frames)).toEqual(new Array(6).fill(4));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
