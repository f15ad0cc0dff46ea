import type { Logger } from 'pino';
import type { KubeApi } from './kube-api.ts';

/**
 * The operator's own user name (SelfSubjectReview), which the decision webhook lets write phases.
 * Unknown, the webhook admits no one's phase writes, the operator's own included: approvals stop
 * rather than let an approver pass as the operator.
 */
export async function ownUserName(api: KubeApi, logger: Logger): Promise<string | undefined> {
  try {
    const review = await api.create<{ status?: { userInfo?: { username?: string } } }>(
      '/apis/authentication.k8s.io/v1/selfsubjectreviews',
      { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    );
    return review.status?.userInfo?.username;
  } catch (error) {
    logger.error({ err: String(error) }, 'SelfSubjectReview failed: approval decisions will be refused');
    return undefined;
  }
}
