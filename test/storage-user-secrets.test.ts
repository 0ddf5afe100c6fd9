/** The user secret store (migration 5) on PGlite and PostgreSQL: one contract, both databases. */
import t from 'tap'
import { userSecretStoreContract } from './contracts/user-secret-store.js'
import { databaseBackends } from './helpers/backends.js'

for (const backend of databaseBackends()) {
  t.test(`${backend.name}: UserSecretStore contract`, async (t) => userSecretStoreContract(t, backend))
}
