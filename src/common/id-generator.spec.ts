import { UUID_PATTERN, UuidV7Generator } from './id-generator';

describe(UuidV7Generator.name, () => {
  it('makes RFC 9562 version-7 UUIDs carrying the millisecond timestamp', () => {
    const ms = Date.UTC(2026, 10, 26, 23, 26, 55, 123);
    const id = new UuidV7Generator(() => ms, (b) => b.fill(0xab)).next();
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('7');
    expect('89ab').toContain(id[19]);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(ms);
  });

  it('sorts in creation order, even within one millisecond and when the clock steps back', () => {
    let now = 1_000_000;
    const clock = [now, now, now, now - 5, now + 1];
    const gen = new UuidV7Generator(() => clock.shift() ?? ++now);
    const ids = Array.from({ length: 8 }, () => gen.next());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
