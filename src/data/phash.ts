// A perceptual hash for finding the same picture twice (re-encoded, re-compressed, brightened,
// slightly shifted): the frame in grey, resized to 64×64, its 2-D DCT-II, and one bit per
// coefficient of the 16×16 lowest frequencies except the DC term (255 bits): 1 where the
// coefficient is above their median. Two frames are compared by the number of differing bits.
//
// Why 255 bits and not the common 64 (8×8 of a 32×32 DCT): lung-ultrasound frames share the
// sector's shape and the brightness falling off with depth, and at 64 bits that is almost all
// the hash sees. On the real POCUS frames, frames of different patients came within 4 of 64 bits
// (a distance that re-encoding alone reaches); at 255 bits the closest two patients differ by 36
// while a JPEG re-encode (quality 40) gives 0, brightness/contrast +15% at most 14 and a 3% shift
// 32 in the median; a 4% crop (76) is out of reach (scripts/phash-threshold.ts; docs/results.md,
// "Leakage audit").
import sharp from 'sharp';

export const HASH_SIDE = 64;
export const HASH_FREQUENCIES = 16;
/** Bits in a hash: 16×16 coefficients less the DC term. */
export const HASH_BITS = HASH_FREQUENCIES * HASH_FREQUENCIES - 1;
/** 32-bit words per hash. */
export const HASH_WORDS = Math.ceil(HASH_BITS / 32);

/** cos((2x+1)uπ / 2N) for the frequencies kept: the DCT-II basis, computed once. */
const BASIS = (() => {
  const table = new Float64Array(HASH_FREQUENCIES * HASH_SIDE);
  for (let u = 0; u < HASH_FREQUENCIES; u++) {
    for (let x = 0; x < HASH_SIDE; x++) table[u * HASH_SIDE + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * HASH_SIDE));
  }
  return table;
})();

/** The hash of a 64×64 grey image (row-major bytes). */
export function hashGrey(grey: Uint8Array): Uint32Array {
  if (grey.length !== HASH_SIDE * HASH_SIDE) throw new Error(`expected ${HASH_SIDE}x${HASH_SIDE} grey pixels, got ${grey.length} values`);
  const K = HASH_FREQUENCIES;
  const N = HASH_SIDE;
  // Separable DCT: columns first (K×N), then rows (K×K).
  const partial = new Float64Array(K * N);
  for (let u = 0; u < K; u++) {
    for (let x = 0; x < N; x++) {
      let sum = 0;
      for (let y = 0; y < N; y++) sum += grey[y * N + x]! * BASIS[u * N + y]!;
      partial[u * N + x] = sum;
    }
  }
  const coefficients = new Float64Array(HASH_BITS);
  let k = 0;
  for (let u = 0; u < K; u++) {
    for (let v = 0; v < K; v++) {
      if (u === 0 && v === 0) continue;
      let sum = 0;
      for (let x = 0; x < N; x++) sum += partial[u * N + x]! * BASIS[v * N + x]!;
      coefficients[k++] = sum;
    }
  }
  const median = Float64Array.from(coefficients).sort()[HASH_BITS >> 1]!;
  const hash = new Uint32Array(HASH_WORDS);
  for (let i = 0; i < HASH_BITS; i++) if (coefficients[i]! > median) hash[i >> 5]! |= 1 << (i & 31);
  return hash;
}

/** The hash of an image file or encoded bytes (any format sharp reads). */
export async function perceptualHash(input: string | Uint8Array): Promise<Uint32Array> {
  const grey = await sharp(input, { failOn: 'error' }).removeAlpha().greyscale().resize(HASH_SIDE, HASH_SIDE, { fit: 'fill' }).raw().toBuffer();
  return hashGrey(new Uint8Array(grey.buffer, grey.byteOffset, grey.length));
}

function popcount(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Differing bits between hash i and hash j of a packed array (HASH_WORDS words each). */
export function distanceAt(hashes: Uint32Array, i: number, j: number): number {
  let d = 0;
  const a = i * HASH_WORDS;
  const b = j * HASH_WORDS;
  for (let w = 0; w < HASH_WORDS; w++) d += popcount(hashes[a + w]! ^ hashes[b + w]!);
  return d;
}

export function hammingDistance(a: Uint32Array, b: Uint32Array): number {
  let d = 0;
  for (let w = 0; w < HASH_WORDS; w++) d += popcount(a[w]! ^ b[w]!);
  return d;
}
