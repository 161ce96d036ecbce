import { describe, expect, it } from 'vitest';
import { aggregateVideos } from '../../src/eval/video.js';
import { applyBinaryTask, healthyVsDisease, restrictClasses } from '../../src/eval/tasks.js';
import { row } from './fixtures.js';

const AB = ['a', 'b'];

describe('aggregateVideos', () => {
  // Two frames lean slightly to a, one is sure of b: mean [0.34, 0.66] -> b, but the vote is 2:1 for a.
  const frames = [
    row('v1', 0, 'a', 'a', [0.51, 0.49], 'f1'),
    row('v1', 0, 'a', 'a', [0.51, 0.49], 'f2'),
    row('v1', 0, 'a', 'b', [0.0, 1.0], 'f3'),
    row('v2', 1, 'b', 'b', [0.2, 0.8], 'g1'),
  ];

  it('decides by mean probability and by majority vote differently on a crafted video', () => {
    const byMean = aggregateVideos(frames, AB, 'mean');
    const byVote = aggregateVideos(frames, AB, 'vote');
    expect(byMean.map((v) => v.predicted)).toEqual(['b', 'b']);
    expect(byVote.map((v) => v.predicted)).toEqual(['a', 'b']);
    // probabilities are the frame mean in both modes (they feed the ROC)
    expect(byVote[0]!.probs[0]).toBeCloseTo(0.34, 12);
    expect(byMean[0]).toMatchObject({ path: 'v1', source: 'v1', label: 'a', fold: 0, patient: 'patient-of-v1' });
  });

  it('breaks a tied vote by the mean probability', () => {
    const tied = [row('v', 0, 'a', 'a', [0.6, 0.4]), row('v', 0, 'a', 'b', [0.1, 0.9])];
    expect(aggregateVideos(tied, AB, 'vote')[0]!.predicted).toBe('b');
  });

  it('top3 follows the most confident frames, not the many hesitant ones', () => {
    // Seven frames at 0.7 for a, three frames sure of b: the mean (0.505 for a) says a, the 3 most confident say b.
    const video = [
      ...Array.from({ length: 7 }, (_, i) => row('v', 0, 'b', 'a', [0.7, 0.3], `h${i}`)),
      ...Array.from({ length: 3 }, (_, i) => row('v', 0, 'b', 'b', [0.05, 0.95], `s${i}`)),
    ];
    expect(aggregateVideos(video, AB, 'mean')[0]!.predicted).toBe('a');
    expect(aggregateVideos(video, AB, 'top3')[0]!.predicted).toBe('b');
  });

  it('contiguous follows the longest run of consecutive frames, in time order', () => {
    // Frames f0..f6 (listed out of order): b b a a a b b → the longest run is a's (3), though b has 4 frames.
    const labels = ['b', 'b', 'a', 'a', 'a', 'b', 'b'];
    const video = labels.map((p, i) => row('v', 0, 'a', p, p === 'a' ? [0.6, 0.4] : [0.4, 0.6], `f${i}`)).reverse();
    expect(aggregateVideos(video, AB, 'vote')[0]!.predicted).toBe('b');
    expect(aggregateVideos(video, AB, 'contiguous')[0]!.predicted).toBe('a');
  });

  it('refuses a source whose frames disagree on the label', () => {
    expect(() => aggregateVideos([row('v', 0, 'a', 'a', [1, 0]), row('v', 0, 'b', 'a', [1, 0])], AB)).toThrow(/source "v" has frames with different labels/);
  });
});

describe('binary tasks', () => {
  const classes = ['covid', 'pneumonia', 'regular'];
  const rows = [
    row('c', 0, 'covid', 'regular', [0.2, 0.3, 0.5]),
    row('p', 0, 'pneumonia', 'pneumonia', [0.1, 0.6, 0.3]),
    row('r', 0, 'regular', 'covid', [0.5, 0.1, 0.4]),
  ];

  it('--classes keeps frames of those classes and renormalises the probabilities', () => {
    const t = restrictClasses(rows, classes, ['covid', 'pneumonia']);
    expect(t.classes).toEqual(['covid', 'pneumonia']);
    expect(t.rows.map((r) => r.source)).toEqual(['c', 'p']);
    expect(t.rows[0]!.probs[0]).toBeCloseTo(0.4, 12);
    expect(t.rows[0]!.probs[1]).toBeCloseTo(0.6, 12);
    expect(t.rows[0]!.predicted).toBe('pneumonia');
    expect(() => restrictClasses(rows, classes, ['covid', 'viral'])).toThrow(/unknown class "viral"; valid: covid, pneumonia, regular/);
    expect(() => restrictClasses(rows, classes, ['covid'])).toThrow(/at least two/);
  });

  it('healthy-vs-disease merges the diseases: p_disease = 1 − p_regular', () => {
    const t = healthyVsDisease(rows, classes);
    expect(t.classes).toEqual(['healthy', 'disease']);
    expect(t.rows.map((r) => r.label)).toEqual(['disease', 'disease', 'healthy']);
    // c: p_regular 0.5 exactly -> a tie, which argmax gives to the first class (healthy)
    expect(t.rows.map((r) => r.predicted)).toEqual(['healthy', 'disease', 'disease']);
    expect(t.rows[0]!.probs[1]).toBeCloseTo(0.5, 12);
    expect(t.rows[2]!.probs[1]).toBeCloseTo(0.6, 12);
    expect(() => applyBinaryTask('covid-vs-rest', rows, classes)).toThrow(/unknown binary task "covid-vs-rest"; valid: healthy-vs-disease/);
    expect(() => healthyVsDisease(rows, ['covid', 'pneumonia'])).toThrow(/needs a "regular" class/);
  });
});
