/** The one request pipeline (resolve → authenticate → rate-limit → authorise → sign) that every transport asks. */
export { allowedOriginsFor, isBrowserNavigation, type OriginPolicy } from './authorise.js'
export { explain, type ExplainedAnswer, type ExplainedIdentity, type Explanation, type ExplainOptions } from './explain.js'
export { Gate, type CredentialResolver, type GateDependencies, type RequestSigner } from './gate.js'
export { outcomeOf, type DecisionOutcome, type GateAllow, type GateOutcome, type GateRefusal } from './outcome.js'
export { counterRateLimiter, rateLimitHeaders, type RateLimitCounter, type RateLimiter, type RateLimitVerdict } from './rate-limit.js'
export type { GateHeaders, GateRequest, RequestKind } from './request.js'
export { enforceSecondFactor, mayNeedEnrolment, secondFactorState, type SecondFactorPolicy, type SecondFactorState } from './second-factor.js'
export { resolveRequest, upstreamTarget, type Resolved, type UpstreamTarget } from './resolve.js'
