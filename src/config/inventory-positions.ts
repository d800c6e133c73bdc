import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';

export type PathKey = string | number;

export interface Position {
  line?: number;
  column?: number;
}

/**
 * Line and column of the nodes of a YAML (or JSON) text, for messages. The full parser that knows them is only run
 * when a position is first asked for: a file that loads cleanly never pays for it.
 */
export class YamlPositions {
  private parsed?: { doc: Document; lc: LineCounter };

  constructor(private readonly text: string) {}

  /** The document with positions, parsed once; its `errors` are the file's syntax errors. */
  document(): { doc: Document; lc: LineCounter } {
    if (!this.parsed) {
      const lc = new LineCounter();
      const doc = parseDocument(this.text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
      this.parsed = { doc, lc };
    }
    return this.parsed;
  }

  /** Line and column (1-based) of an offset in the text. */
  at(offset: number): Position {
    const pos = this.document().lc.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  /** Position of the node at a path (or of its key, for a key that is itself the problem); else the nearest parent. */
  locate(p: PathKey[], keyNode = false): Position {
    const { doc } = this.document();
    for (let n = p.length; n >= 0; n--) {
      const sub = p.slice(0, n);
      let offset: number | undefined;
      if (keyNode && n === p.length && n > 0) {
        const parent = doc.getIn(sub.slice(0, -1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === sub[sub.length - 1]);
          if (pair && isScalar(pair.key)) offset = pair.key.range?.[0];
        }
      } else {
        const node = n === 0 ? doc.contents : doc.getIn(sub, true);
        if (node && typeof node === 'object' && 'range' in node)
          offset = (node.range as [number, number, number])?.[0];
      }
      if (offset !== undefined) return this.at(offset);
    }
    return {};
  }
}
