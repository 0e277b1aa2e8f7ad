/**
 * A bare fuse-native passthrough of one directory (getattr, readdir, open, read, release): the
 * baseline the dftfs mount's read path is compared with. `node passthrough.js SRC MNT`; prints
 * "mounted" and serves until SIGTERM.
 */
import fs from 'node:fs';
import path from 'node:path';
import Fuse from 'fuse-native';

const [src, mnt] = process.argv.slice(2) as [string, string];
const real = (p: string) => path.join(src, p);
const st = (s: fs.Stats) => ({ mode: s.mode, size: s.size, mtime: s.mtimeMs, atime: s.atimeMs, ctime: s.ctimeMs, nlink: s.nlink, uid: s.uid, gid: s.gid });
const ops = {
  getattr: (p: string, cb: (c: number, v?: unknown) => void) => fs.lstat(real(p), (e, s) => (e ? cb(-2) : cb(0, st(s)))),
  readdir: (p: string, cb: (c: number, v?: unknown) => void) => fs.readdir(real(p), (e, n) => (e ? cb(-2) : cb(0, n))),
  open: (p: string, flags: number, cb: (c: number, v?: unknown) => void) => fs.open(real(p), 'r', (e, fd) => (e ? cb(-2) : cb(0, fd))),
  read: (_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => fs.read(fd, buf, 0, len, pos, (e, n) => cb(e ? -5 : n)),
  release: (_p: string, fd: number, cb: (c: number) => void) => fs.close(fd, () => cb(0)),
};
const fuse = new Fuse(mnt, ops, { autoCache: true, attrTimeout: 1, entryTimeout: 1, timeout: false });
fuse.mount((err) => {
  if (err) { process.stderr.write(`${err.message}\n`); process.exit(1); }
  process.stdout.write('mounted\n');
});
process.on('SIGTERM', () => fuse.unmount(() => process.exit(0)));
