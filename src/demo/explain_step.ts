// The demo's explanation step: Grad-CAM, saliency and occlusion with MC-dropout uncertainty for
// the test fold's frames, as an HTML gallery.
import { join } from 'node:path';
import { explain } from '../explain/explain_run.js';

export const demoExplainStep = {
  name: 'explanations',
  async run(runDir: string): Promise<string> {
    const result = await explain({ run: runDir, methods: ['gradcam', 'saliency', 'occlusion'], out: join(runDir, 'explain'), mcPasses: 10, limit: 6, seed: 0 });
    return result.index;
  },
};
