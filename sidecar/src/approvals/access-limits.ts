/** What `maxDurationSeconds` is when a MaskingPolicy's accessRequests leaves it out. */
export const DEFAULT_MAX_ACCESS_SECONDS = 3600;
/** How long an access request waits for a decision, whatever its duration. */
export const ACCESS_PENDING_SECONDS = 3600;
