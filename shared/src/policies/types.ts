// The policy interfaces are the core's (it calls them); re-exported for the policies' own imports.
export type { Policy, PolicyBook, PolicyContext, PolicyProposal, Split } from '../core/policy.ts';
