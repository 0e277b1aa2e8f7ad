import path from 'node:path';
import { unsafePath } from '../errors.js';

/** A component that is empty, `.` or `..`. */
const BAD_COMPONENT_RE = /(?:^|\/)\.{0,2}(?:\/|$)/;

/**
 * Checks that a TOC name is a plain relative path inside the tree; throws ERR_DFTFS_UNSAFE_PATH
 * otherwise. The root is `.`.
 */

export function checkEntryName(name: string): void {
  if (name === '.') return;
  if (typeof name !== 'string' || name.length === 0) throw unsafePath(String(name), 'empty name');
  if (name.includes('\0')) throw unsafePath(name, 'contains a NUL byte');
  if (name.startsWith('/')) throw unsafePath(name, 'absolute path');
  if (!BAD_COMPONENT_RE.test(name)) return; // every name of a TOC is checked: the split below only finds which part
  for (const part of name.split('/')) {
    if (part === '' || part === '.' || part === '..') throw unsafePath(name, `contains a "${part || '//'}" component`);
  }
}

/** The parent of a TOC name (`.` for top-level names). */
export function parentName(name: string): string {
  const i = name.lastIndexOf('/');
  return i < 0 ? '.' : name.slice(0, i);
}

export function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/** True when a symlink at `name` pointing to `target` resolves inside the tree. */
export function symlinkStaysInside(name: string, target: string): boolean {
  if (target.length === 0 || target.startsWith('/') || target.includes('\0')) return false;
  const resolved = path.posix.normalize(path.posix.join(parentName(name), target));
  return resolved !== '..' && !resolved.startsWith('../');
}

let lastNormalRoot: string | undefined;

/** Whether a path relative to a root (as path.relative gives it) lies outside that root; `..a` does not. */
export const outsideRoot = (rel: string) => rel === '..' || rel.startsWith('../') || path.isAbsolute(rel);

/** Joins a checked TOC name onto a directory; refuses anything that would land outside it. */
export function resolveInside(root: string, name: string): string {
  checkEntryName(name);
  // A checked name is relative, with no empty, `.` or `..` component: joined onto an absolute,
  // normalized root it names a path under it as it stands (a resolve and a relative per file were
  // ~14 µs of a `get`'s 5,000 small files). Any other root takes the long way below.
  if (name !== '.' && root === lastNormalRoot) return root === '/' ? `/${name}` : `${root}/${name}`;
  if (root === path.resolve(root)) lastNormalRoot = root;
  const full = path.resolve(root, name);
  const rel = path.relative(root, full);
  if (outsideRoot(rel)) throw unsafePath(name, 'escapes the tree');
  return full;
}
