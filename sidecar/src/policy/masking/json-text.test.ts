import { describe, expect, it } from 'vitest';
import { mapArrayElements } from './array-text.ts';
import { mapJsonLeaves } from './json-text.ts';

describe('mapJsonLeaves', () => {
  it('hands each leaf over with its key and keeps keys, structure and literals', () => {
    const seen: string[] = [];
    const out = mapJsonLeaves(
      '{"a": "x\\"y", "b": [1, {"c": -2.5e3}, "z"], "d": null, "e": true, "a b": {"f": []}}',
      (value, key, isNumber) => {
        seen.push(`${key}:${value}:${isNumber}`);
        return isNumber ? '7' : value.toUpperCase();
      },
    );
    expect(seen).toEqual(['a:x"y:false', 'b:1:true', 'c:-2.5e3:true', 'b:z:false']);
    expect(out).toBe('{"a": "X\\"Y", "b": [7, {"c": 7}, "Z"], "d": null, "e": true, "a b": {"f": []}}');
  });

  it('writes null for a masked leaf that became NULL and refuses text that is not JSON', () => {
    expect(mapJsonLeaves('["a", 1]', () => null)).toBe('[null, null]');
    expect(mapJsonLeaves('{"a": "b"', (v) => v)).toBeNull();
    expect(mapJsonLeaves('{"a": "b"]', (v) => v)).toBeNull();
  });
});

describe('mapArrayElements', () => {
  it('hands each element over unquoted and quotes the results as array_out does', () => {
    const out = mapArrayElements('{{a,"b c"},{NULL,"d\\"e"}}', (value) =>
      value === null ? 'NULL' : `${value},!`,
    );
    expect(out).toBe('{{"a,!","b c,!"},{"NULL","d\\"e,!"}}');
  });

  it('keeps bounds, NULLs and empty arrays', () => {
    expect(mapArrayElements('[0:1]={x,NULL}', (v) => v)).toBe('[0:1]={x,NULL}');
    expect(mapArrayElements('{}', (v) => v)).toBe('{}');
    expect(mapArrayElements('{a,b}', () => '')).toBe('{"",""}');
    expect(mapArrayElements('not an array', (v) => v)).toBeNull();
  });
});
