import { redactUrl } from './logger';

describe(redactUrl.name, () => {
  it.each([
    ['/vms', '/vms'],
    ['/vms?limit=5&cursor=abc', '/vms?limit=5&cursor=abc'],
    ['/token?username=bob&password=hunter2', '/token?username=bob&password=[redacted]'],
    ['/vms?access_token=eyJ.x.y&limit=1', '/vms?access_token=[redacted]&limit=1'],
    ['/x?client_secret=s&api_key=k&apikey=k2&X-Auth=a', '/x?client_secret=[redacted]&api_key=[redacted]&apikey=[redacted]&X-Auth=[redacted]'],
    ['/token?p%61ssword=hunter2', '/token?p%61ssword=[redacted]'],
    ['/token?pass+word=x&%E0%A4%A=1', '/token?pass+word=[redacted]&%E0%A4%A=1'],
  ])('%s → %s', (url, logged) => {
    expect(redactUrl(url)).toBe(logged);
  });
});
