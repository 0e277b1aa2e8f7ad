/**
 * Named loggers, quiet by default. `DFTFS_DEBUG=fuse,net` (or `*`) turns modules on; output goes
 * to stderr, one line per event.
 */

export interface Logger {
  readonly enabled: boolean;
  debug(msg: string, ...rest: unknown[]): void;
}

function enabledFor(name: string, spec: string | undefined): boolean {
  if (!spec) return false;
  return spec.split(',').some((s) => {
    const t = s.trim();
    return t === '*' || t === name || `dftfs:${t}` === name;
  });
}

export function createLogger(name: string, spec: string | undefined = process.env.DFTFS_DEBUG): Logger {
  const full = name.startsWith('dftfs:') ? name : `dftfs:${name}`;
  const enabled = enabledFor(full, spec);
  return {
    enabled,
    debug(msg, ...rest) {
      if (!enabled) return;
      const extra = rest.length ? ' ' + rest.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join(' ') : '';
      process.stderr.write(`${new Date().toISOString()} ${full} ${msg}${extra}\n`);
    },
  };
}
