import { parsePrefer } from './http-preferences';

describe('parsePrefer', () => {
  it('reads respond-async and wait, case-insensitively, across headers', () => {
    expect(parsePrefer('respond-async')).toEqual({ respondAsync: true, waitSeconds: null });
    expect(parsePrefer('Respond-Async, wait=10')).toEqual({ respondAsync: true, waitSeconds: 10 });
    expect(parsePrefer(['wait="5"', 'handling=lenient'])).toEqual({ respondAsync: false, waitSeconds: 5 });
  });

  it('ignores what it does not understand', () => {
    expect(parsePrefer(undefined)).toEqual({ respondAsync: false, waitSeconds: null });
    expect(parsePrefer('wait=soon, return=minimal')).toEqual({ respondAsync: false, waitSeconds: null });
    expect(parsePrefer('respond-async; foo=bar')).toEqual({ respondAsync: true, waitSeconds: null });
  });
});
