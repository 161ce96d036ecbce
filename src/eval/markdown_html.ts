// report.html from report.md: the HTML page is made from the very Markdown the report writes, so
// the two can never disagree on a table. Only the subset report.md uses is understood: headings,
// paragraphs, "- " lists, pipe tables, images, links, **bold**, _italic_ and `code`. Everything
// else is text, escaped. The page is self-contained (inline style, no script, no remote resource)
// and opens offline from the file system; its images are the relative PNGs next to it.

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A link or image target: relative paths and http(s) only (no javascript: or data: from a file name). */
function safeHref(href: string): string {
  return /^(https?:|#|\.{0,2}\/|[\w.-])/i.test(href) && !/^(javascript|data|vbscript):/i.test(href) ? href : '#';
}

/** Inline Markdown of one line or cell → HTML. */
export function inlineHtml(text: string): string {
  // Tokenise images and links first so their targets are not touched by the emphasis rules.
  const parts: string[] = [];
  const pattern = /(!?)\[([^\]]*)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    parts.push(emphasis(text.slice(last, m.index)));
    const [, bang, label, href] = m;
    const target = escapeHtml(safeHref(href!));
    parts.push(bang ? `<img src="${target}" alt="${escapeHtml(label!)}" loading="lazy">` : `<a href="${target}">${emphasis(label!)}</a>`);
    last = m.index! + m[0].length;
  }
  parts.push(emphasis(text.slice(last)));
  return parts.join('');
}

function emphasis(text: string): string {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[\s(])_([^_]+)_(?=$|[\s).,;:])/g, '$1<em>$2</em>');
}

function splitRow(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  // A pipe inside a cell is written \| by the report.
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

const isSeparator = (line: string): boolean => /^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(line.trim());

function tableHtml(lines: string[]): string {
  const header = splitRow(lines[0]!);
  const aligns = splitRow(lines[1]!).map((c) => (c.endsWith(':') ? 'right' : 'left'));
  // report.md right-aligns every column but the first; in the page only figures are, not names.
  const numeric = (text: string): boolean => /^([-+]?\d[\d.,]*(%| ± [\d.]+| \(\d[\d.]*%\))?|n\/a|–|∞.*)$/.test(text);
  const cell = (tag: 'th' | 'td', text: string, i: number): string =>
    `<${tag} class="${aligns[i] === 'right' && (tag === 'th' || numeric(text)) ? 'num' : 'txt'}">${inlineHtml(text)}</${tag}>`;
  const body = lines.slice(2).map((line) => `<tr>${splitRow(line).map((c, i) => cell('td', c, i)).join('')}</tr>`);
  return `<div class="table"><table><thead><tr>${header.map((c, i) => cell('th', c, i)).join('')}</tr></thead><tbody>${body.join('')}</tbody></table></div>`;
}

/** Markdown (the report subset) → HTML body. Headings get ids for the table of contents. */
export function markdownToHtml(markdown: string): string {
  const lines = markdown.replace(/\r\n/g, '\n').split('\n');
  const out: string[] = [];
  const used = new Set<string>();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '') {
      i++;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = heading[1]!.length;
      let id = heading[2]!.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'section';
      while (used.has(id)) id += '-';
      used.add(id);
      out.push(`<h${level} id="${id}">${inlineHtml(heading[2]!)}</h${level}>`);
      i++;
      continue;
    }
    if (line.trim().startsWith('|') && i + 1 < lines.length && isSeparator(lines[i + 1]!)) {
      const block: string[] = [];
      while (i < lines.length && lines[i]!.trim().startsWith('|')) block.push(lines[i++]!);
      out.push(tableHtml(block));
      continue;
    }
    if (/^\s*- /.test(line)) {
      const items: string[] = [];
      while (i < lines.length && /^\s*- /.test(lines[i]!)) items.push(lines[i++]!.replace(/^\s*- /, ''));
      out.push(`<ul>${items.map((item) => `<li>${inlineHtml(item)}</li>`).join('')}</ul>`);
      continue;
    }
    // A paragraph runs to the next blank line or block; a line of images is a figure row.
    const block: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '' && !/^(#{1,6}\s|\s*- |\s*\|)/.test(lines[i]!)) block.push(lines[i++]!);
    const images = block.every((l) => /^!\[[^\]]*\]\([^)]+\)$/.test(l.trim()));
    out.push(images ? `<div class="figures">${block.map((l) => inlineHtml(l.trim())).join('')}</div>` : `<p>${block.map(inlineHtml).join(' ')}</p>`);
  }
  return out.join('\n');
}

const STYLE = `body{font-family:"DejaVu Sans",Arial,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:24px}h2{font-size:20px;border-top:1px solid #ccc;padding-top:12px;margin-top:28px}h3{font-size:16px}
.table{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;vertical-align:top}th{background:#f3f3f3}td.num,th.num{text-align:right}
td img{max-width:200px;display:block}.figures{display:flex;flex-wrap:wrap;gap:12px}.figures img{max-width:560px;height:auto;border:1px solid #eee}
nav{font-size:13px;background:#f8f8f8;padding:8px 12px;border:1px solid #e4e4e4}nav a{margin-right:12px}code{background:#f3f3f3;padding:0 3px}`;

/** A whole page: title, contents (the level-2 headings) and the body converted from Markdown. */
export function reportHtmlPage(markdown: string, title: string): string {
  const body = markdownToHtml(markdown);
  const toc = [...body.matchAll(/<h2 id="([^"]+)">(.*?)<\/h2>/g)].map((m) => `<a href="#${m[1]}">${m[2]}</a>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style></head><body>
${toc.length > 0 ? `<nav>${toc.join(' ')}</nav>` : ''}
${body}
</body></html>
`;
}
