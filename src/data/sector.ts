// The imaging sector of an ultrasound clip: a convex probe's fan (apex, inner and outer radius,
// left and right angle) or a linear probe's rectangle, fitted to the frames of one source. Outside
// it is the scanner's screen: black corners, burned-in text, logos, calipers — what identifies the
// machine, not the lung. The fit uses intensity only to find the sector's straight side edges and
// its top and bottom; the mask it gives is the fitted geometry, so dark (anechoic) findings inside
// the lung are never masked. One function for data build, training, predict, the server and the
// page: pure TypeScript on 8-bit RGB, no Node imports.

export interface ConvexSector {
  kind: 'convex';
  /** Frame size the geometry is measured in (pixels); other sizes of the same frames scale it. */
  width: number;
  height: number;
  /** Apex (where the side edges meet, usually above the frame), pixels. */
  apexX: number;
  apexY: number;
  innerRadius: number;
  outerRadius: number;
  /** Angles of the side edges from straight down, radians: left < 0 < right for a centred fan. */
  leftAngle: number;
  rightAngle: number;
}

export interface LinearSector {
  kind: 'linear';
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** No sector could be fitted: the whole frame is kept (and the fit says why). */
export interface WholeFrame {
  kind: 'none';
  width: number;
  height: number;
  reason: string;
}

export type SectorGeometry = ConvexSector | LinearSector | WholeFrame;

/** What the network sees of the sector: 'mask' blacks out the rest, 'crop' enlarges its bounding box, 'warp' unrolls a fan into depth × angle. */
export type SectorMode = 'off' | 'mask' | 'crop' | 'warp';
export const SECTOR_MODES: readonly SectorMode[] = ['off', 'mask', 'crop', 'warp'];

export interface RgbFrame {
  width: number;
  height: number;
  /** Interleaved 8-bit RGB. */
  rgb: Uint8Array | Uint8ClampedArray;
}

/** A pixel is sector when the brightest value it reaches over the frames (3×3 blur) exceeds the background's by this much (0–255). */
const ABOVE_BACKGROUND = 4;
/** Corners brighter than this: the picture is all sector (a linear probe's clip cropped inside its image). */
const BRIGHT_CORNERS = 40;
/** Share of the bright pixels a fitted sector may leave outside (burned-in text, soft edges). */
const MAX_CUT = 0.06;
/** Side edges steeper than this (|dx/dy|) make a fan; flatter ones a rectangle. */
const MIN_FAN_SLOPE = 0.06;

/**
 * Per pixel, the brightest luma over the frames (speckle makes every sector pixel light up in some
 * frame). Not blurred: a blur carries the bright chest wall further out than the dark lung below
 * it and tilts the fitted edges; stray bright pixels are handled by the row runs and the robust fit.
 */
function brightestLuma(frames: readonly RgbFrame[]): Float32Array {
  const { width, height } = frames[0]!;
  const peak = new Float32Array(width * height);
  for (const frame of frames) {
    if (frame.width !== width || frame.height !== height) throw new Error(`sector: frames differ in size (${frame.width}×${frame.height} and ${width}×${height})`);
    const rgb = frame.rgb;
    for (let p = 0; p < width * height; p++) {
      const luma = 0.299 * rgb[p * 3]! + 0.587 * rgb[p * 3 + 1]! + 0.114 * rgb[p * 3 + 2]!;
      if (luma > peak[p]!) peak[p] = luma;
    }
  }
  return peak;
}

/** The longest run of foreground pixels in a row (gaps up to 8 px bridged): [start, end] or undefined. */
function rowExtent(fg: Uint8Array, width: number, y: number): [number, number] | undefined {
  let best: [number, number] | undefined;
  let start = -1;
  let lastOn = -10;
  for (let x = 0; x <= width; x++) {
    const on = x < width && fg[y * width + x] === 1;
    if (on) {
      if (start < 0 || x - lastOn > 9) {
        if (start >= 0 && (!best || lastOn - start > best[1] - best[0])) best = [start, lastOn];
        start = x;
      }
      lastOn = x;
    }
  }
  if (start >= 0 && (!best || lastOn - start > best[1] - best[0])) best = [start, lastOn];
  return best;
}

/**
 * x = a + b·y by least squares, refitted without the points further off than 3 robust standard
 * deviations of the residuals (at least 2 px): real sector edges are soft and speckled.
 */
function robustLine(points: readonly [number, number][]): { a: number; b: number; kept: number } | undefined {
  let use = points;
  let fit: { a: number; b: number } | undefined;
  for (let round = 0; round < 4; round++) {
    if (use.length < 8) return undefined;
    let sy = 0;
    let sx = 0;
    let syy = 0;
    let sxy = 0;
    for (const [y, x] of use) {
      sy += y;
      sx += x;
      syy += y * y;
      sxy += x * y;
    }
    const n = use.length;
    const det = n * syy - sy * sy;
    if (Math.abs(det) < 1e-9) return undefined;
    const b = (n * sxy - sx * sy) / det;
    const f = { a: (sx - b * sy) / n, b };
    fit = f;
    const residuals = points.map(([y, x]) => Math.abs(x - (f.a + f.b * y)));
    const spread = 1.4826 * percentile(use.map(([y, x]) => Math.abs(x - (f.a + f.b * y))), 0.5);
    const limit = Math.max(2, 3 * spread);
    use = points.filter((_, i) => residuals[i]! <= limit);
  }
  return fit ? { ...fit, kept: use.length } : undefined;
}

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
}

/**
 * Fits the sector to the frames of one source (all the same size; one frame for an image). Side
 * edges that run along the frame's border (a sector cropped by its clip) count as that border.
 */
export function fitSector(frames: readonly RgbFrame[]): SectorGeometry {
  if (frames.length === 0) throw new Error('sector: no frames to fit');
  const { width, height } = frames[0]!;
  const whole = (reason: string): WholeFrame => ({ kind: 'none', width, height, reason });
  const peak = brightestLuma(frames);
  // The screen background: the darkest of the four corners (a fan leaves at least the top ones out).
  const corner = (x0: number, y0: number): number => {
    const values: number[] = [];
    for (let y = y0; y < y0 + 6; y++) for (let x = x0; x < x0 + 6; x++) values.push(peak[y * width + x]!);
    return percentile(values, 0.5);
  };
  const background = Math.min(corner(0, 0), corner(width - 6, 0), corner(0, height - 6), corner(width - 6, height - 6));
  if (background > BRIGHT_CORNERS) return { kind: 'linear', width, height, left: 0, right: width - 1, top: 0, bottom: height - 1 };
  const fg = new Uint8Array(width * height);
  for (let p = 0; p < fg.length; p++) fg[p] = peak[p]! > background + ABOVE_BACKGROUND ? 1 : 0;

  const rows: { y: number; left: number; right: number }[] = [];
  for (let y = 0; y < height; y++) {
    const extent = rowExtent(fg, width, y);
    if (extent && extent[1] - extent[0] >= 0.15 * width) rows.push({ y, left: extent[0], right: extent[1] });
  }
  if (rows.length < 0.3 * height) return whole(`the bright region spans only ${rows.length} of ${height} rows`);
  const top = rows[0]!.y;
  const bottom = rows[rows.length - 1]!.y;
  // The side edges are straight below the top arc: fit them on every row below the top few, leaving
  // out rows where the edge lies on the frame's border (the fan is wider than the clip's crop).
  const below = rows.filter((r) => r.y >= top + 0.05 * (bottom - top) && r.y <= bottom - 0.05 * (bottom - top));
  const enough = Math.max(10, 0.15 * below.length);
  // Going down, a fan's edge moves outwards until it leaves the frame or meets the bottom arc,
  // which turns it back: keep each edge down to its outermost point.
  const untilTurn = (points: [number, number][], outward: (a: number, b: number) => boolean): [number, number][] => {
    let turn = points.length;
    let extreme = 0;
    points.forEach(([, x], i) => {
      if (outward(x, points[extreme]![1])) extreme = i;
    });
    if (points.length) turn = extreme + 1;
    return points.slice(0, turn);
  };
  const leftPoints = untilTurn(below.filter((r) => r.left > 1).map((r) => [r.y, r.left] as [number, number]), (x, best) => x <= best);
  const rightPoints = untilTurn(below.filter((r) => r.right < width - 2).map((r) => [r.y, r.right] as [number, number]), (x, best) => x >= best);
  const left = leftPoints.length >= enough ? robustLine(leftPoints) : { a: 0, b: 0, kept: leftPoints.length };
  const right = rightPoints.length >= enough ? robustLine(rightPoints) : { a: width - 1, b: 0, kept: rightPoints.length };
  if (!left || !right) return whole('the side edges are not straight lines');
  // Rows whose edge pixels are dark lung read as inner points; most rows must still agree on a line.
  if ((leftPoints.length >= enough && left.kept < Math.max(10, 0.4 * leftPoints.length)) || (rightPoints.length >= enough && right.kept < Math.max(10, 0.4 * rightPoints.length))) {
    return whole('the side edges are not straight lines');
  }

  if (Math.abs(left.b) < MIN_FAN_SLOPE && Math.abs(right.b) < MIN_FAN_SLOPE) {
    const at = (line: { a: number; b: number }) => line.a + line.b * (top + bottom) / 2;
    return { kind: 'linear', width, height, left: Math.max(0, at(left)), right: Math.min(width - 1, at(right)), top, bottom };
  }
  if (left.b - right.b >= -1e-6) return whole('the side edges do not open downwards like a fan');
  // Edges x = a + b·y meet at the apex.
  const apexY = (right.a - left.a) / (left.b - right.b);
  const apexX = left.a + left.b * apexY;
  if (apexY > top + 0.25 * (bottom - top)) return whole('the side edges meet inside the picture, not above it');
  const leftAngle = Math.atan(left.b);
  const rightAngle = Math.atan(right.b);
  // Radii from the foreground pixels between the edges: the top arc and the deepest echo.
  const radii: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (fg[y * width + x] !== 1) continue;
      const theta = Math.atan2(x - apexX, y - apexY);
      if (theta > leftAngle + 0.02 && theta < rightAngle - 0.02) radii.push(Math.hypot(x - apexX, y - apexY));
    }
  }
  if (radii.length < 0.05 * width * height) return whole('too little of the fan is bright');
  const fan: ConvexSector = {
    kind: 'convex',
    width,
    height,
    apexX,
    apexY,
    innerRadius: percentile(radii, 0.002),
    outerRadius: percentile(radii, 0.998),
    leftAngle,
    rightAngle,
  };
  return plausible(fan, fg) ?? fan;
}

/**
 * Most of what is bright must lie in the fitted sector: text and logos are small, but a fan fitted
 * to the wrong edges would cut off the lung. Returns the whole frame (with the reason) when more
 * than MAX_CUT of the bright pixels would be masked.
 */
function plausible(sector: ConvexSector | LinearSector, fg: Uint8Array): WholeFrame | undefined {
  const { width, height } = sector;
  let bright = 0;
  let cut = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!fg[y * width + x]) continue;
      bright++;
      if (!insideSector(sector, x, y, width, height)) cut++;
    }
  }
  const share = cut / Math.max(bright, 1);
  return share > MAX_CUT ? { kind: 'none', width, height, reason: `a fitted ${sector.kind} sector would cut off ${(100 * share).toFixed(0)}% of the bright picture` } : undefined;
}

/** Whether the pixel centre (x, y) of a width×height frame lies in the sector (scaled to that size). */
export function insideSector(sector: SectorGeometry, x: number, y: number, width: number, height: number): boolean {
  const sx = (x + 0.5) * (sector.width / width) - 0.5;
  const sy = (y + 0.5) * (sector.height / height) - 0.5;
  if (sector.kind === 'none') return true;
  if (sector.kind === 'linear') return sx >= sector.left - 0.5 && sx <= sector.right + 0.5 && sy >= sector.top - 0.5 && sy <= sector.bottom + 0.5;
  const r = Math.hypot(sx - sector.apexX, sy - sector.apexY);
  const theta = Math.atan2(sx - sector.apexX, sy - sector.apexY);
  return r >= sector.innerRadius - 0.5 && r <= sector.outerRadius + 0.5 && theta >= sector.leftAngle - 0.5 / r && theta <= sector.rightAngle + 0.5 / r;
}

/** 1 inside the sector, 0 outside, for a width×height frame. */
export function sectorMask(sector: SectorGeometry, width: number, height: number): Uint8Array {
  const mask = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) mask[y * width + x] = insideSector(sector, x, y, width, height) ? 1 : 0;
  return mask;
}

/**
 * sectorMask, kept per sector object and size: every frame of a clip shares its sector, and the
 * per-pixel geometry cost ~3 ms a 224² frame (the page classifies frame by frame). Read-only.
 */
const masks = new WeakMap<SectorGeometry, Map<string, Uint8Array>>();
function cachedSectorMask(sector: SectorGeometry, width: number, height: number): Uint8Array {
  let bySize = masks.get(sector);
  if (!bySize) masks.set(sector, (bySize = new Map()));
  const key = `${width}x${height}`;
  let mask = bySize.get(key);
  if (!mask) bySize.set(key, (mask = sectorMask(sector, width, height)));
  return mask;
}

/** The sector's bounding box within the frame, in the frame's pixels: [left, top, right, bottom] (inclusive). */
export function sectorBounds(sector: SectorGeometry, width: number, height: number): [number, number, number, number] {
  const mask = sectorMask(sector, width, height);
  let [l, t, r, b] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      l = Math.min(l, x);
      r = Math.max(r, x);
      t = Math.min(t, y);
      b = Math.max(b, y);
    }
  }
  return r < 0 ? [0, 0, width - 1, height - 1] : [l, t, r, b];
}

/** Bilinear sample of channel c at (x, y) (pixel centres at integers), edges clamped. */
function sample(frame: RgbFrame, x: number, y: number, c: number): number {
  const { width, height, rgb } = frame;
  const px = Math.min(Math.max(x, 0), width - 1);
  const py = Math.min(Math.max(y, 0), height - 1);
  const x0 = Math.floor(px);
  const y0 = Math.floor(py);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = px - x0;
  const fy = py - y0;
  const at = (xx: number, yy: number) => rgb[(yy * width + xx) * 3 + c]!;
  return (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) + fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1));
}

/**
 * The frame as the network should see its sector: 'mask' keeps the frame and blacks out what lies
 * outside; 'crop' resamples the sector's bounding box (masked) to the frame's size; 'warp' unrolls
 * a fan into rows of equal depth and columns of equal angle (scan conversion reversed; a rectangle
 * is cropped). A frame without a fitted sector comes back unchanged.
 */
export function applySector(frame: RgbFrame, sector: SectorGeometry, mode: SectorMode): RgbFrame {
  const { width, height } = frame;
  if (mode === 'off' || sector.kind === 'none') return frame;
  const mask = cachedSectorMask(sector, width, height);
  const masked = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    if (!mask[p]) continue;
    masked[p * 3] = frame.rgb[p * 3]!;
    masked[p * 3 + 1] = frame.rgb[p * 3 + 1]!;
    masked[p * 3 + 2] = frame.rgb[p * 3 + 2]!;
  }
  if (mode === 'mask') return { width, height, rgb: masked };
  const source: RgbFrame = { width, height, rgb: masked };
  const out = new Uint8Array(width * height * 3);
  if (mode === 'warp' && sector.kind === 'convex') {
    const sx = width / sector.width;
    const sy = height / sector.height;
    for (let i = 0; i < height; i++) {
      const r = sector.innerRadius + ((sector.outerRadius - sector.innerRadius) * (i + 0.5)) / height;
      for (let j = 0; j < width; j++) {
        const theta = sector.leftAngle + ((sector.rightAngle - sector.leftAngle) * (j + 0.5)) / width;
        // Back to this frame's pixels (the geometry may be measured at another size).
        const x = (sector.apexX + r * Math.sin(theta) + 0.5) * sx - 0.5;
        const y = (sector.apexY + r * Math.cos(theta) + 0.5) * sy - 0.5;
        for (let c = 0; c < 3; c++) out[(i * width + j) * 3 + c] = Math.round(sample(source, x, y, c));
      }
    }
    return { width, height, rgb: out };
  }
  const [l, t, r, b] = sectorBounds(sector, width, height);
  for (let i = 0; i < height; i++) {
    const y = t - 0.5 + ((b - t + 1) * (i + 0.5)) / height;
    for (let j = 0; j < width; j++) {
      const x = l - 0.5 + ((r - l + 1) * (j + 0.5)) / width;
      for (let c = 0; c < 3; c++) out[(i * width + j) * 3 + c] = Math.round(sample(source, x, y, c));
    }
  }
  return { width, height, rgb: out };
}
