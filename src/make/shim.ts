import fsp from 'node:fs/promises';
import path from 'node:path';

/**
 * The job shim make runs as its SHELL: `shim <.SHELLFLAGS> 'recipe line'`. It is plain sh so a
 * job costs a fork of sh, not a Node start-up. Outside a recipe (`$(shell …)` while make parses)
 * and for lines that run make itself (recursive make stays on the driver) it is just /bin/sh.
 * Otherwise it announces its pid on the driver's FIFO (the driver reads argv, environment and
 * working directory from /proc/<pid>), waits for the status on its own FIFO, then prints the
 * job's output and exits with the recipe's status. The status line says which output files the
 * driver wrote (`o`, `e`): a quiet job, the usual case, costs no cat and no rm (each a fork and
 * an exec, ~1.5 ms of CPU); the driver removes the FIFO itself once it has written to it.
 */
export const SHIM_SCRIPT = `#!/bin/sh
# dftfs job shim (written by dftfs drive; see src/make/shim.ts)
[ -n "$DFTFS_TARGET" ] && [ -n "$DFTFS_DRIVE_DIR" ] && [ -p "$DFTFS_DRIVE_DIR/queue" ] || exec /bin/sh "$@"
for a; do line=$a; done
case " $line " in *" $DFTFS_MAKE "*) [ -n "$DFTFS_MAKE" ] && exec /bin/sh "$@" ;; esac
d=$DFTFS_DRIVE_DIR
mkfifo "$d/r.$$" || exec /bin/sh "$@"
printf '%s\\n' $$ > "$d/queue"
read s f < "$d/r.$$"
case $f in *o*) cat "$d/o.$$" ;; esac
case $f in *e*) cat "$d/e.$$" >&2 ;; esac
case $f in ?*) rm -f "$d/o.$$" "$d/e.$$" ;; esac
exit "\${s:-1}"
`;

/** Variables make exports per recipe (GNU make expands them per target), so a Makefile needs no edit. */
export const MAKE_EVALS = [
  '%: export DFTFS_TARGET = $@',
  '%: export DFTFS_PREREQS = $^',
  '%: export DFTFS_MAKE = $(MAKE)',
];

export async function writeShim(dir: string): Promise<string> {
  const file = path.join(dir, 'shell');
  await fsp.writeFile(file, SHIM_SCRIPT, { mode: 0o755 });
  return file;
}
