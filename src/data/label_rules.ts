// The rules that read a class from a file's name or folder. Browser-safe (no Node module): `data
// build` labels POCUS-layout sources with them and the page's adaptation panel (src/adapt) labels
// the files a site drops with the same rules.
import type { ClassName } from './types.js';

/** Class from the POCUS naming convention: Cov…, Pne…/pne…, Reg…, Vir… (any letter case). */
export function labelFromFileName(name: string): ClassName | undefined {
  switch (name.slice(0, 3).toLowerCase()) {
    case 'cov':
      return 'covid';
    case 'pne':
      return 'pneumonia';
    case 'reg':
      return 'regular';
    case 'vir':
      return 'viral';
    default:
      return undefined;
  }
}
