/**
 * An answer as notebook cells that reproduce it without the model: the magic's
 * `%%aigis sql --conn NAME -o VAR [--chart MARK]` over the answer's SQL, after a
 * `%load_ext aigis_jupyter` cell when the notebook does not load the extension yet.
 */

import { chartMark } from './turn';

export const LOAD_EXT = '%load_ext aigis_jupyter';

/** Does this cell source load the extension (so later cells may use `%%aigis`)? */
export function loadsExtension(source: string): boolean {
  return /^\s*%(re)?load_ext\s+aigis_jupyter\b/m.test(source);
}

/**
 * How the cell names the connection: `%%aigis sql` splits its options on whitespace,
 * so a name with spaces or quotes is given by id (`--conn` takes either).
 */
export function connectionRef(name: string | null, id: string): string {
  return name && /^[^\s"'\\]+$/.test(name) ? name : id;
}

export interface ISqlCellOptions {
  sql: string;
  /** The connection's name, or its id when the name does not fit (`connectionRef`). */
  connection: string;
  variable?: string;
  chart?: Record<string, unknown> | null;
}

/** The `%%aigis sql` cell of an answer. */
export function sqlCell(options: ISqlCellOptions): string {
  const args = ['%%aigis sql', '--conn', options.connection];
  if (options.variable) {
    args.push('-o', options.variable);
  }
  const mark = chartMark(options.chart ?? null);
  if (mark === 'auto') {
    args.push('--chart');
  } else if (mark) {
    args.push('--chart', mark);
  }
  return `${args.join(' ')}\n${options.sql.trim()}\n`;
}

/**
 * The cells to insert: the SQL cell, preceded by a `%load_ext` cell unless a cell
 * above the insertion point already loads the extension (so the cells run in a fresh
 * kernel, top to bottom).
 */
export function cellsToInsert(sourcesAbove: string[], options: ISqlCellOptions): string[] {
  const loaded = sourcesAbove.some(loadsExtension);
  return loaded ? [sqlCell(options)] : [LOAD_EXT, sqlCell(options)];
}
