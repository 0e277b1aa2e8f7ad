import type net from 'node:net';

const corked = new WeakSet<net.Socket>();

/**
 * Holds a socket's writes until the current tick ends, so frames written in one burst (a batch's
 * requests, answers read from memory) leave in one system call instead of one each.
 */
export function corkForTick(socket: net.Socket): void {
  if (corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}
