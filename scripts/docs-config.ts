/**
 * `npm run docs:config`: writes docs/configuration.md from the configuration schema.
 * Run it after changing src/config/schema.ts; test/config-reference.test.ts checks it was.
 */
import { REFERENCE_PATH, renderConfigReference } from './config-reference.js'
import { writeGenerated } from './write-generated.js'

await writeGenerated(REFERENCE_PATH, renderConfigReference())
