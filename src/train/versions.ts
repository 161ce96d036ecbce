// Versions recorded in every run's config.json, so that results can be traced to the tools.
import { createRequire } from 'node:module';
import { VERSION } from '../version.js';

const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function toolVersions(): Record<string, string> {
  return {
    pocovid: VERSION,
    node: process.version,
    '@tensorflow/tfjs-core': packageVersion('@tensorflow/tfjs-core'),
    '@tensorflow/tfjs-backend-wasm': packageVersion('@tensorflow/tfjs-backend-wasm'),
    sharp: packageVersion('sharp'),
  };
}
