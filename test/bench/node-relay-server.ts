import { connect, createServer } from 'node:net';

/**
 * The least a Node.js proxy can do: a byte relay with pipe(). Benchmarked beside Gatehouse to show how
 * much of Gatehouse's cost is Node's socket I/O on this machine and how much is its own work.
 * Usage: node node-relay-server.ts LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
 */
const [listenPort, upstreamHost, upstreamPort] = process.argv.slice(2);
createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: upstreamHost!, port: Number(upstreamPort), noDelay: true });
  client.pipe(upstream).on('error', () => client.destroy());
  upstream.pipe(client).on('error', () => upstream.destroy());
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(Number(listenPort), '127.0.0.1');
