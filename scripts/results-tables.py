#!/usr/bin/env python3
"""Markdown summary tables from one or more run folders' report.json (used to write docs/results.md).

Usage: scripts/results-tables.py LABEL=RUN_DIR [LABEL=RUN_DIR ...]
"""
import json
import sys


def pm(summary, key):
    s = summary[key]
    return f"{s['mean']:.3f} ± {s['std']:.3f}"


def main(args):
    runs = [a.split('=', 1) for a in args]
    print('| run | level | accuracy (pooled) | balanced acc. (pooled) | MCC (pooled) | macro AUC | accuracy, mean ± std over folds | balanced acc., mean ± std |')
    print('|---|---|---:|---:|---:|---:|---:|---:|')
    reports = {}
    for label, run in runs:
        report = json.load(open(f'{run}/report.json'))
        reports[label] = report
        for level, summary_key in (('frame', 'foldSummary'), ('video', 'videoFoldSummary')):
            m = report[level]
            s = report[summary_key]
            auc = m['auc'].get('macro')
            print(f"| {label} | {level} | {m['accuracy']:.3f} | {m['balancedAccuracy']:.3f} | {m['mcc']:.3f} | "
                  f"{auc:.3f} | {pm(s, 'accuracy')} | {pm(s, 'balancedAccuracy')} |")
    for label, report in reports.items():
        for level, summary_key in (('frame', 'foldSummary'), ('video', 'videoFoldSummary')):
            s = report[summary_key]['perClass']
            m = report[level]
            print(f"\n**{label}, {level} level** (mean ± std over folds; pooled support)\n")
            print('| class | recall (sensitivity) | precision | F1 | specificity | support |')
            print('|---|---:|---:|---:|---:|---:|')
            for cls, v in s.items():
                print(f"| {cls} | {v['recall']['mean']:.3f} ± {v['recall']['std']:.3f} | {v['precision']['mean']:.3f} ± {v['precision']['std']:.3f} | "
                      f"{v['f1']['mean']:.3f} ± {v['f1']['std']:.3f} | {v['specificity']['mean']:.3f} ± {v['specificity']['std']:.3f} | {m['perClass'][cls]['support']} |")
            cm = m['confusionMatrix']
            classes = list(s.keys())
            print('\nConfusion matrix (rows: true; pooled over folds):\n')
            print('| true \\ predicted | ' + ' | '.join(classes) + ' |')
            print('|---|' + '---:|' * len(classes))
            for cls, row in zip(classes, cm):
                print(f'| {cls} | ' + ' | '.join(str(v) for v in row) + ' |')


if __name__ == '__main__':
    main(sys.argv[1:])
