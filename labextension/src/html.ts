/** HTML of a result preview, for JupyterLab's `text/html` renderer. */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;'
};

export function escapeHtml(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return text.replace(/[&<>"']/g, c => ESCAPES[c]);
}

/** A result preview as a pandas-style HTML table (the class notebook tables get). */
export function tableHtml(columns: string[], rows: unknown[][]): string {
  const head = columns.map(c => `<th>${escapeHtml(c)}</th>`).join('');
  const body = rows
    .map(r => `<tr>${r.map(v => `<td>${v === null ? '<em>null</em>' : escapeHtml(v)}</td>`).join('')}</tr>`)
    .join('');
  return `<table class="dataframe"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/**
 * An answer as markdown that keeps its plain-text meaning: answers are prose about a
 * result, so `COUNT(*)` must not open an emphasis and `$12` must not start a formula.
 */
export function answerMarkdown(text: string): string {
  return text.replace(/\(\*\)/g, '(\\*)').replace(/\$/g, '\\$');
}
