/**
 * A `--targets` value as selectors. Commas separate selectors (`web-1,web-2`, `site-*,db-1`), except between label
 * conditions, which a comma joins into one selector that needs all of them, as in the config (`region=eu,tier=web`
 * is the targets with both labels). So `region=eu,tier=web,db-1` is two selectors: both labels, or db-1.
 */
export function splitSelectors(value: string): string[] {
  const parts = value
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const out: string[] = [];
  let labels: string[] = [];
  const flush = () => {
    if (labels.length) out.push(labels.join(','));
    labels = [];
  };
  for (const p of parts) {
    if (p.includes('=')) labels.push(p);
    else {
      flush();
      out.push(p);
    }
  }
  flush();
  return out;
}
