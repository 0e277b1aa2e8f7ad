// blake3-wasm 2.1.5 ships types, but its `main` points at a CommonJS barrel that Node's ESM
// loader only sees as a default export; this declares that default export.
declare module 'blake3-wasm' {
  interface NodeHash {
    update(data: Uint8Array | string): NodeHash;
    digest(encoding: 'hex'): string;
    digest(): Buffer;
    dispose(): void;
  }
  const blake3: {
    createHash(): NodeHash;
    hash(data: Uint8Array | string): Buffer;
  };
  export default blake3;
}
