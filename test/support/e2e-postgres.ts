/**
 * setupFilesAfterEnv of the e2e-postgres project: the same e2e suites, with
 * every server on a PostgreSQL database of its own (created per data folder,
 * dropped after each file). jest.config.js adds the project only when
 * PostgreSQL is reachable; the global setup reports the skip otherwise.
 */
import { dropCreatedDatabases } from './server-process';

process.env.VMPLANE_E2E_DB = 'postgres';

afterAll(() => dropCreatedDatabases());
