import { describe, expect, it } from 'vitest';
import { describeUnknown, sniffType } from '../../src/media/formats.js';

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

describe('sniffType', () => {
  it('recognises each accepted format from its magic bytes', () => {
    const ts = new Uint8Array(400);
    ts[0] = ts[188] = ts[376] = 0x47;
    const cases: [Uint8Array, string, string | undefined][] = [
      [bytes([0x89], 'PNG', [0x0d, 0x0a, 0x1a, 0x0a]), 'png', undefined],
      [bytes([0xff, 0xd8, 0xff, 0xe0]), 'jpeg', undefined],
      [bytes('RIFF', [0, 0, 0, 0], 'WEBPVP8 '), 'webp', undefined],
      [bytes('II', [0x2a, 0]), 'tiff', undefined],
      [bytes('BM', new Array(12).fill(0), [40, 0, 0, 0]), 'bmp', 'bmp_pipe'],
      [bytes('GIF89a'), 'gif', 'gif'],
      [bytes('RIFF', [0, 0, 0, 0], 'AVI LIST'), 'avi', 'avi'],
      [bytes([0, 0, 0, 0x20], 'ftypisom'), 'mp4', 'mov'],
      [bytes([0x1a, 0x45, 0xdf, 0xa3]), 'matroska', 'matroska'],
      [bytes([0, 0, 1, 0xba]), 'mpeg', 'mpeg'],
      [ts, 'mpegts', 'mpegts'],
    ];
    for (const [data, format, demuxer] of cases) {
      const type = sniffType(data);
      expect(type?.format).toBe(format);
      expect(type?.demuxer).toBe(demuxer);
    }
  });

  it('rejects playlists, concat lists, SVG, text and empty files with a reason', () => {
    for (const text of ['#EXTM3U\nfile:/etc/passwd', 'ffconcat version 1.0\nfile /etc/passwd', '<svg xmlns="x"/>', 'hello']) {
      expect(sniffType(bytes(text))).toBeUndefined();
    }
    expect(describeUnknown(bytes('#EXTM3U\n'))).toMatch(/m3u8/);
    expect(describeUnknown(bytes('ffconcat version 1.0'))).toMatch(/concat/);
    expect(describeUnknown(new Uint8Array())).toBe('the file is empty');
  });
});
