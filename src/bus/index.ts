export { Bus, REQUEST_TIMEOUT_MS, type BusOptions, type Handler } from './bus.js';
export { startNatsServer, type NatsServerHandle } from './nats-server.js';
