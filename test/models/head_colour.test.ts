// The head and colour options every backbone shares: the linear head (global pooling → softmax)
// and grey input for RGB networks, derived into the model's config so every front end follows.
import { describe, expect, it, beforeAll } from 'vitest';
import { initEngine } from '../../src/engine/index.js';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/index.js';
import { disposeBuiltModel } from '../../src/models/cut.js';
import { countParams } from '../../src/models/params.js';
import { pixelsToInput } from '../../src/models/preprocess.js';

beforeAll(async () => {
  await initEngine();
});

describe('model options: head and colour', () => {
  it('the linear head on a fully frozen MobileNet is a logistic regression on the pooled 1024 features', () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, head: 'linear', trainableLayers: 0, inputSize: [64, 64] });
    try {
      expect(countParams(built.model).trainable).toBe(1024 * 3 + 3);
      // Global pooling has no weights, so the cut puts it in the frozen backbone: the feature cache
      // stores 1024 numbers per frame, not a 2×2×1024 map.
      expect(built.backbone!.outputs.map((o) => o.shape)).toEqual([[null, 1024]]);
      expect(built.cfg.featureLayer).toBe('cam_gap');
      expect(built.model.layers.map((l) => l.name)).not.toContain('head_dense');
    } finally {
      disposeBuiltModel(built);
    }
  });

  it('keeps the POCOVID head and its feature layer by default, and refuses a POCOVID head on vgg16_cam', () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [64, 64] });
    try {
      expect(built.cfg.featureLayer).toBe('head_relu');
      expect(built.cfg.colour).toBeUndefined();
      expect(built.model.layers.map((l) => l.name)).toContain('head_dense');
    } finally {
      disposeBuiltModel(built);
    }
    expect(() => createModel('vgg16_cam', { numClasses: 3, head: 'pocovid', inputSize: [64, 64] })).toThrow(/only the linear \(CAM\) head/);
  });

  it('grey colour feeds the luma to every channel; the tint of a frame no longer reaches the network', () => {
    const built = createModel('mobilenet_v1', { numClasses: 3, colour: 'grey', inputSize: [32, 32] });
    try {
      expect(built.cfg.colour).toBe('grey');
      const blue = new Uint8Array(32 * 32 * 3);
      const grey = new Uint8Array(32 * 32 * 3);
      for (let i = 0; i < 32 * 32; i++) {
        blue.set([90, 100, 160], i * 3);
        const luma = Math.round(0.299 * 90 + 0.587 * 100 + 0.114 * 160);
        grey.set([luma, luma, luma], i * 3);
      }
      const a = pixelsToInput(blue, built.cfg);
      const b = pixelsToInput(grey, built.cfg);
      expect(a[0]).toBe(a[1]);
      expect(a[1]).toBe(a[2]);
      // Within rounding of the luma to a whole grey level.
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1 / 255);
      // The same frame through an RGB model keeps its tint.
      const rgb = createModel('mobilenet_v1', { numClasses: 3, inputSize: [32, 32] });
      const c = pixelsToInput(blue, rgb.cfg);
      expect(c[2]! - c[0]!).toBeGreaterThan(0.5);
      disposeBuiltModel(rgb);
    } finally {
      disposeBuiltModel(built);
    }
    // A grey network already takes the luma: the option changes nothing there.
    const one = createModel('grayscale_cnn', { numClasses: 3, colour: 'grey', inputSize: [32, 32] });
    expect(one.cfg.colour).toBeUndefined();
    disposeBuiltModel(one);
  });
});

describe('clipInputs', () => {
  it('applies the sector fitted on the whole clip when the config says so, and is pixelsToInput otherwise', async () => {
    const { clipInputs } = await import('../../src/models/preprocess.js');
    const { renderPhantomFrame, samplePhantomScene } = await import('../../src/data/phantom.js');
    const { createRng } = await import('../../src/util/rng.js');
    const rng = createRng(1);
    const scene = samplePhantomScene('regular', 96, rng);
    const frames = Array.from({ length: 4 }, (_, t) => ({ width: 96, height: 96, rgb: renderPhantomFrame(scene, t * 3, rng) }));
    // Burned-in text in the top-left corner of every frame (outside the fan).
    for (const f of frames) for (let x = 1; x < 12; x++) f.rgb.fill(255, (2 * 96 + x) * 3, (2 * 96 + x) * 3 + 3);
    const built = createModel('mobilenet_v1', { numClasses: 3, inputSize: [96, 96], sector: 'mask' });
    const plain = createModel('mobilenet_v1', { numClasses: 3, inputSize: [96, 96] });
    try {
      expect(built.cfg.sector).toBe('mask');
      const masked = clipInputs(frames, built.cfg);
      const unmasked = clipInputs(frames, plain.cfg);
      expect(unmasked[0]).toEqual(pixelsToInput(frames[0]!.rgb, plain.cfg));
      // The text is black (−1 in this model's scaling) after masking, white (+1) without.
      expect(masked[0]![(2 * 96 + 5) * 3]).toBeCloseTo(-1, 6);
      expect(unmasked[0]![(2 * 96 + 5) * 3]).toBeCloseTo(1, 6);
      // The middle of the fan is untouched.
      const centre = (60 * 96 + 48) * 3;
      expect(masked[2]![centre]).toBe(unmasked[2]![centre]);
    } finally {
      disposeBuiltModel(built);
      disposeBuiltModel(plain);
    }
  });
});
