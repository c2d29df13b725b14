import fc from 'fast-check';
import { INPUT_LIMITS, InputLimits, formFieldsExceed, queryParametersExceed, scanJsonShape as scanBuffer } from './input-limits';

const scanJsonShape = (text: string, limits?: InputLimits) => scanBuffer(Buffer.from(text), limits);

const small = { maxDepth: 3, maxEntries: 4, maxTotalEntries: 10 };

/** The reference: depth, widest container and total entries of a parsed value. */
function measure(value: unknown): { depth: number; widest: number; total: number } {
  if (value === null || typeof value !== 'object') return { depth: 0, widest: 0, total: 0 };
  const children = Array.isArray(value) ? value : Object.values(value as object);
  let depth = 0;
  let widest = children.length;
  let total = children.length;
  for (const child of children) {
    const m = measure(child);
    depth = Math.max(depth, m.depth);
    widest = Math.max(widest, m.widest);
    total += m.total;
  }
  return { depth: depth + 1, widest, total };
}

describe(scanBuffer.name, () => {
  it('accepts what fits and names the field that does not', () => {
    expect(scanJsonShape('{"a":[1,2,{"b":"x"}]}', small)).toBeNull();
    expect(scanJsonShape('{"a":[[[1]]]}', small)).toEqual({ field: 'a[0][0]', message: 'nests deeper than 3 levels of objects and arrays' });
    expect(scanJsonShape('{"a":1,"b":{"c":[1,2,3,4,5]}}', small)).toEqual({ field: 'b.c', message: 'has more than 4 elements' });
    expect(scanJsonShape('{"a":1,"b":2,"c":3,"d":4,"e":5}', small)).toEqual({ field: 'body', message: 'has more than 4 keys' });
    expect(scanJsonShape('[[1,2,3],[1,2,3],[1,2,3]]', small)).toEqual({ field: 'body', message: 'has more than 10 keys and elements in all' });
  });

  it('reads UTF-8 bytes: multi-byte characters in keys and strings', () => {
    expect(scanJsonShape('{"ключ":{"é":[["研究"]]}}', small)).toEqual({ field: 'ключ.é[0]', message: 'nests deeper than 3 levels of objects and arrays' });
  });

  it('is not fooled by brackets, commas and escaped quotes inside strings', () => {
    expect(scanJsonShape('{"a":"[[[[,,,,,\\"{{{{","b\\\\":"}}]]"}', small)).toBeNull();
    expect(scanJsonShape('{"k\\"ey":{"x":[[1]]}}', small)).toEqual({ field: 'k"ey.x[0]', message: 'nests deeper than 3 levels of objects and arrays' });
  });

  it('refuses 1,500 and 100,000 levels without recursion, reading only up to the limit', () => {
    expect(scanJsonShape('['.repeat(1500) + ']'.repeat(1500))?.message).toBe(`nests deeper than ${INPUT_LIMITS.maxDepth} levels of objects and arrays`);
    expect(scanJsonShape('{"labels":' + '['.repeat(100_000) + '"x"' + ']'.repeat(100_000) + '}')?.field).toBe('labels' + '[0]'.repeat(INPUT_LIMITS.maxDepth - 1));
  });

  it('agrees with a measurement of the parsed value, for any JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        const m = measure(value);
        const fits = m.depth <= small.maxDepth && m.widest <= small.maxEntries && m.total <= small.maxTotalEntries;
        for (const text of [JSON.stringify(value), JSON.stringify(value, null, 2)]) {
          expect(scanJsonShape(text, small) === null).toBe(fits);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('form and query limits', () => {
  it('counts form fields and query parameters, repeated names once per value', () => {
    expect(formFieldsExceed(Buffer.from(''), 2)).toBe(false);
    expect(formFieldsExceed(Buffer.from('a=1&b=2'), 2)).toBe(false);
    expect(formFieldsExceed(Buffer.from('a=1&b=2&a=3'), 2)).toBe(true);
    expect(queryParametersExceed({ a: '1', b: ['1', '2'] }, 3)).toBe(false);
    expect(queryParametersExceed({ a: '1', b: ['1', '2', '3'] }, 3)).toBe(true);
  });
});
