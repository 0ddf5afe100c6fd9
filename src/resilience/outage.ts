/**
 * Tells a dependency outage (database or session store unreachable) from a bug, so that
 * the former answers 503 and is never mistaken for "not authenticated". The drivers
 * translate their own failures into DependencyUnavailableError (src/dependency-error.ts).
 */
import { isDependencyUnavailable } from '../dependency-error.js'

export function isDependencyOutage(err: unknown): boolean {
  return isDependencyUnavailable(err)
}
