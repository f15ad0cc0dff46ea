import Type, { type Static } from 'typebox';
import { ObjectName, stringEnum } from './common.ts';
import { Conditions, ObservedGeneration } from './status.ts';

/**
 * A DatabaseGateway runs the proxy as a shared Deployment and Service for people and agents, who sign
 * in with their identity provider's token as the password (`identity.mode: token`). It names the
 * DatabaseAccess that says who may do what on which database, and carries only what a Deployment
 * needs: replicas, the Service, client TLS, the OIDC issuer, resources. A separate kind, so that a
 * DatabaseAccess stays the one place for rights, shared by the injected sidecars and the gateway.
 */

const QuantityMap = Type.Object(
  {},
  {
    additionalProperties: Type.Unsafe<string | number>({
      'x-kubernetes-int-or-string': true,
      anyOf: [{ type: 'integer' }, { type: 'string' }],
    }),
  },
);

const Oidc = Type.Object(
  {
    issuer: Type.String({
      minLength: 1,
      pattern: '^https?://',
      description: "The provider's issuer, exactly as its tokens carry it in `iss`.",
    }),
    audience: Type.String({
      minLength: 1,
      description: 'What the access tokens for the gateway carry in `aud`.',
    }),
    jwksUrl: Type.String({
      minLength: 1,
      pattern: '^https?://',
      description:
        "The provider's key set (jwks_uri of its discovery document). https://, or http:// on loopback only.",
    }),
    subjectClaim: Type.Optional(
      Type.String({ minLength: 1, description: 'Claim that names the person; default sub.' }),
    ),
    groupsClaim: Type.Optional(
      Type.String({ minLength: 1, description: 'Claim that lists their groups; default groups.' }),
    ),
  },
  { additionalProperties: false },
);

const Service = Type.Object(
  {
    type: Type.Optional(
      stringEnum(['ClusterIP', 'NodePort', 'LoadBalancer'], {
        default: 'ClusterIP',
        description: 'How people reach the gateway.',
      }),
    ),
    port: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 65535, description: 'Default: 5432 (postgres) or 3306 (mysql).' }),
    ),
    annotations: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: Type.String(),
          description: "Copied onto the Service (a cloud load balancer's settings).",
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const Tls = Type.Object(
  {
    mode: Type.Optional(
      stringEnum(['SelfManaged', 'CertManager'], {
        default: 'SelfManaged',
        description:
          "SelfManaged: the operator's own CA signs the certificate. CertManager: a cert-manager Certificate from issuerRef.",
      }),
    ),
    dnsNames: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description:
          'Names people reach the gateway by, besides the Service names (a load balancer, an ingress).',
      }),
    ),
    issuerRef: Type.Optional(
      Type.Object(
        {
          name: ObjectName,
          kind: Type.Optional(stringEnum(['Issuer', 'ClusterIssuer'], { default: 'Issuer' })),
          group: Type.Optional(Type.String({ minLength: 1, default: 'cert-manager.io' })),
        },
        { additionalProperties: false, description: 'CertManager only: the issuer of the Certificate.' },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'Client TLS is always on: people send their token as the password.',
    'x-kubernetes-validations': [
      {
        rule: "!has(self.mode) || self.mode != 'CertManager' || has(self.issuerRef)",
        message: 'tls.issuerRef is required when tls.mode is CertManager',
      },
    ],
  },
);

export const DatabaseGatewaySpec = Type.Object(
  {
    access: ObjectName,
    oidc: Oidc,
    replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, default: 2 })),
    image: Type.Optional(
      Type.String({ minLength: 1, description: "Default: the operator's sidecar image." }),
    ),
    port: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: 'Where the proxy listens in its pod; default 5432 (postgres) or 3306 (mysql).',
      }),
    ),
    service: Type.Optional(Service),
    tls: Type.Optional(Tls),
    resources: Type.Optional(
      Type.Object(
        { requests: Type.Optional(QuantityMap), limits: Type.Optional(QuantityMap) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const DatabaseGatewayStatus = Type.Object(
  {
    observedGeneration: Type.Optional(ObservedGeneration),
    conditions: Type.Optional(Conditions),
    address: Type.Optional(
      Type.String({ description: 'host:port of the Service, as clients in the cluster reach it.' }),
    ),
    bundle: Type.Optional(
      Type.Object(
        { configMap: ObjectName, hash: Type.String({ minLength: 1 }) },
        { additionalProperties: false },
      ),
    ),
    tls: Type.Optional(
      Type.Object(
        {
          secret: ObjectName,
          caConfigMap: Type.Optional(ObjectName),
        },
        {
          additionalProperties: false,
          description: 'The serving certificate, and the ConfigMap (key ca.crt) people verify it with.',
        },
      ),
    ),
    replicas: Type.Optional(Type.Integer({ minimum: 0 })),
    readyReplicas: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export type DatabaseGatewaySpecType = Static<typeof DatabaseGatewaySpec>;
export type DatabaseGatewayStatusType = Static<typeof DatabaseGatewayStatus>;
