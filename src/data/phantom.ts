// A SYNTHETIC lung-ultrasound phantom in the POCUS folder layout: no real patient anywhere.
// It is the demo's embedded default and the tests' data. Each scene is a convex-probe sector
// with correlated Rayleigh speckle; the classes differ the way the clinical signs do:
//   regular:   thin, smooth, bright pleural line; horizontal A-lines at multiples of its depth
//   covid:     thick, irregular, broken pleural line; vertical B-lines down to the bottom;
//              small subpleural consolidations
//   pneumonia: a large hypoechoic, tissue-like consolidation with bright air-bronchogram spots
// Depth, sector angle, gain, attenuation, counts and positions vary per scene, and some signs
// cross classes (a faint B-line in a healthy lung), so the task is learnable but not trivial.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PocovidError } from '../errors.js';
import { writeFileAtomic, writeFileAtomicSync, writeJsonAtomicSync } from '../util/atomic.js';
import { createRng, type Rng } from '../util/rng.js';
import { formatCsv } from './csv.js';
import { encodeVideo } from '../media/ffmpeg.js';
import { encodePng } from './image.js';
import { createProgress } from './progress.js';

export type PhantomClass = 'covid' | 'pneumonia' | 'regular';
export const PHANTOM_CLASSES: readonly PhantomClass[] = ['covid', 'pneumonia', 'regular'];
const PREFIX: Record<PhantomClass, string> = { covid: 'Cov', pneumonia: 'Pneu', regular: 'Reg' };
const LABEL_TEXT: Record<PhantomClass, string> = { covid: 'COVID-19', pneumonia: 'Pneumonia', regular: 'regular' };

interface Blob {
  /** Lateral position in [-1, 1] and depth in [0, 1] of the sector. */
  u: number;
  d: number;
  /** Half-extent laterally and in depth. */
  ru: number;
  rd: number;
  intensity: number;
}

/** Everything random about one scene; frames of a video share it and differ by motion only. */
export interface PhantomScene {
  label: PhantomClass;
  size: number;
  apexY: number;
  halfAngle: number;
  innerRadius: number;
  outerRadius: number;
  gain: number;
  attenuation: number;
  pleuraDepth: number;
  pleuraWidth: number;
  pleuraIntensity: number;
  /** Amplitude of the pleural line's waviness (depth units) and its gaps (u intervals). */
  pleuraRoughness: number;
  pleuraGaps: [number, number][];
  aLines: number;
  aLineIntensity: number;
  bLines: { u: number; width: number; intensity: number }[];
  subpleural: Blob[];
  consolidation: (Blob & { wobble: number[] }) | undefined;
  bronchograms: Blob[];
  /** Correlated speckle, size×size, mean 1, indexed by (lateral, depth). */
  speckle: Float32Array;
  /** Lung sliding amplitude (u units) and probe jitter (pixels). */
  slide: number;
  jitter: number;
}

function smoothSpeckle(size: number, rng: Rng): Float32Array {
  const raw = new Float32Array(size * size);
  // Rayleigh(σ=1) via inverse CDF; its mean is √(π/2).
  for (let i = 0; i < raw.length; i++) raw[i] = Math.sqrt(-2 * Math.log(1 - rng.next())) / Math.sqrt(Math.PI / 2);
  // Grain a couple of pixels wide: speckle is correlated over the beam's resolution cell.
  const out = new Float32Array(raw.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      let n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
          sum += raw[yy * size + xx]!;
          n++;
        }
      }
      out[y * size + x] = 0.35 * raw[y * size + x]! + 0.65 * (sum / n);
    }
  }
  return out;
}

/**
 * Another scanner or site: the same lungs seen through another probe geometry and gain (to test
 * how a model trained on one site does on another, and `pocovid update`). Applied after the
 * scene is drawn, so a scene keeps every random choice it has at the default site.
 */
export interface PhantomSite {
  /** Multiplies the scene's gain (default 1). */
  gain?: number;
  /** Half-angle of the sector in degrees (default: random 28–40°). */
  sectorDegrees?: number;
  /** Distance of the virtual apex above the frame, in frame sides (default: random 0.15–0.35; larger = flatter, more linear-looking). */
  apex?: number;
}

export function applySite(scene: PhantomScene, site: PhantomSite | undefined): PhantomScene {
  if (!site) return scene;
  const out = { ...scene };
  if (site.gain !== undefined) out.gain = scene.gain * site.gain;
  if (site.sectorDegrees !== undefined) out.halfAngle = (site.sectorDegrees * Math.PI) / 180;
  if (site.apex !== undefined) {
    // The radii were drawn from the apex: move them with it so the depth covered stays the same.
    const apexY = -scene.size * site.apex;
    out.innerRadius = scene.innerRadius + (scene.apexY - apexY);
    out.outerRadius = scene.outerRadius + (scene.apexY - apexY);
    out.apexY = apexY;
  }
  return out;
}

/** Draws a random scene of the class (seen at `site`, default the usual convex probe). */
export function samplePhantomScene(label: PhantomClass, size: number, rng: Rng, site?: PhantomSite): PhantomScene {
  const u = (lo: number, hi: number) => rng.uniform(lo, hi);
  const pleuraDepth = u(0.16, 0.3);
  const scene: PhantomScene = {
    label,
    size,
    apexY: -size * u(0.15, 0.35),
    halfAngle: (u(28, 40) * Math.PI) / 180,
    innerRadius: 0,
    outerRadius: 0,
    gain: u(0.8, 1.2),
    attenuation: u(0.3, 0.9),
    pleuraDepth,
    pleuraWidth: u(0.006, 0.011),
    pleuraIntensity: u(0.85, 1.1),
    pleuraRoughness: 0,
    pleuraGaps: [],
    aLines: 0,
    aLineIntensity: 0,
    bLines: [],
    subpleural: [],
    consolidation: undefined,
    bronchograms: [],
    speckle: smoothSpeckle(size, rng),
    slide: u(0.005, 0.02),
    jitter: u(0, 1.5),
  };
  scene.innerRadius = -scene.apexY + size * u(0.02, 0.06);
  scene.outerRadius = -scene.apexY + size * u(0.92, 0.99);
  const bLine = (intensity: number) => ({ u: u(-0.8, 0.8), width: u(0.025, 0.06), intensity });
  if (label === 'regular') {
    scene.aLines = 3;
    scene.aLineIntensity = u(0.45, 0.75);
    if (rng.next() < 0.3) scene.bLines.push(bLine(u(0.15, 0.3))); // a healthy lung may show one faint B-line
  } else if (label === 'covid') {
    scene.pleuraWidth = u(0.014, 0.026);
    scene.pleuraRoughness = u(0.008, 0.02);
    const gaps = 1 + rng.int(3);
    for (let i = 0; i < gaps; i++) {
      const c = u(-0.85, 0.85);
      const w = u(0.04, 0.12);
      scene.pleuraGaps.push([c - w, c + w]);
    }
    const count = 2 + rng.int(4);
    for (let i = 0; i < count; i++) scene.bLines.push(bLine(u(0.45, 0.9)));
    if (rng.next() < 0.3) {
      scene.aLines = 2;
      scene.aLineIntensity = u(0.1, 0.25); // A-lines can persist faintly between B-lines
    }
    const blobs = 1 + rng.int(3);
    for (let i = 0; i < blobs; i++) {
      scene.subpleural.push({ u: u(-0.75, 0.75), d: pleuraDepth + u(0.03, 0.06), ru: u(0.06, 0.12), rd: u(0.025, 0.05), intensity: u(0.25, 0.4) });
    }
  } else {
    scene.pleuraRoughness = u(0, 0.006);
    const c = { u: u(-0.35, 0.35), d: pleuraDepth + u(0.22, 0.35), ru: u(0.4, 0.65), rd: u(0.18, 0.3), intensity: u(0.3, 0.45) };
    scene.consolidation = { ...c, wobble: [u(0, 0.12), u(0, Math.PI * 2), u(0, 0.08), u(0, Math.PI * 2)] };
    const spots = 8 + rng.int(16);
    for (let i = 0; i < spots; i++) {
      const angle = u(0, Math.PI * 2);
      const radius = Math.sqrt(rng.next()) * 0.8;
      scene.bronchograms.push({ u: c.u + radius * c.ru * Math.cos(angle), d: c.d + radius * c.rd * Math.sin(angle), ru: u(0.015, 0.05), rd: u(0.006, 0.012), intensity: u(0.6, 1) });
    }
    scene.aLines = rng.next() < 0.4 ? 2 : 0;
    scene.aLineIntensity = u(0.15, 0.35);
    if (rng.next() < 0.4) scene.bLines.push(bLine(u(0.3, 0.6)));
  }
  return applySite(scene, site);
}

const gauss = (x: number) => Math.exp(-x * x);

/** Renders frame `t` (0, 1, 2… of a video; motion only) of a scene as size×size 8-bit RGB. */
export function renderPhantomFrame(scene: PhantomScene, t: number, rng: Rng): Uint8Array {
  const { size } = scene;
  const out = new Uint8Array(size * size * 3);
  // Lung sliding: the lung below the pleura moves sideways with breathing; the probe jitters.
  const slide = scene.slide * Math.sin((2 * Math.PI * t) / 8);
  const jx = t === 0 ? 0 : rng.uniform(-scene.jitter, scene.jitter);
  const jy = t === 0 ? 0 : rng.uniform(-scene.jitter, scene.jitter) * 0.5;
  const ax = (size - 1) / 2 + jx;
  const ay = scene.apexY + jy;
  const span = scene.outerRadius - scene.innerRadius;
  const p = scene.pleuraDepth;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - ax;
      const dy = y - ay;
      const r = Math.sqrt(dx * dx + dy * dy);
      const theta = Math.atan2(dx, dy);
      if (Math.abs(theta) >= scene.halfAngle || r <= scene.innerRadius || r >= scene.outerRadius) continue;
      const lateral = theta / scene.halfAngle;
      const d = (r - scene.innerRadius) / span;
      const inLung = d > p;
      const lu = inLung ? lateral + slide : lateral;
      // Chest wall: layered soft tissue; lung: air, dark apart from artefacts.
      let v = inLung ? 0.06 : 0.3 + 0.08 * Math.sin(d * 60 + lateral * 2) + 0.05 * Math.sin(d * 23);
      const pleuraAt = p + scene.pleuraRoughness * (Math.sin(lateral * 17 + 1.3) + 0.6 * Math.sin(lateral * 41 + 0.4));
      let pleura = scene.pleuraIntensity * gauss((d - pleuraAt) / scene.pleuraWidth);
      for (const [g0, g1] of scene.pleuraGaps) if (lateral > g0 && lateral < g1) pleura *= 0.25;
      v += pleura;
      if (inLung) {
        // A-lines: reverberations of the pleura at multiples of its depth from the skin.
        for (let k = 2; k <= scene.aLines + 1; k++) {
          v += (scene.aLineIntensity / (k - 1)) * gauss((d - k * p) / (scene.pleuraWidth * 1.2));
        }
        for (const b of scene.bLines) {
          v += b.intensity * gauss((lu - b.u) / b.width) * (1 - 0.35 * (d - p));
        }
        for (const s of scene.subpleural) {
          const q = ((lu - s.u) / s.ru) ** 2 + ((d - s.d) / s.rd) ** 2;
          if (q < 1) v = Math.max(v * 0.3, s.intensity * (0.7 + 0.3 * Math.sin(x * 0.9 + y * 0.7)));
        }
        const c = scene.consolidation;
        if (c) {
          const phi = Math.atan2((d - c.d) / c.rd, (lu - c.u) / c.ru);
          const edge = 1 + c.wobble[0]! * Math.sin(3 * phi + c.wobble[1]!) + c.wobble[2]! * Math.sin(5 * phi + c.wobble[3]!);
          const q = Math.sqrt(((lu - c.u) / c.ru) ** 2 + ((d - c.d) / c.rd) ** 2);
          if (q < edge) {
            // Hepatisation: the airless lung looks like liver, textured mid-grey.
            v = c.intensity * (0.8 + 0.2 * Math.sin(x * 0.5) * Math.cos(y * 0.45));
            for (const s of scene.bronchograms) v += s.intensity * gauss((lu - s.u) / s.ru) * gauss((d - s.d) / s.rd);
          }
        }
      }
      const speck = scene.speckle[Math.min(size - 1, Math.round(d * (size - 1))) * size + Math.min(size - 1, Math.max(0, Math.round(((lu + 1) / 2) * (size - 1))))]!;
      v *= speck * scene.gain * Math.exp(-scene.attenuation * d);
      const byte = Math.max(0, Math.min(255, Math.round(v * 200)));
      const o = (y * size + x) * 3;
      out[o] = out[o + 1] = out[o + 2] = byte;
    }
  }
  return out;
}

export interface PhantomOptions {
  out: string;
  /** Videos per class (default 6); patients hold 1–2 videos each. */
  perClass?: number;
  /** Still images per class (default 2). */
  imagesPerClass?: number;
  seed?: number;
  /** Frame side in pixels (default 160). */
  size?: number;
  /** Frames per video (default 10) and their rate (default 5 fps: 2 s). */
  frames?: number;
  fps?: number;
  /** Another probe geometry and gain (a simulated second site). */
  site?: PhantomSite;
  quiet?: boolean;
}

export interface PhantomResult {
  videos: string[];
  images: string[];
  patients: number;
}

const VIDEO_EXTENSIONS = ['mp4', 'avi', 'gif'] as const;

/** Writes the phantom folder: pocus_videos/convex, pocus_images/convex, dataset_metadata.csv, crop.json, phantom.json. */
export async function writePhantom(options: PhantomOptions): Promise<PhantomResult> {
  const perClass = options.perClass ?? 6;
  const imagesPerClass = options.imagesPerClass ?? 2;
  const size = options.size ?? 160;
  const frameCount = options.frames ?? 10;
  const fps = options.fps ?? 5;
  const seed = options.seed ?? 0;
  if (!(Number.isInteger(perClass) && perClass >= 1)) throw new PocovidError(`--per-class must be a positive integer, got ${perClass}`);
  if (!(Number.isInteger(size) && size >= 32 && size <= 1024)) throw new PocovidError(`--size must be an integer in 32..1024, got ${size}`);
  const rng = createRng(seed);
  mkdirSync(join(options.out, 'pocus_videos', 'convex'), { recursive: true });
  mkdirSync(join(options.out, 'pocus_images', 'convex'), { recursive: true });
  const metadata: string[][] = [['Filename', 'Current location', 'Label', 'Type', 'Probe', 'Patient ID / Name', 'Comments']];
  const result: PhantomResult = { videos: [], images: [], patients: 0 };
  const total = PHANTOM_CLASSES.length * (perClass + imagesPerClass);
  const progress = createProgress({ label: 'data phantom', total, quiet: options.quiet });
  let done = 0;
  const newPatient = () => `phantom-${String(++result.patients).padStart(3, '0')}`;
  for (const label of PHANTOM_CLASSES) {
    let patient = newPatient();
    for (let i = 0; i < perClass; i++) {
      // Every third video starts a patient with two videos, so grouping by patient matters.
      if (i > 0 && i % 3 !== 1) patient = newPatient();
      const sceneRng = rng.fork();
      const scene = samplePhantomScene(label, size, sceneRng, options.site);
      const frames = Array.from({ length: frameCount }, (_, t) => renderPhantomFrame(scene, t, sceneRng));
      const ext = VIDEO_EXTENSIONS[i % VIDEO_EXTENSIONS.length]!;
      const stem = `${PREFIX[label]}_phantom_${String(i + 1).padStart(3, '0')}`;
      const rel = `pocus_videos/convex/${stem}.${ext}`;
      await encodeVideo(join(options.out, rel), frames, size, size, fps);
      result.videos.push(rel);
      metadata.push([stem, 'pocus_videos/convex', LABEL_TEXT[label], 'video', 'convex', patient, 'SYNTHETIC phantom, not a patient']);
      progress.update(++done, rel);
    }
    for (let i = 0; i < imagesPerClass; i++) {
      const imageRng = rng.fork();
      const scene = samplePhantomScene(label, size, imageRng, options.site);
      const stem = `${PREFIX[label]}_phantom_img_${String(i + 1).padStart(3, '0')}`;
      const rel = `pocus_images/convex/${stem}.png`;
      await writeFileAtomic(join(options.out, rel), await encodePng(renderPhantomFrame(scene, 0, imageRng), size, size));
      result.images.push(rel);
      metadata.push([stem, 'pocus_images/convex', LABEL_TEXT[label], 'image', 'convex', newPatient(), 'SYNTHETIC phantom, "still" image']);
      progress.update(++done, rel);
    }
  }
  progress.stop();
  writeFileAtomicSync(join(options.out, 'dataset_metadata.csv'), formatCsv(metadata));
  writeJsonAtomicSync(join(options.out, 'crop.json'), {});
  writeJsonAtomicSync(join(options.out, 'phantom.json'), {
    synthetic: true,
    description: 'SYNTHETIC lung-ultrasound phantom written by `pocovid data phantom`; no real patient data.',
    seed,
    perClass,
    imagesPerClass,
    size,
    frames: frameCount,
    fps,
    ...(options.site ? { site: options.site } : {}),
  });
  return result;
}
