import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { freePort } from '../free-port.ts';
import { createCertificateAuthority, issueCertificate } from '../tls.ts';
import { kubeBinaries } from './kube-binaries.ts';
import { type KubeEndpoint, kubeRequest } from './kube-request.ts';
import { type ServerProcess, spawnServer, waitUntilReady } from './server-process.ts';
import { type KubeVersion, LATEST_KUBE_VERSION } from './versions.ts';

export type KubeCluster = {
  version: KubeVersion;
  /** https://127.0.0.1:PORT */
  server: string;
  /** The CA that signed the API server's certificate (SANs 127.0.0.1, localhost, kubernetes.default.svc, ...). */
  caFile: string;
  /** Bearer token of a user in system:masters, from the API server's static token file. */
  adminToken: string;
  /** A kubeconfig for that admin: server, caFile and adminToken. */
  kubeconfigPath: string;
  /** The `iss` of service-account tokens, as in a real cluster. */
  serviceAccountIssuer: string;
  stop(): Promise<void>;
};

export type StartKubeOptions = {
  version?: KubeVersion;
  /** For each of etcd and kube-apiserver to answer ready; the first run's build is not counted. */
  startTimeoutMs?: number;
};

export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';
/** The first address of the service range: the `kubernetes` Service, which the serving certificate names. */
const KUBERNETES_SERVICE_IP = '10.0.0.1';
/** The user name of the admin's token: what the API server tells webhooks of the admin's requests. */
export const ADMIN_USER = 'gatehouse-admin';
const PORT_ATTEMPTS = 5;
const DEFAULT_START_TIMEOUT_MS = 90_000;

/**
 * A real kube-apiserver backed by a real etcd, both on free loopback ports with their state in a
 * fresh temporary directory, started the way controller-runtime's envtest starts them. There is no
 * controller-manager, scheduler or kubelet: Pods stay Pending and service-account tokens come only
 * from the TokenRequest API. The binaries come from the preparation step (see kubeBinaries).
 */
export async function startKube(options: StartKubeOptions = {}): Promise<KubeCluster> {
  const version = options.version ?? LATEST_KUBE_VERSION;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const binaries = kubeBinaries(version);
  const baseDir = await mkdtemp(join(tmpdir(), 'gatehouse-kube-'));
  const servers: ServerProcess[] = [];
  const stop = async () => {
    for (const server of [...servers].reverse()) await server.stop();
    await rm(baseDir, { recursive: true, force: true });
  };
  try {
    const files = await writeClusterFiles(baseDir);
    const etcd = await startOnFreePorts(timeoutMs, async () => {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      const server = await spawnServer(
        'etcd',
        binaries.etcd,
        etcdArgs(baseDir, clientPort, peerPort),
        join(baseDir, 'etcd.log'),
      );
      const ready = async () => {
        const response = await fetch(`http://127.0.0.1:${clientPort}/health`);
        return response.ok && ((await response.json()) as { health?: string }).health === 'true';
      };
      return { server, ready, value: `http://127.0.0.1:${clientPort}` };
    });
    servers.push(etcd.server);
    const apiServer = await startOnFreePorts(timeoutMs, async () => {
      const port = await freePort();
      const args = apiServerArgs(files, port, etcd.value);
      const server = await spawnServer(
        'kube-apiserver',
        binaries.kubeApiserver,
        args,
        join(baseDir, 'kube-apiserver.log'),
      );
      const endpoint = {
        server: `https://127.0.0.1:${port}`,
        caFile: files.caFile,
        adminToken: files.adminToken,
      };
      const ready = async () => (await kubeRequest(endpoint, { path: '/readyz' })).status === 200;
      return { server, ready, value: endpoint };
    });
    servers.push(apiServer.server);
    const endpoint = apiServer.value;
    await allowAnonymousIssuerDiscovery(endpoint);
    const kubeconfigPath = join(baseDir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfig(endpoint));
    return { version, ...endpoint, kubeconfigPath, serviceAccountIssuer: SERVICE_ACCOUNT_ISSUER, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

type ClusterFiles = {
  caFile: string;
  certFile: string;
  keyFile: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
  tokenFile: string;
  adminToken: string;
};

async function writeClusterFiles(baseDir: string): Promise<ClusterFiles> {
  const pkiDir = join(baseDir, 'pki');
  const ca = await createCertificateAuthority(pkiDir);
  const serving = await issueCertificate(ca, pkiDir, {
    name: 'apiserver',
    commonName: 'kube-apiserver',
    dnsNames: [
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ],
    ipAddresses: ['127.0.0.1', KUBERNETES_SERVICE_IP],
  });
  // RSA, because every verifier of service-account tokens accepts RS256.
  const keys = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const serviceAccountPublicKey = join(pkiDir, 'service-account.pub');
  const serviceAccountPrivateKey = join(pkiDir, 'service-account.key');
  await writeFile(serviceAccountPublicKey, keys.publicKey);
  await writeFile(serviceAccountPrivateKey, keys.privateKey, { mode: 0o600 });
  const adminToken = randomBytes(24).toString('base64url');
  const tokenFile = join(pkiDir, 'tokens.csv');
  // token,user,uid,group: the group system:masters is what makes the user an admin under RBAC.
  await writeFile(tokenFile, `${adminToken},${ADMIN_USER},${ADMIN_USER},system:masters\n`, { mode: 0o600 });
  return {
    caFile: ca.certFile,
    certFile: serving.certFile,
    keyFile: serving.keyFile,
    serviceAccountPublicKey,
    serviceAccountPrivateKey,
    tokenFile,
    adminToken,
  };
}

function etcdArgs(baseDir: string, clientPort: number, peerPort: number): string[] {
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  return [
    '--name=default',
    `--data-dir=${join(baseDir, 'etcd')}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    // The data is thrown away after the test; syncing it to disk would only slow every write.
    '--unsafe-no-fsync=true',
    '--log-level=warn',
  ];
}

function apiServerArgs(files: ClusterFiles, port: number, etcdUrl: string): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    // Nothing here routes to the `kubernetes` Service, and newer releases refuse to publish a loopback
    // address as its endpoint.
    '--endpoint-reconciler-type=none',
    `--secure-port=${port}`,
    `--tls-cert-file=${files.certFile}`,
    `--tls-private-key-file=${files.keyFile}`,
    `--token-auth-file=${files.tokenFile}`,
    // Anonymous requests are allowed in, and RBAC grants them only the public discovery paths.
    '--anonymous-auth=true',
    '--authorization-mode=RBAC',
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${files.serviceAccountPublicKey}`,
    `--service-account-signing-key-file=${files.serviceAccountPrivateKey}`,
    `--api-audiences=${SERVICE_ACCOUNT_ISSUER}`,
    // Without a controller-manager no token Secret would ever appear, so admission would reject every Pod.
    '--disable-admission-plugins=ServiceAccount',
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
  ];
}

type Launched<T> = { server: ServerProcess; ready: () => Promise<boolean>; value: T };

/** Another process may take a free port before the server binds it; then the server is started again on new ones. */
async function startOnFreePorts<T>(
  timeoutMs: number,
  launch: () => Promise<Launched<T>>,
): Promise<Launched<T>> {
  for (let attempt = 1; ; attempt++) {
    const launched = await launch();
    try {
      await waitUntilReady(launched.server, launched.ready, timeoutMs);
      return launched;
    } catch (error) {
      const portTaken =
        launched.server.exitStatus() !== undefined &&
        /address already in use/.test(await launched.server.logTail());
      await launched.server.stop();
      if (!portTaken || attempt === PORT_ATTEMPTS) throw error;
    }
  }
}

/**
 * Lets anyone read /.well-known/openid-configuration and /openid/v1/jwks, as clusters that publish
 * their service-account issuer do; by default only service accounts may.
 */
async function allowAnonymousIssuerDiscovery(endpoint: KubeEndpoint): Promise<void> {
  const response = await kubeRequest(endpoint, {
    method: 'POST',
    path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    body: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'gatehouse-test:service-account-issuer-discovery' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:service-account-issuer-discovery',
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    },
  });
  if (response.status !== 201) {
    throw new Error(
      `granting anonymous issuer discovery failed with HTTP ${response.status}: ${JSON.stringify(response.body)}`,
    );
  }
}

function kubeconfig(endpoint: KubeEndpoint): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'gatehouse-test',
        cluster: { server: endpoint.server, 'certificate-authority': endpoint.caFile },
      },
    ],
    users: [{ name: ADMIN_USER, user: { token: endpoint.adminToken } }],
    contexts: [{ name: 'gatehouse-test', context: { cluster: 'gatehouse-test', user: ADMIN_USER } }],
    'current-context': 'gatehouse-test',
  });
}
