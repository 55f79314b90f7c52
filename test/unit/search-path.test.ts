import { describe, expect, it } from 'vitest';
import { searchPathSchemas } from '../../src/sql/search-path.js';

describe('searchPathSchemas', () => {
  it('reads a search_path setting as PostgreSQL splits it', () => {
    expect(searchPathSchemas('"$user", public', 'alice')).toEqual(['alice', 'public']);
    expect(searchPathSchemas('"$user", public', undefined)).toEqual(['public']);
    expect(searchPathSchemas('$user,Tenant_A ,  "Tenant B", pg_temp', 'bob')).toEqual([
      'bob',
      'tenant_a',
      'Tenant B',
      'pg_temp',
    ]);
    expect(searchPathSchemas('"a""b", "x,y"', undefined)).toEqual(['a"b', 'x,y']);
    expect(searchPathSchemas('Ünïcode', undefined)).toEqual(['Ünïcode']);
  });

  it('gives nothing for an empty or malformed list', () => {
    expect(searchPathSchemas('', 'alice')).toBeUndefined();
    expect(searchPathSchemas('  ', 'alice')).toBeUndefined();
    expect(searchPathSchemas('a,,b', undefined)).toBeUndefined();
    expect(searchPathSchemas('"open', undefined)).toBeUndefined();
    expect(searchPathSchemas('a b', undefined)).toBeUndefined();
  });
});
