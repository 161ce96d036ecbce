// DICOM RLE Lossless (transfer syntax 1.2.840.10008.1.2.5, PS3.5 annex G): each frame is one
// fragment holding a 64-byte header (segment count, then up to 15 segment offsets, all uint32
// little-endian) and PackBits-compressed segments. A segment holds one byte of one sample for
// every pixel, most significant byte first: 8-bit RGB has segments R, G, B; 16-bit grey has
// high bytes, then low bytes. No maintained npm package decodes it alone (the ones that do
// come with a whole viewer), and the format is a page of the standard, so it lives here.
export interface RleFrameLayout {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  /** 8 or 16. */
  bitsAllocated: number;
}

/**
 * Decodes one RLE frame into samples stored plane by plane (all of sample 0, then sample 1...),
 * as unsigned 8-bit (bitsAllocated 8) or 16-bit values. Throws an Error saying which segment is
 * short or malformed; the caller names the file.
 */
export function decodeRleFrame(bytes: Uint8Array, layout: RleFrameLayout): Uint8Array | Uint16Array {
  const { rows, columns, samplesPerPixel, bitsAllocated } = layout;
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new Error(`RLE with ${bitsAllocated} bits allocated is not supported (8 or 16)`);
  if (bytes.length < 64) throw new Error(`RLE frame of ${bytes.length} bytes is shorter than its 64-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bytesPerSample = bitsAllocated / 8;
  const segments = view.getUint32(0, true);
  const expected = samplesPerPixel * bytesPerSample;
  if (segments !== expected) throw new Error(`RLE header lists ${segments} segments, expected ${expected} (${samplesPerPixel} samples × ${bytesPerSample} bytes)`);
  const offsets: number[] = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + 4 * s, true));
  const pixels = rows * columns;
  const planes = new Uint8Array(pixels * segments);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s]!;
    const end = s + 1 < segments ? offsets[s + 1]! : bytes.length;
    if (start < 64 || end > bytes.length || end < start) throw new Error(`RLE segment ${s + 1} has offsets ${start}..${end} outside the ${bytes.length}-byte frame`);
    const written = unpackBits(bytes, start, end, planes, s * pixels, pixels);
    if (written < pixels) throw new Error(`RLE segment ${s + 1} decodes to ${written} of ${pixels} bytes (truncated or corrupt)`);
  }
  if (bytesPerSample === 1) return planes;
  // Join each sample's high-byte and low-byte segments.
  const out = new Uint16Array(pixels * samplesPerPixel);
  for (let sample = 0; sample < samplesPerPixel; sample++) {
    const high = sample * 2 * pixels;
    const low = high + pixels;
    for (let i = 0; i < pixels; i++) out[sample * pixels + i] = (planes[high + i]! << 8) | planes[low + i]!;
  }
  return out;
}

/**
 * PackBits: a header byte n; 0..127 copies the next n+1 bytes, -127..-1 repeats the next byte
 * 1-n times, -128 does nothing. Writes at most `limit` bytes (a crafted segment cannot write
 * past its plane) and returns how many it wrote; trailing bytes past `limit` are padding.
 */
export function unpackBits(input: Uint8Array, start: number, end: number, output: Uint8Array, at: number, limit: number): number {
  let i = start;
  let n = 0;
  while (i < end && n < limit) {
    const header = input[i++]!;
    if (header < 128) {
      const count = Math.min(header + 1, end - i, limit - n);
      output.set(input.subarray(i, i + count), at + n);
      i += header + 1;
      n += count;
    } else if (header > 128) {
      if (i >= end) break;
      const count = Math.min(257 - header, limit - n);
      output.fill(input[i++]!, at + n, at + n + count);
      n += count;
    }
  }
  return n;
}
