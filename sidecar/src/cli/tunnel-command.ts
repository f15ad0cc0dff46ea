import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { UserError } from '../errors.ts';
import type { DatabaseTarget } from '../login/client-config.ts';
import { canSeeLoopbackPeers, loopbackPeerUid } from '../login/loopback-peer.ts';
import { tunnelMysqlClient } from '../login/mysql-tunnel.ts';
import { tunnelPostgresClient } from '../login/pg-tunnel.ts';
import { fetchGreeting, type ServerGreeting } from '../protocol/mysql/upstream.ts';
import type { UpstreamTls } from '../protocol/postgres/upstream-socket.ts';
import { parseCliArgs } from './parse-cli-args.ts';
import { resolveTargetFlags, TARGET_OPTIONS, targetUsage } from './target-flags.ts';

export const TUNNEL_USAGE = `usage: gatehouse tunnel DATABASE --port N [options]

Listens on 127.0.0.1:N and opens each new connection to the Gatehouse proxy as you, with the token
from \`gatehouse login\` as the password (renewed when it nears expiry), so GUI tools, ORMs and
drivers connect to 127.0.0.1:N with no password. Loopback only; on Linux only programs of your own
user are let in. Runs until interrupted.

  --port N              the local port (0 for any free one; the line on stdout says which)
${targetUsage('--proxy-port')}
  -h, --help            show this text`;

export async function runTunnelCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { values, positionals } = parseCliArgs(
    {
      args: argv,
      strict: true,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, 'proxy-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    },
    'tunnel',
  );
  if (values.help) {
    process.stdout.write(`${TUNNEL_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 1)
    throw new UserError(`unexpected argument "${positionals[1]}" (see gatehouse tunnel --help)`);
  const localPortText = values.port;
  if (localPortText === undefined)
    throw new UserError('tunnel needs --port N, the local port to listen on (0 for any)');
  const localPort = Number(localPortText);
  if (!/^\d+$/.test(localPortText) || localPort > 65535)
    throw new UserError(`--port must be a port number, not "${localPortText}"`);
  const { target, token } = resolveTargetFlags(
    positionals[0],
    { ...values, port: values['proxy-port'] },
    env,
  );
  const login = await token.current();
  const user = target.user ?? login.subject ?? 'gatehouse';
  const tls = upstreamTls(target);
  const checkPeers = await canSeeLoopbackPeers();
  // The proxy's MySQL greeting (version, capabilities) is what the tunnel greets its clients with.
  let proxyGreeting: Promise<ServerGreeting> | undefined;
  const greeting = (): Promise<ServerGreeting> => {
    proxyGreeting ??= fetchGreeting({ host: target.host, port: target.port, connectTimeoutMs: 30_000 }).catch(
      (error: unknown) => {
        proxyGreeting = undefined;
        throw error;
      },
    );
    return proxyGreeting;
  };
  const ownUid = process.getuid?.();

  const server = createServer((client: Socket) => {
    client.setNoDelay(true);
    void admit(client).then((admitted) => {
      if (!admitted) return;
      const events = {
        opened: (from: string) =>
          process.stderr.write(`gatehouse tunnel: ${from} connected to ${target.name}\n`),
        failed: (from: string, reason: string) =>
          process.stderr.write(`gatehouse tunnel: ${from} refused: ${reason}\n`),
      };
      const endpoint = { host: target.host, port: target.port, tls, database: target.dbname, user };
      const currentToken = async () => (await token.current()).accessToken;
      if (target.protocol === 'postgres') void tunnelPostgresClient(client, endpoint, currentToken, events);
      else void tunnelMysqlClient(client, endpoint, greeting, currentToken, events);
    });
  });
  const admit = async (client: Socket): Promise<boolean> => {
    if (!checkPeers || ownUid === undefined) return true;
    const address = server.address();
    const uid = await loopbackPeerUid(
      client.remotePort ?? 0,
      typeof address === 'object' && address ? address.port : 0,
    );
    if (uid === ownUid) return true;
    process.stderr.write(
      `gatehouse tunnel: refused a connection from another user's program (uid ${uid ?? 'unknown'})\n`,
    );
    client.destroy();
    return false;
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new UserError(`127.0.0.1:${localPort} is in use: choose another --port`)
          : error,
      ),
    );
    server.listen(localPort, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : localPort;
  process.stdout.write(
    `gatehouse tunnel listening on 127.0.0.1:${port} for ${target.name} (${target.host}:${target.port}); connect with no password: ${
      target.protocol === 'postgres'
        ? `psql "host=127.0.0.1 port=${port} dbname=${target.dbname} user=${user}"`
        : `mysql --protocol=TCP --host=127.0.0.1 --port=${port} --user=${user} ${target.dbname}`
    }\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close(() => resolve());
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}

function upstreamTls(target: DatabaseTarget): UpstreamTls {
  if (target.tls !== 'verify-full') return { mode: target.tls };
  if (target.ca === undefined) return { mode: 'verify-full' };
  try {
    return { mode: 'verify-full', ca: readFileSync(target.ca) };
  } catch (error) {
    throw new UserError(`cannot read --ca ${target.ca}: ${(error as Error).message}`);
  }
}
