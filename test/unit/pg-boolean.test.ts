import { describe, expect, it } from 'vitest';
import { parseBoolean } from '../../src/util/pg-boolean.js';

describe('parseBoolean', () => {
  it("reads PostgreSQL's spellings of a boolean, unambiguous prefixes included, in any case", () => {
    for (const text of ['true', 'TRUE', 't', 'tr', 'yes', 'y', 'on', 'ON', '1']) expect(parseBoolean(text)).toBe(true);
    for (const text of ['false', 'f', 'fal', 'no', 'N', 'off', 'of', 'OFF', '0'])
      expect(parseBoolean(text)).toBe(false);
  });

  it('refuses everything else, as PostgreSQL refuses it for a boolean setting', () => {
    for (const text of ['', 'o', 'onn', 'truee', '2', '01', ' on', 'nonsense', 'offf']) {
      expect(parseBoolean(text)).toBeUndefined();
    }
  });
});
