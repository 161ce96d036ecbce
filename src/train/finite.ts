// A checkpoint or weight file holding NaN or an infinity is refused as damaged when it is read,
// instead of training on from it (the epoch loop's own check is handlers.ts's FiniteLossHandler).
import { BadInputError } from '../errors.js';
import type { TensorMap } from '../models/weights/tensors.js';

/** Throws BadInputError naming `file` when a tensor read from it holds NaN or an infinity. */
export function checkFiniteTensors(tensors: TensorMap, file: string, hint: string): void {
  for (const [name, tensor] of tensors) {
    const at = tensor.data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) throw new BadInputError(file, `damaged: tensor "${name}" holds ${tensor.data[at]} at index ${at}; ${hint}`);
  }
}
