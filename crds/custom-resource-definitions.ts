import type { TSchema } from 'typebox';
import { ApprovalRequestSpec, ApprovalRequestStatus } from './approval-request.ts';
import { API_GROUP } from './common.ts';
import { DatabaseAccessSpec } from './database-access.ts';
import { DatabaseGatewaySpec, DatabaseGatewayStatus } from './database-gateway.ts';
import { GuardrailSpec } from './guardrail.ts';
import { MaskingPolicySpec } from './masking-policy.ts';
import { crdOpenApiSchema } from './openapi.ts';
import { CommonStatus, DatabaseAccessStatus } from './status.ts';

export const API_VERSION_NAME = 'v1alpha1';
/** `kubectl get gatehouse` lists every kind at once. */
export const API_CATEGORY = 'gatehouse';

type PrinterColumn = {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
};

/** One kind of the API: its names, its schemas and what `kubectl get` shows of it. */
export type ApiKind = {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: TSchema;
  status: TSchema;
  /** Columns between Ready and Age. */
  summaryColumns: PrinterColumn[];
  /** Columns before Age instead of Ready, the summary and Reason: a kind without conditions. */
  columns?: PrinterColumn[];
  /** Objects people keep in Git (Argo CD gets a health check for them); false for ones made at run time. */
  declarative: boolean;
};

export const API_KINDS: readonly ApiKind[] = [
  {
    kind: 'DatabaseAccess',
    plural: 'databaseaccesses',
    singular: 'databaseaccess',
    shortNames: ['dba'],
    spec: DatabaseAccessSpec,
    status: DatabaseAccessStatus,
    declarative: true,
    summaryColumns: [
      {
        name: 'Upstream',
        type: 'string',
        jsonPath: '.spec.upstream.host',
        description: 'The database host the sidecars connect to.',
      },
      {
        name: 'Protocol',
        type: 'string',
        jsonPath: '.spec.upstream.protocol',
        description: 'postgres or mysql.',
      },
      { name: 'Allow', type: 'string', jsonPath: '.spec.allow', description: 'Statement classes allowed.' },
      {
        name: 'Bundle',
        type: 'string',
        jsonPath: '.status.bundle.configMap',
        description: 'The ConfigMap holding the compiled policy bundle.',
        priority: 1,
      },
    ],
  },
  {
    kind: 'DatabaseGateway',
    plural: 'databasegateways',
    singular: 'databasegateway',
    shortNames: ['dbgw'],
    spec: DatabaseGatewaySpec,
    status: DatabaseGatewayStatus,
    declarative: true,
    summaryColumns: [
      {
        name: 'Access',
        type: 'string',
        jsonPath: '.spec.access',
        description: 'The DatabaseAccess the gateway enforces.',
      },
      {
        name: 'Address',
        type: 'string',
        jsonPath: '.status.address',
        description: 'The Service people connect to.',
      },
      {
        name: 'Ready-Replicas',
        type: 'integer',
        jsonPath: '.status.readyReplicas',
        description: 'Proxy pods that are ready.',
      },
    ],
  },
  {
    kind: 'Guardrail',
    plural: 'guardrails',
    singular: 'guardrail',
    shortNames: ['gr'],
    spec: GuardrailSpec,
    status: CommonStatus,
    declarative: true,
    summaryColumns: [
      { name: 'Mode', type: 'string', jsonPath: '.spec.mode', description: 'enforce or dryRun.' },
      {
        name: 'Rules',
        type: 'string',
        jsonPath: '.spec.rules[*].name',
        description: 'The names of the rules.',
      },
    ],
  },
  {
    kind: 'MaskingPolicy',
    plural: 'maskingpolicies',
    singular: 'maskingpolicy',
    shortNames: ['mp'],
    spec: MaskingPolicySpec,
    status: CommonStatus,
    declarative: true,
    summaryColumns: [
      {
        name: 'AutoDetect',
        type: 'boolean',
        jsonPath: '.spec.autoDetect',
        description: 'Whether values are classified and masked by content too.',
      },
    ],
  },
  {
    kind: 'ApprovalRequest',
    plural: 'approvalrequests',
    singular: 'approvalrequest',
    shortNames: ['ar'],
    spec: ApprovalRequestSpec,
    status: ApprovalRequestStatus,
    declarative: false,
    summaryColumns: [],
    columns: [
      {
        name: 'Identity',
        type: 'string',
        jsonPath: '.spec.identity.subject',
        description: 'Who sent the held statement.',
      },
      {
        name: 'Database',
        type: 'string',
        jsonPath: '.spec.database',
        description: 'The database it runs on.',
      },
      {
        name: 'Phase',
        type: 'string',
        jsonPath: '.status.phase',
        description: 'Pending, Approved, Denied, Expired, Executed or Withdrawn.',
      },
      {
        name: 'By',
        type: 'string',
        jsonPath: '.status.decision.by',
        description: 'Who decided, as the API server authenticated them.',
        priority: 1,
      },
    ],
  },
];

const READY_COLUMN: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'The Ready condition: True, False or Unknown.',
};

const REASON_COLUMN: PrinterColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
  description: 'Why the Ready condition is what it is.',
  priority: 1,
};

const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

/** The CustomResourceDefinition of one kind, as the API server takes it (apiextensions.k8s.io/v1). */
export function customResourceDefinition(apiKind: ApiKind): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${apiKind.plural}.${API_GROUP}`,
      labels: { 'app.kubernetes.io/part-of': 'gatehouse' },
    },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: apiKind.kind,
        listKind: `${apiKind.kind}List`,
        plural: apiKind.plural,
        singular: apiKind.singular,
        shortNames: apiKind.shortNames,
        categories: [API_CATEGORY],
      },
      versions: [
        {
          name: API_VERSION_NAME,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            ...(apiKind.columns ?? [READY_COLUMN, ...apiKind.summaryColumns, REASON_COLUMN]),
            AGE_COLUMN,
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `${apiKind.kind} (Gatehouse). Generated from crds/*.ts by npm run gen.`,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: crdOpenApiSchema(apiKind.spec),
                status: crdOpenApiSchema(apiKind.status),
              },
            },
          },
        },
      ],
    },
  };
}
