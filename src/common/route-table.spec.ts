import { RouteTable } from './route-table';

describe(RouteTable.name, () => {
  it('lists the methods of every route matching a path', () => {
    const table = new RouteTable();
    table.add('GET', '/vms');
    table.add('HEAD', '/vms');
    table.add('POST', '/vms');
    table.add(['GET', 'HEAD'], '/vms/:id');
    table.add('DELETE', '/vms/:id');
    table.add('GET', '/docs/*');
    expect(table.allowedMethods('/vms')).toEqual(['GET', 'HEAD', 'POST']);
    expect(table.allowedMethods('/vms/')).toEqual(['GET', 'HEAD', 'POST']);
    expect(table.allowedMethods('/vms/0190-abc')).toEqual(['DELETE', 'GET', 'HEAD']);
    expect(table.allowedMethods('/vms/a/b')).toEqual([]);
    expect(table.allowedMethods('/docs/x/y.js')).toEqual(['GET']);
    expect(table.allowedMethods('/nothing')).toEqual([]);
  });
});
