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
 * Code in an answer, which renders as written: a fence at the start of a line (one still open
 * runs to the end, as while the answer streams: groups 1-3), or a code span on one line (4-5).
 */
const ANSWER_CODE =
  /^(`{3,})([^`\n]*)((?:\n[\s\S]*?)??)(?:\n {0,3}\1`*[ \t]*(?=\n|$)|(?![\s\S]))|(?<![`\\])(`+)(?!`)([^\n]*?[^`\n])\4(?!`)/;

const ANSWER_TOKENS = new RegExp(`${ANSWER_CODE.source}|\\(\\*\\)|\\$|<|!\\[`, 'gm');

const ANSWER_ESCAPES: Record<string, string> = {
  '(*)': '(\\*)',
  $: '\\$',
  '<': '&lt;',
  '![': '!\\['
};

/** Text as character references: literal in HTML and in markdown, which never parses them. */
function literal(text: string): string {
  return text.replace(/[!-/:-@[-`{-~]/g, c => `&#${c.charCodeAt(0)};`);
}

/**
 * An answer as markdown that keeps its plain-text meaning: answers are prose about a
 * result, so `COUNT(*)` must not open an emphasis and `$12` must not start a formula.
 * Model text is untrusted: raw HTML shows as its characters (not as a sanitized element),
 * and `![image](url)` stays a link, since an image is fetched as soon as it renders, sending
 * what its URL holds to that host. Code becomes `<pre>`/`<code>` with its text as
 * character references, so no markup reaches the parser there either, even where this
 * scan and the markdown parser disagree on what is code.
 */
export function answerMarkdown(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(ANSWER_TOKENS, (token, fence, _info, body, span, code) => {
      if (fence !== undefined) {
        return `<pre><code>${literal(String(body).slice(1))}</code></pre>`;
      }
      if (span !== undefined) {
        return `<code>${literal(code)}</code>`;
      }
      return ANSWER_ESCAPES[token] ?? token;
    });
}
