/**
 * Python literals, as numpy reads a .npy header (numpy.lib.format uses ast.literal_eval):
 * dicts, tuples, lists, strings ('...' or "...", with backslash escapes, adjacent strings
 * joined), integers (with Python 2's trailing L), floats, True, False and None. A dict with a
 * key twice keeps the last value, as Python does. Nesting is limited so hostile headers
 * cannot exhaust the stack.
 */
/** Python ints are bigint (exact, any size); floats are number. */
export type PyValue = string | bigint | number | boolean | null | PyValue[] | PyTuple | PyDict;
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
export class PyDict {
  constructor(readonly entries: Map<string | bigint | number | boolean | null, PyValue>) {}
}

const MAX_DEPTH = 32;

export class PyLiteralError extends Error {}

export function parsePyLiteral(text: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new PyLiteralError(`${what} at character ${i + 1}`);
  };
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const str = (): string => {
    let out = '';
    // Adjacent literals are one string: 'a' 'b' == 'ab'.
    while (i < text.length && (text[i] === "'" || text[i] === '"')) {
      const q = text[i++];
      for (;;) {
        if (i >= text.length) fail('unterminated string');
        const c = text[i++];
        if (c === q) break;
        if (c === '\n') fail('newline inside a string');
        if (c !== '\\') {
          out += c;
          continue;
        }
        const e = text[i++];
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
        if (e in simple) out += simple[e];
        else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i, i + 2))) {
          out += String.fromCharCode(parseInt(text.slice(i, i + 2), 16));
          i += 2;
        } else out += '\\' + e;
      }
      ws();
    }
    return out;
  };
  const value = (depth: number): PyValue => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === undefined) fail('unexpected end');
    if (c === "'" || c === '"') return str();
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: PyValue[] = [];
      const entries = new Map<string | bigint | number | boolean | null, PyValue>();
      let trailingComma = false;
      for (;;) {
        ws();
        if (text[i] === close) {
          i++;
          break;
        }
        if (c === '{') {
          const k = value(depth + 1);
          if (typeof k === 'object' && k !== null) fail('unhashable dict key');
          ws();
          if (text[i] !== ':') fail("expected ':'");
          i++;
          entries.delete(k as string); // re-insert: the last occurrence wins (and keeps its order)
          entries.set(k as string, value(depth + 1));
        } else items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          trailingComma = true;
          continue;
        }
        trailingComma = false;
        ws();
        if (text[i] !== close) fail(`expected ',' or '${close}'`);
      }
      if (c === '{') return new PyDict(entries);
      if (c === '[') return items;
      // (x) is x, (x,) and (x, y) are tuples, () is the empty tuple.
      if (items.length === 1 && !trailingComma) return items[0];
      return new PyTuple(items);
    }
    const m = /^(?:True|False|None|[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[lL]?)/.exec(text.slice(i));
    if (!m) fail(`unexpected '${c}'`);
    i += m![0].length;
    const t = m![0];
    if (t === 'True') return true;
    if (t === 'False') return false;
    if (t === 'None') return null;
    if (/^[+-]?\d+[lL]?$/.test(t)) return BigInt(t.replace(/[lL]$/, ''));
    return Number(t);
  };
  const v = value(0);
  ws();
  if (i < text.length) fail('unexpected text after the value');
  return v;
}
