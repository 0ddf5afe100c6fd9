/** The error thrown for an unusable gateway.yml: one line per problem, each naming its key path. */
export class ConfigError extends Error {
  readonly problems: readonly string[]

  constructor(problems: readonly string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = Object.freeze([...problems])
  }
}
