/** The part of fuse-native 2.2.6 that dftfs uses (the package ships no types). */
declare module 'fuse-native' {
  interface FuseOptions {
    debug?: boolean;
    force?: boolean;
    mkdir?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    autoCache?: boolean;
    kernelCache?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    fsname?: string;
    subtype?: string;
    maxRead?: number;
    /** Per-op timeout in ms after which fuse-native answers ETIMEDOUT itself; false disables it. */
    timeout?: number | false;
  }
  class Fuse {
    constructor(mnt: string, ops: Record<string, (...args: any[]) => void>, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /** The `-o…` argument handed to libfuse (private to fuse-native; dftfs extends it). */
    _fuseOptions(): string;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
  export default Fuse;
}
