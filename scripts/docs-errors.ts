/**
 * `npm run docs:errors`: writes docs/errors.md from src/errors.ts. Run it after adding or
 * changing a code; test/docs-errors.test.ts checks it was.
 */
import { ERROR_REFERENCE_PATH, renderErrorReference } from './error-reference.js'
import { writeGenerated } from './write-generated.js'

await writeGenerated(ERROR_REFERENCE_PATH, renderErrorReference())
