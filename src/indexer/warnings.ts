/** Something the indexer skipped or repaired; never fatal. */
export interface IndexWarning {
  /** Relative name in the tree (or the state file's path). */
  path: string;
  code: 'UNREADABLE' | 'SPECIAL_FILE' | 'NON_UTF8_NAME' | 'VANISHED' | 'KEEPS_CHANGING' | 'STATE_REBUILT' | 'SYMLINK_OUTSIDE';
  message: string;
}

export type WarningSink = (w: IndexWarning) => void;
