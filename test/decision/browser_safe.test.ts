// The decision core and the media rules the page shares with the CLI must run in a browser: they
// are bundled here for the browser, as scripts/build-page.mjs bundles the page, and must pull in
// no Node module and none of the Node-only packages.
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';

const SHARED = ['src/decision/core.ts', 'src/adapt/adapt.ts', 'src/adapt/record.ts', 'src/adapt/labels.ts', 'src/serve/page/service_worker.ts', 'src/media/sampling.ts', 'src/media/video_info.ts', 'src/media/formats.ts', 'src/media/resize.ts', 'src/model_dir/meta.ts'];
const NODE_ONLY = /node_modules\/(sharp|onnxruntime-node|@ffmpeg-installer|commander|fastify|@fastify|h5wasm|protobufjs|cli-progress)\//;

async function bundleForBrowser(entry: string): Promise<Metafile> {
  const result = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
  return result.metafile;
}

describe('browser-safe modules', () => {
  for (const entry of SHARED) {
    it(`${entry} bundles for the browser without Node modules`, async () => {
      const inputs = Object.keys((await bundleForBrowser(entry)).inputs);
      expect(inputs).toContain(entry);
      expect(inputs.filter((file) => NODE_ONLY.test(file) || file.startsWith('node:'))).toEqual([]);
    });
  }

  it('the core brings the shared rules with it: guard, preprocessing, ensemble, Grad-CAM', async () => {
    const inputs = Object.keys((await bundleForBrowser('src/decision/core.ts')).inputs);
    for (const file of ['src/guard/guard.ts', 'src/models/preprocess.ts', 'src/decision/combine.ts', 'src/decision/classify.ts', 'src/explain/gradcam.ts']) expect(inputs).toContain(file);
  });

  it('the page\'s main thread bundles no TF.js: the model and the decision core run in its worker', async () => {
    const main = Object.keys((await bundleForBrowser('src/serve/page/app.ts')).inputs);
    expect(main.filter((file) => /@tensorflow\/|src\/decision\/core\.ts/.test(file))).toEqual([]);
    const worker = Object.keys((await bundleForBrowser('src/serve/page/model_worker.ts')).inputs);
    for (const file of ['src/decision/core.ts', 'src/serve/page/model.ts', 'src/media/resize.ts']) expect(worker).toContain(file);
    expect(worker.filter((file) => NODE_ONLY.test(file) || file.startsWith('node:') || /@ffmpeg\//.test(file))).toEqual([]);
  });

  it('the service worker bundles nothing but its own rules (no schema, no TF.js)', async () => {
    const inputs = Object.keys((await bundleForBrowser('src/serve/page/service_worker.ts')).inputs);
    expect(inputs.filter((file) => file.includes('node_modules'))).toEqual([]);
  });

  it('refuses the Node pipeline (the check can fail)', async () => {
    await expect(bundleForBrowser('src/infer/pipeline.ts')).rejects.toThrow(/node:|Could not resolve/);
  });
});
