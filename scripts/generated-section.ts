/**
 * Documentation that the code writes: a section of a markdown file between two comment markers,
 * replaced whole by a generator script and checked by a test that fails when it is stale.
 */
export function withSection(doc: string, start: string, end: string, content: string, file: string): string {
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${file} needs the markers ${start} and ${end}, in that order`);
  return `${doc.slice(0, from + start.length)}\n${content}\n${doc.slice(to)}`;
}
