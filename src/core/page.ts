/**
 * Cursor pagination over rows fetched with `limit + 1` in id order: the extra row only tells whether
 * there is a next page, whose cursor is the last returned id.
 */
export function toPage<R extends { id: string }, T>(rows: readonly R[], limit: number, map: (row: R) => T): { items: T[]; next: string | null } {
  const page = rows.slice(0, limit);
  return { items: page.map(map), next: rows.length > limit ? page[page.length - 1]!.id : null };
}
