/** The archive layout: an ordinary tar whose first entry is the TOC (like eStargz's index). */

/** Name of the TOC entry; always the first entry of a dftfs archive. */
export const TOC_ENTRY_NAME = 'dftfs.toc.json';
