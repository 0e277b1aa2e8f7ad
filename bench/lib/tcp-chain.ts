/**
 * The broadcast benchmark's TCP floor: a file pushed down a chain of plain TCP connections, every
 * hop writing it to its disk while it forwards it, with no hashing, no framing, no control plane.
 * It measures what TCP itself gets through the shaped links (headers, slow start, the queue of
 * `tc tbf`), i.e. how close to S/B any tool built on TCP could come. Not a tool anyone could use:
 * nothing is verified and a lost hop loses everyone after it.
 *
 *   node tcp-chain.js recv PORT FILE [NEXT_IP:PORT]   prints "listening"; takes one connection,
 *                                                     exits once FILE is written and forwarded
 *   node tcp-chain.js send FILE IP:PORT               sends FILE, exits once it is sent
 */
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { finished, pipeline } from 'node:stream/promises';

const ioBytes = 1024 * 1024;

function connect(addr: string): Promise<net.Socket> {
  const [host, port] = addr.split(':') as [string, string];
  const s = net.connect(Number(port), host);
  return once(s, 'connect').then(() => s);
}

async function recv(port: number, file: string, next?: string): Promise<void> {
  const server = net.createServer();
  server.listen(port);
  await once(server, 'listening');
  process.stdout.write('listening\n');
  const [conn] = (await once(server, 'connection')) as [net.Socket];
  server.close();
  const out = fs.createWriteStream(file, { highWaterMark: ioBytes });
  // pipe() pauses the connection while either destination is behind, and ends both at its end.
  const sinks: NodeJS.WritableStream[] = [out];
  if (next) sinks.push(await connect(next));
  for (const s of sinks) conn.pipe(s);
  await Promise.all(sinks.map((s) => finished(s, { readable: false })));
}

async function send(file: string, to: string): Promise<void> {
  await pipeline(fs.createReadStream(file, { highWaterMark: ioBytes }), await connect(to));
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === 'recv' && a && b) await recv(Number(a), b, c);
else if (mode === 'send' && a && b) await send(a, b);
else {
  process.stderr.write('usage: tcp-chain.js recv PORT FILE [NEXT_IP:PORT] | send FILE IP:PORT\n');
  process.exitCode = 2;
}
