import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

/**
 * A full garbage collection, now. For a long-running process right after a burst that left tens
 * of MB of dead objects in V8's old generation (a re-index of a big tree: V8 pretenures what the
 * first index kept, so a re-index's walk lands there too). V8 collects them only once the heap
 * reaches a limit it sets well above what was live: each re-index of a 100,000-file tree added
 * ~50 MB to `dftfs serve`'s resident memory until then. Costs a fraction of a second for such a
 * heap, against the seconds of the re-index itself. The flag is set at run time because dftfs
 * is started as `node bin.js` (or through npm), not with node options of its own.
 */
export function collectGarbage(): void {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  gc();
}
